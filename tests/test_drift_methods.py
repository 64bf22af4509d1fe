"""Each drift method against known distributions: same distribution -> no drift at the
stated false-positive rate over seeded repeats; shifted -> drift. And the sketch-based
figures against the exact ones computed from the raw reference."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from mlyard.core.models.sketch import sketch_categorical, sketch_numeric
from mlyard.core.monitoring.drift_stats import column_drift

REPEATS = 200
REFERENCE_ROWS = 50_000


@pytest.fixture(scope="module")
def normal_reference() -> tuple[np.ndarray, dict]:  # type: ignore[type-arg]
    values = np.random.default_rng(0).normal(0, 1, REFERENCE_ROWS)
    return values, sketch_numeric(pl.Series(values))


CATEGORIES = np.array(["a", "b", "c", "d"])
SHARES = [0.4, 0.3, 0.2, 0.1]


@pytest.fixture(scope="module")
def categorical_reference() -> dict:  # type: ignore[type-arg]
    values = np.random.default_rng(0).choice(CATEGORIES, REFERENCE_ROWS, p=SHARES)
    return sketch_categorical(pl.Series(values))


def drift_rate(reference: dict, draw, method: str | None = None,  # type: ignore[no-untyped-def,type-arg]
               repeats: int = REPEATS) -> float:
    hits = 0
    for seed in range(repeats):
        sample = draw(np.random.default_rng(1000 + seed))
        hits += column_drift("x", reference, pl.Series(sample), method).drifted
    return hits / repeats


def test_ks_false_positive_rate_and_power(normal_reference) -> None:  # type: ignore[no-untyped-def]
    _, reference = normal_reference
    same = drift_rate(reference, lambda rng: rng.normal(0, 1, 500))
    assert same <= 0.09  # p < 0.05: about 5% by design
    shifted = drift_rate(reference, lambda rng: rng.normal(0.3, 1, 500))
    assert shifted >= 0.95


def test_ks_p_value_matches_scipy_on_the_raw_reference(normal_reference) -> None:  # type: ignore[no-untyped-def]
    raw, reference = normal_reference
    rng = np.random.default_rng(5)
    for shift in (0.0, 0.1, 0.2):
        sample = rng.normal(shift, 1, 400)
        ours = column_drift("x", reference, pl.Series(sample)).statistic
        exact = stats.ks_2samp(raw, sample).pvalue
        assert ours == pytest.approx(exact, abs=0.03)


def test_wasserstein_is_close_to_the_exact_distance_and_flags_a_shift(normal_reference) -> None:  # type: ignore[no-untyped-def]
    raw, reference = normal_reference
    rng = np.random.default_rng(7)
    for shift, scale in ((0.0, 1.0), (0.3, 1.0), (0.0, 1.5)):
        sample = rng.normal(shift, scale, 20_000)
        result = column_drift("x", reference, pl.Series(sample))
        assert result.method == "wasserstein"
        exact = stats.wasserstein_distance(raw, sample) / raw.std()
        assert result.statistic == pytest.approx(exact, rel=0.1, abs=0.005)
    assert drift_rate(reference, lambda rng: rng.normal(0, 1, 5000), repeats=30) == 0
    assert drift_rate(reference, lambda rng: rng.normal(0.25, 1, 5000), repeats=30) == 1


def test_chi_square_false_positive_rate_and_power(categorical_reference) -> None:  # type: ignore[no-untyped-def]
    same = drift_rate(categorical_reference,
                      lambda rng: rng.choice(CATEGORIES, 500, p=SHARES))
    assert same <= 0.09
    shifted = drift_rate(categorical_reference,
                         lambda rng: rng.choice(CATEGORIES, 500, p=[0.3, 0.3, 0.25, 0.15]))
    assert shifted >= 0.9


def test_jensen_shannon_on_large_samples(categorical_reference) -> None:  # type: ignore[no-untyped-def]
    same = drift_rate(categorical_reference,
                      lambda rng: rng.choice(CATEGORIES, 5000, p=SHARES), repeats=30)
    assert same == 0
    shifted = drift_rate(categorical_reference,
                         lambda rng: rng.choice(CATEGORIES, 5000, p=[0.15, 0.25, 0.3, 0.3]),
                         repeats=30)
    assert shifted == 1
    sample = np.random.default_rng(3).choice(CATEGORIES, 5000, p=[0.15, 0.25, 0.3, 0.3])
    result = column_drift("x", categorical_reference, pl.Series(sample))
    counts = pl.Series(sample).value_counts().sort(by=pl.first())
    current = counts[:, 1].to_numpy() / 5000
    reference = np.array([categorical_reference["shares"][c] for c in CATEGORIES])
    from scipy.spatial.distance import jensenshannon

    assert result.statistic == pytest.approx(jensenshannon(reference, current), rel=1e-6)


def test_an_unseen_category_is_drift() -> None:
    reference = sketch_categorical(pl.Series(["a", "b"] * 500))
    result = column_drift("x", reference, pl.Series(["a", "b", "z"] * 100))
    assert result.drifted and result.statistic < 1e-6


def test_psi_levels_and_missing_values_as_their_own_bin(normal_reference) -> None:  # type: ignore[no-untyped-def]
    _, reference = normal_reference
    rng = np.random.default_rng(11)
    same = column_drift("x", reference, pl.Series(rng.normal(0, 1, 20_000)), "psi")
    assert same.psi < 0.02 and not same.drifted and same.psi_level == "none"
    shifted = column_drift("x", reference, pl.Series(rng.normal(0.6, 1, 20_000)), "psi")
    assert shifted.psi > 0.2 and shifted.drifted and shifted.psi_level == "severe"
    holes = pl.Series(rng.normal(0, 1, 20_000)).scatter(list(range(0, 20_000, 4)), None)
    with_nulls = column_drift("x", reference, holes)
    assert with_nulls.null_share == pytest.approx(0.25) and with_nulls.psi > 0.2


def test_discrete_counts_use_the_exact_reference_cdf() -> None:
    rng = np.random.default_rng(2)
    reference = sketch_numeric(pl.Series(rng.poisson(1.2, 20_000)))
    assert drift_rate(reference, lambda r: r.poisson(1.2, 500), repeats=100) <= 0.09
    assert drift_rate(reference, lambda r: r.poisson(1.6, 500), repeats=100) >= 0.9


def test_a_method_for_the_wrong_kind_of_column_is_refused(normal_reference) -> None:  # type: ignore[no-untyped-def]
    _, reference = normal_reference
    with pytest.raises(ValueError, match="chisquare.*not for numeric"):
        column_drift("x", reference, pl.Series([1.0, 2.0]), "chisquare")
