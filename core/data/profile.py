"""Per-column profiles of a dataset version, and the difference between two of them.

A profile is small JSON kept in the catalog, so listing, diffing and (later) drift
checks never need to reread the snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

TOP_VALUES = 10
MAX_LEVELS = 10_000  # every level's count is kept up to this many levels
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
QUANTILE_SAMPLE = 500_000
HISTOGRAM_BINS = 12
EXACT_DISTINCT_ROWS = 1_000_000
IN_MEMORY_ROWS = 200_000  # a version this small is read once and profiled in memory

Frame = pl.DataFrame | pl.LazyFrame


def profile_parquet(path: Path, types: Mapping[str, str], rows_in_memory: pl.DataFrame | None = None
                    ) -> dict[str, dict[str, Any]]:
    """Counts, missing share, range, moments, quantiles or top values for every column.

    Past EXACT_DISTINCT_ROWS rows, distinct counts are HyperLogLog estimates; quantiles
    come from an evenly spaced sample of at most QUANTILE_SAMPLE rows. Memory stays flat
    for any file size: past IN_MEMORY_ROWS the snapshot is streamed, each query reading
    it again. Below, it is read once: streaming's start-up cost, paid by a dozen queries,
    was most of the time a small file took to ingest. `rows_in_memory`, the file's rows
    already in memory, saves reading them.
    """
    frame: Frame
    if rows_in_memory is not None:
        frame, rows = rows_in_memory, rows_in_memory.height
    else:
        rows = pq.ParquetFile(path).metadata.num_rows
        frame = pl.read_parquet(path) if rows <= IN_MEMORY_ROWS else \
            pl.scan_parquet(path, glob=False)
    reductions, quantiles = _expressions(tuple(types.items()), rows <= EXACT_DISTINCT_ROWS)
    numeric = [name for name, kind in types.items() if kind in {"int", "float"}]
    sample: pl.DataFrame | None = None
    if isinstance(frame, pl.DataFrame) and rows <= QUANTILE_SAMPLE:
        # Rows in memory are their own quantile sample: one query instead of two.
        stats = frame.select(reductions + quantiles).row(0, named=True)
        sample = frame
    else:
        stats = _run(frame.select(reductions)).row(0, named=True)
        if quantiles:
            step = max(1, math.ceil(rows / QUANTILE_SAMPLE))
            sample = _run((frame.gather_every(step) if step > 1 else frame).select(numeric))
            stats.update(sample.select(quantiles).row(0, named=True))
    profile: dict[str, dict[str, Any]] = {
        name: {"type": kind, "rows": rows} for name, kind in types.items()}
    for key, value in stats.items():
        name, stat = key.split("\x00", 1)
        profile[name][stat] = value
    for name, kind in types.items():
        entry = profile[name]
        entry["null_rate"] = entry["nulls"] / rows if rows else 0.0
        if kind in {"category", "bool"}:
            counts = _level_counts(frame, name)
            entry["top"] = counts[:TOP_VALUES]
            if len(counts) <= MAX_LEVELS:
                entry["levels"] = {str(value): n for value, n in counts if value is not None}
        if sample is not None and name in numeric:  # nulls become NaN, left out
            entry["histogram"] = _histogram(
                sample.get_column(name).cast(pl.Float64).to_numpy())
    return profile


@lru_cache(maxsize=32)
def _expressions(types: tuple[tuple[str, str], ...], exact: bool
                 ) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """The reductions and quantiles for columns of these types, built once: building
    them took longer than running them on a small file."""
    reductions: list[pl.Expr] = []
    quantiles: list[pl.Expr] = []
    for name, kind in types:
        col = pl.col(name)
        distinct = col.n_unique() if exact else col.approx_n_unique()
        reductions += [col.null_count().alias(f"{name}\x00nulls"),
                       distinct.alias(f"{name}\x00distinct")]
        if kind in {"int", "float"}:
            as_float = col.cast(pl.Float64)
            reductions += [as_float.min().alias(f"{name}\x00min"),
                           as_float.max().alias(f"{name}\x00max"),
                           as_float.mean().alias(f"{name}\x00mean"),
                           as_float.std().alias(f"{name}\x00std")]
            quantiles += [as_float.quantile(q, "linear").alias(f"{name}\x00p{int(q * 100):02d}")
                          for q in QUANTILES]
        elif kind in {"date", "datetime"}:
            reductions += [col.min().cast(pl.String).alias(f"{name}\x00min"),
                           col.max().cast(pl.String).alias(f"{name}\x00max")]
        elif kind == "bool":
            reductions.append(col.cast(pl.Float64).mean().alias(f"{name}\x00true_rate"))
    return reductions, quantiles


def _histogram(values: np.ndarray) -> list[int]:
    """Counts in HISTOGRAM_BINS equal-width bins between the sample's min and max."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    try:
        counts, _ = np.histogram(finite, bins=HISTOGRAM_BINS)
    except ValueError:
        # One value (or a range too narrow for its magnitude, like 562949953421312 +- 0.5)
        # cannot be cut into equal finite bins: everything falls in the first.
        return [int(finite.size)] + [0] * (HISTOGRAM_BINS - 1)
    return [int(c) for c in counts]


def _run(query: Frame) -> pl.DataFrame:
    """A query's result: streamed from the file, or already computed in memory."""
    return query.collect(engine="streaming") if isinstance(query, pl.LazyFrame) else query


def _level_counts(frame: Frame, name: str) -> list[list[Any]]:
    """[value, rows] for every level, most rows first, then by value with the missing
    last (up to MAX_LEVELS + 1)."""
    if isinstance(frame, pl.DataFrame):
        # A Series' value_counts skips the query engine: 50x quicker on a small file.
        rows = frame.get_column(name).value_counts(name="n").rows()
        rows.sort(key=lambda row: (-row[1], row[0] is None, row[0]))
        counts = rows[:MAX_LEVELS + 1]
    else:
        counts = frame.group_by(name).agg(pl.len().alias("n")).sort(
            ["n", name], descending=[True, False], nulls_last=True,
        ).head(MAX_LEVELS + 1).collect(engine="streaming").rows()
    return [[None if value is None else str(value), int(n)] for value, n in counts]


def diff_profiles(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Schema changes plus, for shared columns, the shifts a person would look at first."""
    added = [c for c in new if c not in old]
    removed = [c for c in old if c not in new]
    retyped = {c: [old[c]["type"], new[c]["type"]] for c in old
               if c in new and old[c]["type"] != new[c]["type"]}
    columns: dict[str, dict[str, Any]] = {}
    for name in (c for c in new if c in old and c not in retyped):
        before, after = old[name], new[name]
        change: dict[str, Any] = {
            "null_rate": [before["null_rate"], after["null_rate"]],
            "distinct": [before["distinct"], after["distinct"]],
        }
        if before["type"] in {"int", "float"}:
            change["mean"] = [before.get("mean"), after.get("mean")]
            spread = before.get("std") or 0.0
            if spread and before.get("mean") is not None and after.get("mean") is not None:
                change["mean_shift_in_std"] = (after["mean"] - before["mean"]) / spread
            change["range"] = [[before.get("min"), before.get("max")],
                               [after.get("min"), after.get("max")]]
        if "top" in before:
            change.update(_share_change(before, after))
        columns[name] = change
    return {"added": added, "removed": removed, "retyped": retyped, "columns": columns}


def _share_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Levels that appeared or vanished, with their rows, and the level whose share of
    rows moved most. Compares every level when both profiles have them (versions
    profiled before that: only their top values)."""
    complete = "levels" in before and "levels" in after
    old_counts = before["levels"] if complete else {v: n for v, n in before["top"]}
    new_counts = after["levels"] if complete else {v: n for v, n in after.get("top", [])}
    old_share = {v: n / max(1, before["rows"]) for v, n in old_counts.items()}
    new_share = {v: n / max(1, after["rows"]) for v, n in new_counts.items()}
    values = [v for v in {*old_share, *new_share} if v is not None]
    change: dict[str, Any] = {
        "levels_compared": "all" if complete else "top values only",
        "levels_added": {v: new_counts[v] for v in sorted(new_counts, key=str)
                         if v is not None and v not in old_counts},
        "levels_removed": {v: old_counts[v] for v in sorted(old_counts, key=str)
                           if v is not None and v not in new_counts},
    }
    if values:
        moved = max(values, key=lambda v: abs(new_share.get(v, 0.0) - old_share.get(v, 0.0)))
        change["largest_share_change"] = [moved, old_share.get(moved, 0.0),
                                          new_share.get(moved, 0.0)]
    return change
