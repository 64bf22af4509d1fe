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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.special import chdtrc, kolmogorov

from mlyard.core.models.sketch import OTHER, histogram, numeric_values

SMALL_SAMPLE = 1000
METHODS = ("ks", "wasserstein", "chisquare", "jensenshannon", "psi")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1,
                      "jensenshannon": 0.1, "psi": 0.1}
P_VALUE_METHODS = {"ks", "chisquare"}
PSI_MODERATE, PSI_SEVERE = 0.1, 0.2
_FLOOR = 1e-4  # shares are floored here before PSI's logarithm


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
    chart: dict[str, Any] = field(default_factory=dict)  # reference vs current, for plots
    unseen: dict[str, int] = field(default_factory=dict)  # levels the model never saw: rows

    @property
    def psi_level(self) -> str:
        if self.psi >= PSI_SEVERE:
            return "severe"
        return "moderate" if self.psi >= PSI_MODERATE else "none"


def default_method(kind: str, rows: int) -> str:
    if kind == "numeric":
        return "ks" if rows <= SMALL_SAMPLE else "wasserstein"
    return "chisquare" if rows <= SMALL_SAMPLE else "jensenshannon"


def column_drift(name: str, reference: dict[str, Any], series: pl.Series,
                 method: str | None = None, threshold: float | None = None) -> ColumnDrift:
    """Drift of one current column against its reference sketch."""
    if reference["kind"] == "numeric":
        return _numeric(name, reference, series, method, threshold)
    return _categorical(name, reference, series, method, threshold)


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
                           float("nan"), rows, null_share)
    ref_cdf = np.asarray(ref["cdf"])
    # One pass: how many current values lie at or below each reference edge.
    first_edge_at_or_above = np.searchsorted(edges, values, side="left")
    cur_cdf = np.cumsum(np.bincount(first_edge_at_or_above, minlength=len(edges) + 1))[
        :len(edges)] / m
    ref_null = ref["nulls"] / ref["rows"] if ref["rows"] else 0.0
    psi = _psi(_decile_shares(edges, ref_cdf, ref["deciles"], ref_null),
               _decile_shares(edges, cur_cdf, ref["deciles"], null_share))
    if method == "ks":
        statistic = _ks_p_value(values, edges, ref_cdf, cur_cdf, ref["rows"] - ref["nulls"])
    elif method == "wasserstein":
        gaps = np.diff(edges)
        inside = float((np.abs(ref_cdf - cur_cdf)[:-1] * gaps).sum())
        below = float(np.maximum(edges[0] - values, 0).sum() / m)
        above = float(np.maximum(values - edges[-1], 0).sum() / m)
        statistic = (inside + below + above) / max(ref["std"] or 0.0, 1e-12)
    elif method == "psi":
        statistic = psi
    else:
        raise ValueError(f"column {name!r}: method {method!r} is not for numeric columns; "
                         "use ks, wasserstein or psi")
    chart_edges = np.asarray(ref["histogram_edges"])
    chart = {"edges": ref["histogram_edges"], "reference": ref["histogram"],
             "current": histogram(values, chart_edges).tolist()}
    return ColumnDrift(name, "numeric", method, float(statistic), threshold,
                       _verdict(method, statistic, threshold), psi, rows, null_share, chart)


def _ks_p_value(values: np.ndarray, edges: np.ndarray, ref_cdf: np.ndarray,
                cur_cdf: np.ndarray, ref_rows: int) -> float:
    """Two-sample KS with the reference known at its edges (exactly) and, between them, by
    interpolation; the current sample's own points are checked too when it is small."""
    distance = float(np.abs(ref_cdf - cur_cdf).max())
    if len(values) <= 20 * SMALL_SAMPLE:
        ordered = np.sort(values)
        below_or_at = np.searchsorted(ordered, ordered, side="right") / len(ordered)
        ref_at = np.interp(ordered, edges, ref_cdf, left=0.0, right=1.0)
        distance = max(distance, float(np.abs(below_or_at - ref_at).max()))
    effective = math.sqrt(ref_rows * len(values) / (ref_rows + len(values)))
    return float(kolmogorov((effective + 0.12 + 0.11 / effective) * distance))


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
    chart = {"categories": names, "reference": ref_p.tolist(), "current": cur_p.tolist()}
    drifted = m > 0 and _verdict(method, statistic, threshold)
    return ColumnDrift(name, "categorical", method, statistic, threshold, drifted, psi, rows,
                       null_share, chart)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / q[mask])).sum())
