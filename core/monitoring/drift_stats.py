"""Per-feature drift of current data against a reference sketch, in one pass per column.

Defaults follow what practitioners know from Evidently: for numeric columns the KS test
(p < 0.05) on samples of up to 1,000 rows and the Wasserstein distance normalised by the
reference's standard deviation (> 0.1) above; for categorical columns chi-square
(p < 0.05) on small samples and the Jensen-Shannon distance (> 0.1) on large ones. PSI is
computed for every column as well (0.1 moderate, 0.2 severe), with missing values as a
bin of their own. Every method and threshold can be overridden per column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import polars as pl
from scipy.special import chdtrc
from scipy.stats import kstwo

from mlyard.core.models.sketch import OTHER, histogram, numeric_values, quantile_integrals

SMALL_SAMPLE = 1000
# Below these many current values a method's figure is mostly noise, so a column is
# `unreliable` and never judged (docs/monitoring.md gives the reasons): KS's p-value is
# exact at any size but says little below 30 rows; chi-square wants about 5 expected per
# level; the Wasserstein distance (in standard deviations), the Jensen-Shannon distance
# and PSI of two samples of one population average about their 0.1 threshold near 100
# rows and a fifth of it near 500.
DEFAULT_MIN_ROWS = {"ks": 30, "chisquare": 50, "wasserstein": 500, "jensenshannon": 500,
                    "psi": 500}
# How close a figure from the sketch is to the exact one from the raw reference (tested
# in tests/test_drift_exactness.py): the Wasserstein distance within 2% or 0.005
# standard deviations (where two samples of one population cross inside a quantile step,
# their differences cancel there); KS in distance units (the reference's CDF is kept at
# 0.5% steps and interpolated between them).
WASSERSTEIN_TOLERANCE = 0.02
WASSERSTEIN_ABS_TOLERANCE = 0.005
KS_DISTANCE_TOLERANCE = 0.004
KS_EXACT_POINTS = 200_000  # current samples up to this size are checked at every point
METHODS = ("ks", "wasserstein", "chisquare", "jensenshannon", "psi")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1,
                      "jensenshannon": 0.1, "psi": 0.1}
P_VALUE_METHODS = {"ks", "chisquare"}
PSI_MODERATE, PSI_SEVERE = 0.1, 0.2
_FLOOR = 1e-4  # shares are floored here before PSI's logarithm


class Chart(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Reference and current shares per bin (numbers: `edges`, one more than the shares)
    or per level (`categories`), drawn by the Monitoring screen and the HTML report; empty
    when there was nothing to count."""

    edges: list[float] = []
    categories: list[str] = []
    reference: list[float] = []
    current: list[float] = []

    def labels(self, digits: int) -> list[str]:
        """One label per bar: the level, or the bin's lower edge to `digits` figures."""
        return self.categories or [f"{edge:.{digits}g}" for edge in self.edges[:-1]]


@dataclass
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical
    method: str
    statistic: float  # the p-value for ks and chisquare, the distance otherwise
    threshold: float
    drifted: bool
    psi: float
    rows: int
    null_share: float
    chart: Chart = field(default_factory=Chart)
    unseen: dict[str, int] = field(default_factory=dict)  # levels the model never saw: rows
    present: int = 0  # current values that are not missing
    reliable: bool = True  # enough values for `method` to judge (else never drifted)
    psi_reliable: bool = True

    @property
    def psi_level(self) -> str:
        if not self.psi_reliable:
            return "unreliable"
        if self.psi >= PSI_SEVERE:
            return "severe"
        return "moderate" if self.psi >= PSI_MODERATE else "none"


def default_method(kind: str, rows: int) -> str:
    if kind == "numeric":
        return "ks" if rows <= SMALL_SAMPLE else "wasserstein"
    return "chisquare" if rows <= SMALL_SAMPLE else "jensenshannon"


def column_drift(name: str, reference: dict[str, Any], series: pl.Series,
                 method: str | None = None, threshold: float | None = None,
                 min_rows: Mapping[str, int] | None = None) -> ColumnDrift:
    """Drift of one current column against its reference sketch; `min_rows` (method ->
    rows) overrides DEFAULT_MIN_ROWS, below which the column is not judged."""
    if reference["kind"] == "numeric":
        result = _numeric(name, reference, series, method, threshold)
    else:
        result = _categorical(name, reference, series, method, threshold)
    limits = {**DEFAULT_MIN_ROWS, **(min_rows or {})}
    result.reliable = result.present >= limits[result.method] and \
        math.isfinite(result.statistic)
    result.psi_reliable = result.present >= limits["psi"] and math.isfinite(result.psi)
    result.drifted = result.drifted and result.reliable
    return result


def _verdict(method: str, statistic: float, threshold: float) -> bool:
    if method in P_VALUE_METHODS:
        return statistic < threshold
    return statistic > threshold


def _numeric(name: str, ref: dict[str, Any], series: pl.Series, method: str | None,
             threshold: float | None) -> ColumnDrift:
    values = numeric_values(series)
    rows, m = len(series), len(values)
    method = method or default_method("numeric", m)
    threshold = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    null_share = (rows - m) / rows if rows else 0.0
    edges = np.asarray(ref["edges"], dtype=np.float64)
    if m == 0 or len(edges) == 0:
        return ColumnDrift(name, "numeric", method, float("nan"), threshold, False,
                           float("nan"), rows, null_share, present=m)
    ref_cdf = np.asarray(ref["cdf"])
    # One pass: how many current values lie at or below each reference edge.
    first_edge_at_or_above = np.searchsorted(edges, values, side="left")
    cur_cdf = np.cumsum(np.bincount(first_edge_at_or_above, minlength=len(edges) + 1))[
        :len(edges)] / m
    ref_null = ref["nulls"] / ref["rows"] if ref["rows"] else 0.0
    psi = _psi(_decile_shares(edges, ref_cdf, ref["deciles"], ref_null),
               _decile_shares(edges, cur_cdf, ref["deciles"], null_share))
    if method == "ks":
        statistic = _ks_p_value(values, edges, ref_cdf, cur_cdf, ref["rows"] - ref["nulls"],
                                bool(ref.get("exact_cdf")))
    elif method == "wasserstein":
        statistic = _wasserstein(ref, values, edges, ref_cdf, cur_cdf) / wasserstein_scale(ref)
    elif method == "psi":
        statistic = psi
    else:
        raise ValueError(f"column {name!r}: method {method!r} is not for numeric columns; "
                         "use ks, wasserstein or psi")
    chart = _chart(ref, values, edges, ref_cdf)
    return ColumnDrift(name, "numeric", method, float(statistic), threshold,
                       _verdict(method, statistic, threshold), psi, rows, null_share, chart,
                       present=m)


def _chart(ref: dict[str, Any], values: np.ndarray, edges: np.ndarray,
           ref_cdf: np.ndarray) -> Chart:
    """Histograms of both on bins that span both ranges (1st to 99th percentile), so a
    shifted column is drawn where it is, not piled into the reference's last bin."""
    ref_edges = np.asarray(ref["histogram_edges"])
    low, high = np.quantile(values, [0.01, 0.99])
    low, high = min(low, ref_edges[0]), max(high, ref_edges[-1])
    chart_edges = np.linspace(low, high, len(ref_edges))
    inner = chart_edges[1:-1]
    at = _step_cdf(inner, edges, ref_cdf) if ref.get("exact_cdf") else \
        np.interp(inner, edges, ref_cdf, left=0.0, right=1.0)
    reference = np.diff(np.concatenate([[0.0], at, [1.0]]))
    return Chart(edges=chart_edges.tolist(), reference=reference.tolist(),
                 current=histogram(values, chart_edges).tolist())


def wasserstein_scale(ref: dict[str, Any]) -> float:
    """What the Wasserstein distance is divided by: the reference's standard deviation;
    for a constant reference, its absolute value (or 1 when that is 0), so a unit change
    of a constant column still reads as a relative move."""
    if ref["std"]:
        return float(ref["std"])
    return abs(float(ref["mean"])) or 1.0


def _wasserstein(ref: dict[str, Any], values: np.ndarray, edges: np.ndarray,
                 ref_cdf: np.ndarray, cur_cdf: np.ndarray) -> float:
    """The distance between the quantile functions, bin by bin of the quantile grid."""
    if ref.get("exact_cdf"):  # both CDFs are step functions known exactly
        ordered = np.sort(values)
        points = np.union1d(edges, ordered)
        gaps = np.diff(points)
        reference_cdf = _step_cdf(points[:-1], edges, ref_cdf)
        current_cdf = np.searchsorted(ordered, points[:-1], side="right") / len(ordered)
        return float((np.abs(reference_cdf - current_cdf) * gaps).sum())
    if "quantile_integrals" in ref:
        reference = np.diff(np.asarray(ref["quantile_integrals"]))
        current = np.diff(quantile_integrals(np.sort(values)))
        return float(np.abs(reference - current).sum())
    # Sketches written before the quantile integrals: the CDFs at the reference's edges.
    inside = float((np.abs(ref_cdf - cur_cdf)[:-1] * np.diff(edges)).sum())
    below = float(np.maximum(edges[0] - values, 0).sum() / len(values))
    above = float(np.maximum(values - edges[-1], 0).sum() / len(values))
    return inside + below + above


def _step_cdf(points: np.ndarray, edges: np.ndarray, cdf: np.ndarray,
              strictly_below: bool = False) -> np.ndarray:
    """A CDF known exactly at `edges` (every value it has) at any points (or just below
    them)."""
    at = np.searchsorted(edges, points, side="left" if strictly_below else "right") - 1
    result: np.ndarray = np.where(at >= 0, cdf[np.maximum(at, 0)], 0.0)
    return result


def _ks_p_value(values: np.ndarray, edges: np.ndarray, ref_cdf: np.ndarray,
                cur_cdf: np.ndarray, ref_rows: int, exact: bool) -> float:
    """Two-sample KS with the reference known at its edges (exactly) and, between them, by
    interpolation; the current sample's own points are checked too when it is small."""
    distance = float(np.abs(ref_cdf - cur_cdf).max())
    if len(values) <= KS_EXACT_POINTS:
        ordered = np.sort(values)
        # Both sides of each jump of the current CDF: at the value, and just below it.
        at = np.searchsorted(ordered, ordered, side="right") / len(ordered)
        below = np.searchsorted(ordered, ordered, side="left") / len(ordered)
        if exact:
            ref_at = _step_cdf(ordered, edges, ref_cdf)
            ref_below = _step_cdf(ordered, edges, ref_cdf, strictly_below=True)
        else:
            ref_at = ref_below = np.interp(ordered, edges, ref_cdf, left=0.0, right=1.0)
        distance = max(distance, float(np.abs(at - ref_at).max()),
                       float(np.abs(below - ref_below).max()))
    # The distribution scipy's ks_2samp uses for large samples ("asymp").
    effective = ref_rows * len(values) / (ref_rows + len(values))
    return float(kstwo.sf(distance, max(1, round(effective))))


def _decile_shares(edges: np.ndarray, cdf: np.ndarray, deciles: list[float],
                   null_share: float) -> np.ndarray:
    at = np.interp(np.asarray(deciles), edges, cdf) if deciles else np.array([])
    bins = np.diff(np.concatenate([[0.0], at, [1.0]]))
    return np.append(bins * (1 - null_share), null_share)


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    ref = np.maximum(reference, _FLOOR)
    cur = np.maximum(current, _FLOOR)
    return float(((cur - ref) * np.log(cur / ref)).sum())


def _categorical(name: str, ref: dict[str, Any], series: pl.Series, method: str | None,
                 threshold: float | None) -> ColumnDrift:
    rows = len(series)
    present = series.cast(pl.String).drop_nulls()
    m = len(present)
    method = method or default_method("categorical", m)
    threshold = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    null_share = (rows - m) / rows if rows else 0.0
    counted = present.value_counts()
    current = {str(k): float(v) for k, v in zip(counted[:, 0].to_list(),
                                                 counted[:, 1].to_list(), strict=True)}
    ref_shares: dict[str, float] = ref["shares"]
    if OTHER in ref_shares:  # categories beyond the sketch's top ones count as "other"
        for key in [k for k in current if k not in ref_shares]:
            current[OTHER] = current.get(OTHER, 0.0) + current.pop(key)
    names = sorted(set(ref_shares) | set(current))
    ref_p = np.array([ref_shares.get(k, 0.0) for k in names])
    counts = np.array([current.get(k, 0.0) for k in names])
    cur_p = counts / m if m else np.zeros(len(names))
    ref_null = ref["nulls"] / ref["rows"] if ref["rows"] else 0.0
    psi = _psi(np.append(ref_p * (1 - ref_null), ref_null),
               np.append(cur_p * (1 - null_share), null_share))
    if m == 0:
        statistic = float("nan")
    elif method == "chisquare":
        expected = m * np.maximum(ref_p, 0.5 / max(ref.get("present", ref["rows"]), 1))
        expected = expected * m / expected.sum()
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        statistic = float(chdtrc(max(len(names) - 1, 1), chi2))
    elif method == "jensenshannon":
        middle = (ref_p + cur_p) / 2
        divergence = 0.5 * (_kl(ref_p, middle) + _kl(cur_p, middle))
        statistic = math.sqrt(max(divergence, 0.0))
    elif method == "psi":
        statistic = psi
    else:
        raise ValueError(f"column {name!r}: method {method!r} is not for categorical "
                         "columns; use chisquare, jensenshannon or psi")
    chart = Chart(categories=names, reference=ref_p.tolist(), current=cur_p.tolist())
    drifted = m > 0 and _verdict(method, statistic, threshold)
    return ColumnDrift(name, "categorical", method, statistic, threshold, drifted, psi, rows,
                       null_share, chart, present=m)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / q[mask])).sum())
