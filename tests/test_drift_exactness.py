"""Every drift figure, computed from the reference's sketch, against the exact figure
computed from the raw reference (scipy where it has one), on generated data of the
shapes real columns have. Tolerances are the ones docs/monitoring.md states; wherever
the exact figure is not within that tolerance of the threshold, the decision agrees."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlyard.core.models.sketch import (
    DECILES,
    GRID,
    distinct_sorted,
    inverted_cdf,
    sketch_categorical,
    sketch_numeric,
)
from mlyard.core.monitoring.drift_stats import (
    DEFAULT_MIN_ROWS,
    DEFAULT_THRESHOLDS,
    KS_DISTANCE_TOLERANCE,
    WASSERSTEIN_ABS_TOLERANCE,
    WASSERSTEIN_TOLERANCE,
    column_drift,
)
from tests.conftest import examples

Shape = Callable[[np.random.Generator, int], np.ndarray]

SHAPES: dict[str, Shape] = {
    "normal": lambda rng, n: rng.normal(50, 8, n),
    "outliers": lambda rng, n: np.concatenate([rng.lognormal(3, 0.6, n - n // 500),
                                               rng.uniform(1e4, 1e6, n // 500)]),
    "discrete": lambda rng, n: rng.poisson(3, n).astype(float),
    "constant": lambda rng, n: np.full(n, 7.0),
}
CHANGES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "same population": lambda values, rng: rng.permutation(values),
    "shift 1%": lambda values, rng: values * 1.01,
    "shift a tenth of a std": lambda values, rng: values + 0.1 * (values.std() or 1),
    "unit change": lambda values, rng: values / 10,
    "wider": lambda values, rng: values.mean() + (values - values.mean()) * 1.3,
}


def exact_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    scale = reference.std() or (abs(reference.mean()) or 1.0)
    return float(stats.wasserstein_distance(reference, current) / scale)


def exact_psi(reference: np.ndarray, current: np.ndarray) -> float:
    deciles = np.unique(np.quantile(reference, np.round(np.linspace(0.1, 0.9, 9), 6),
                                    method="inverted_cdf"))

    def shares(values: np.ndarray) -> np.ndarray:
        at = np.searchsorted(np.sort(values), deciles, side="right") / len(values)
        return np.maximum(np.append(np.diff(np.concatenate([[0.0], at, [1.0]])), 0.0), 1e-4)

    ref, cur = shares(reference), shares(current)
    return float(((cur - ref) * np.log(cur / ref)).sum())


def p_band(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, float]:
    """The exact KS p-value, and the p-values at the exact distance +- the tolerance."""
    exact = stats.ks_2samp(reference, current, method="asymp")
    n = round(len(reference) * len(current) / (len(reference) + len(current)))
    return (exact.pvalue, float(stats.kstwo.sf(exact.statistic + KS_DISTANCE_TOLERANCE, n)),
            float(stats.kstwo.sf(max(exact.statistic - KS_DISTANCE_TOLERANCE, 0.0), n)))


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(sorted(SHAPES)), change=st.sampled_from(sorted(CHANGES)),
       seed=st.integers(0, 10_000), current_rows=st.sampled_from([200, 2_000, 30_000]))
def test_numeric_figures_match_the_exact_ones(shape: str, change: str, seed: int,
                                              current_rows: int) -> None:
    rng = np.random.default_rng(seed)
    reference = SHAPES[shape](rng, 40_000)
    current = CHANGES[change](SHAPES[shape](rng, current_rows), rng)
    sketch = sketch_numeric(pl.Series(reference))
    series = pl.Series(current)

    wasserstein = column_drift("x", sketch, series, "wasserstein")
    exact = exact_wasserstein(reference, current)
    assert wasserstein.statistic == pytest.approx(exact, rel=WASSERSTEIN_TOLERANCE,
                                                  abs=WASSERSTEIN_ABS_TOLERANCE)
    assert wasserstein.reliable == (current_rows >= DEFAULT_MIN_ROWS["wasserstein"])
    if abs(exact - DEFAULT_THRESHOLDS["wasserstein"]) > \
            WASSERSTEIN_TOLERANCE * exact + WASSERSTEIN_ABS_TOLERANCE:
        assert wasserstein.drifted == (wasserstein.reliable and
                                       exact > DEFAULT_THRESHOLDS["wasserstein"])

    ks = column_drift("x", sketch, series, "ks")
    exact_p, low, high = p_band(reference, current)
    assert low - 1e-9 <= ks.statistic <= high + 1e-9, (ks.statistic, exact_p)
    if not low <= DEFAULT_THRESHOLDS["ks"] <= high:
        assert ks.drifted == (ks.reliable and exact_p < DEFAULT_THRESHOLDS["ks"])

    psi = column_drift("x", sketch, series, "psi")
    assert psi.statistic == pytest.approx(exact_psi(reference, current), abs=1e-6)


CATEGORY_SHAPES: dict[str, list[float]] = {
    "balanced": [0.25, 0.25, 0.25, 0.25],
    "skewed": [0.9, 0.05, 0.03, 0.015, 0.005],
    "many": list(np.full(60, 1 / 60)),
}


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(sorted(CATEGORY_SHAPES)), seed=st.integers(0, 10_000),
       tilt=st.sampled_from([0.0, 0.02, 0.2]), current_rows=st.sampled_from([300, 5_000]))
def test_categorical_figures_match_scipy(shape: str, seed: int, tilt: float,
                                         current_rows: int) -> None:
    rng = np.random.default_rng(seed)
    shares = np.asarray(CATEGORY_SHAPES[shape])
    levels = np.array([f"level{i}" for i in range(len(shares))])
    reference = rng.choice(levels, 50_000, p=shares)
    moved = shares * (1 - tilt) + np.eye(len(shares))[-1] * tilt
    current = rng.choice(levels, current_rows, p=moved / moved.sum())
    sketch = sketch_categorical(pl.Series(reference))
    ref_counts = np.array([(reference == level).sum() for level in levels])
    cur_counts = np.array([(current == level).sum() for level in levels])
    ref_p, cur_p = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()

    chi = column_drift("x", sketch, pl.Series(current), "chisquare")
    exact_chi = stats.chisquare(cur_counts, ref_p * cur_counts.sum()).pvalue
    assert chi.statistic == pytest.approx(exact_chi, abs=1e-6)

    js = column_drift("x", sketch, pl.Series(current), "jensenshannon")
    assert js.statistic == pytest.approx(jensenshannon(ref_p, cur_p), abs=1e-6)


def test_all_missing_current_data_is_not_judged() -> None:
    sketch = sketch_numeric(pl.Series(np.random.default_rng(1).normal(0, 1, 5_000)))
    for method in ("ks", "wasserstein", "psi"):
        result = column_drift("x", sketch, pl.Series([None] * 500, dtype=pl.Float64), method)
        assert not result.drifted and not result.reliable


@settings(max_examples=examples(300), deadline=None)
@given(values=st.lists(st.one_of(st.floats(-1e12, 1e12), st.sampled_from([0.0, -0.0, 1.5, 7.0])),
                       min_size=1, max_size=3000),
       extra=st.lists(st.floats(0.0, 1.0), max_size=20))
def test_reference_quantiles_are_numpys_on_sorted_values(values: list[float],
                                                         extra: list[float]) -> None:
    """The sketch reads quantiles off its sorted values by numpy's inverted-CDF rule
    instead of asking numpy (which partitions the array again each time): the same
    values, ties and signed zeros included, for the grid, the deciles and any q."""
    ordered = np.sort(np.array(values, dtype=np.float64))
    for quantiles in (GRID, DECILES, np.array(extra + [0.0, 1.0])):
        expected = np.quantile(ordered, quantiles, method="inverted_cdf")
        assert np.array_equal(inverted_cdf(ordered, quantiles), expected)
    assert np.array_equal(distinct_sorted(ordered), np.unique(ordered))
