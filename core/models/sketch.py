"""Compact sketches of a column's distribution, stored with each model as its drift
reference, so checking new data never rereads the training data.

A numeric sketch keeps the reference's percentiles with the exact share of values at or
below each one (exact for discrete columns too), a 10-bin decile split for PSI, and a
20-bin histogram for charts; a categorical sketch keeps category shares. Either keeps the
null share. A few kB per feature, whatever the size of the training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

# Percentiles, plus finer steps in the tails, where bins of a long-tailed column are wide.
GRID = np.unique(np.concatenate([np.linspace(0.0, 1.0, 101),
                                 [0.001, 0.002, 0.005, 0.995, 0.998, 0.999]]))
DECILES = np.linspace(0.1, 0.9, 9)
HISTOGRAM_BINS = 20
MAX_CATEGORIES = 200
OTHER = "(other)"


def column_kind(feature_type: str) -> str:
    """numeric for int and float features; categorical for category and bool."""
    return "numeric" if feature_type in ("int", "float") else "categorical"


def numeric_values(series: pl.Series) -> np.ndarray:
    """The finite values of a column as float64 (nulls and NaN dropped)."""
    values = series.cast(pl.Float64, strict=False).drop_nulls().to_numpy()
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def sketch_numeric(series: pl.Series) -> dict[str, Any]:
    values = np.sort(numeric_values(series))
    rows = len(series)
    sketch: dict[str, Any] = {"kind": "numeric", "rows": rows, "nulls": rows - len(values)}
    if len(values) == 0:
        return {**sketch, "edges": [], "cdf": [], "deciles": [], "mean": None, "std": None}
    edges = np.unique(np.quantile(values, GRID, method="inverted_cdf"))
    deciles = np.unique(np.quantile(values, DECILES, method="inverted_cdf"))
    low, high = np.quantile(values, [0.01, 0.99])
    if high <= low:
        low, high = float(values[0]), float(values[-1]) + 1.0
    histogram_edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {
        **sketch,
        "edges": edges.tolist(),
        "cdf": (np.searchsorted(values, edges, side="right") / len(values)).tolist(),
        "deciles": deciles.tolist(),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "histogram_edges": histogram_edges.tolist(),
        "histogram": histogram(values, histogram_edges).tolist(),
    }


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of values per bin, the outer bins also holding what lies beyond them."""
    if len(values) == 0:
        return np.zeros(len(edges) - 1)
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(index, minlength=len(edges) - 1) / len(values)


def sketch_categorical(series: pl.Series) -> dict[str, Any]:
    rows = len(series)
    present = series.cast(pl.String).drop_nulls()
    counts = present.value_counts(sort=True)
    names, numbers = counts[:, 0].to_list(), counts[:, 1].to_list()
    shares = {str(k): v / max(len(present), 1) for k, v in zip(names, numbers, strict=True)}
    if len(shares) > MAX_CATEGORIES:
        kept = dict(list(shares.items())[:MAX_CATEGORIES])
        kept[OTHER] = 1.0 - sum(kept.values())
        shares = kept
    return {"kind": "categorical", "rows": rows, "nulls": rows - len(present),
            "present": len(present), "shares": shares}


def sketch_column(series: pl.Series, kind: str) -> dict[str, Any]:
    return sketch_numeric(series) if kind == "numeric" else sketch_categorical(series)


def sketch_frame(frame: pl.DataFrame, kinds: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One sketch per column named in `kinds` (column -> numeric | categorical)."""
    return {name: sketch_column(frame[name], kind) for name, kind in kinds.items()}
