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

import msgspec
import numpy as np
import polars as pl
import pyarrow.parquet as pq

from mlyard.core.data.histograms import histograms
from mlyard.core.humanize import number
from mlyard.storage.profiles import ColumnProfile as ColumnProfile  # the UI shows these
from mlyard.storage.profiles import Profile as Profile

TOP_VALUES = 10
MAX_LEVELS = 10_000  # every level's count is kept up to this many levels
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
QUANTILE_SAMPLE = 500_000
EXACT_DISTINCT_ROWS = 1_000_000
IN_MEMORY_ROWS = 200_000  # a version this small is read once and profiled in memory

Frame = pl.DataFrame | pl.LazyFrame


def profile_parquet(path: Path, types: Mapping[str, str], rows_in_memory: pl.DataFrame | None = None
                    ) -> Profile:
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
    levels = {name: _level_counts(frame, name) for name, kind in types.items()
              if kind in {"category", "bool"}}
    found = histograms([sample.get_column(name).cast(pl.Float64).to_numpy()
                        for name in numeric]) if sample is not None else []
    return _assemble(types, rows, stats, levels, dict(zip(numeric, found, strict=True)))


def profile_frames(frames: list[pl.DataFrame], types: Mapping[str, str]) -> list[Profile]:
    """`profile_parquet` of several small files' rows in memory, all of them at once:
    counts and quantiles in one query, levels in one per column, histograms in one pass
    (a query's fixed cost, paid per file, was most of a small file's profile)."""
    reductions, quantiles = _expressions(tuple(types.items()), True)
    heights = [frame.height for frame in frames]
    key = pl.Series("\x00file", np.repeat(np.arange(len(frames), dtype=np.uint32), heights))
    joined = pl.concat(frames, how="vertical_relaxed").with_columns(key)
    stats = joined.group_by(key.name, maintain_order=True).agg(reductions + quantiles)
    levels: list[dict[str, list[list[Any]]]] = [{} for _ in frames]
    for name, kind in types.items():
        if kind in {"category", "bool"}:
            for index, counts in enumerate(_levels_by_file(joined, key.name, name,
                                                           len(frames))):
                levels[index][name] = counts
    numeric = [name for name, kind in types.items() if kind in {"int", "float"}]
    block = joined.select(pl.col(numeric).cast(pl.Float64)).to_numpy()
    ends = np.cumsum(heights)
    found = histograms([block[end - height:end, column] for end, height in zip(ends, heights,
                                                                              strict=True)
                        for column in range(len(numeric))])
    return [_assemble(types, frame.height, {k: v for k, v in row.items() if k != key.name},
                      levels[index], dict(zip(numeric, found[index * len(numeric):
                                                             (index + 1) * len(numeric)],
                                              strict=True)))
            for index, (frame, row) in enumerate(zip(frames, stats.iter_rows(named=True),
                                                     strict=True))]


def _assemble(types: Mapping[str, str], rows: int, stats: dict[str, Any],
              levels: dict[str, list[list[Any]]], found: dict[str, list[int]]) -> Profile:
    """The profile from the query's figures, level counts and histograms."""
    entries: dict[str, dict[str, Any]] = {
        name: {"type": kind, "rows": rows} for name, kind in types.items()}
    for key, value in stats.items():
        name, stat = key.split("\x00", 1)
        entries[name][stat] = value
    for name, entry in entries.items():
        entry["null_rate"] = entry["nulls"] / rows if rows else 0.0
        if name in levels:
            counts = levels[name]
            entry["top"] = counts[:TOP_VALUES]
            if len(counts) <= MAX_LEVELS:
                entry["levels"] = {str(value): n for value, n in counts if value is not None}
        if name in found:  # nulls became NaN, left out
            entry["histogram"] = found[name]
    return {name: msgspec.convert(entry, ColumnProfile) for name, entry in entries.items()}


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


def _run(query: Frame) -> pl.DataFrame:
    """A query's result: streamed from the file, or already computed in memory."""
    return query.collect(engine="streaming") if isinstance(query, pl.LazyFrame) else query


def _levels_by_file(joined: pl.DataFrame, key: str, name: str, files: int
                    ) -> list[list[list[Any]]]:
    """`_level_counts` of each file's rows in `joined` (`key` numbers the files)."""
    rows: list[list[tuple[Any, int]]] = [[] for _ in range(files)]
    for index, value, count in joined.group_by(key, name).len().iter_rows():
        rows[index].append((value, count))
    return [_ordered(found) for found in rows]


def _ordered(rows: list[tuple[Any, int]]) -> list[list[Any]]:
    """Most rows first, then by value with the missing last (up to MAX_LEVELS + 1)."""
    rows.sort(key=lambda row: (-row[1], row[0] is None, row[0]))
    return [[None if value is None else str(value), int(n)]
            for value, n in rows[:MAX_LEVELS + 1]]


def _level_counts(frame: Frame, name: str) -> list[list[Any]]:
    """[value, rows] for every level, most rows first, then by value with the missing
    last (up to MAX_LEVELS + 1)."""
    if isinstance(frame, pl.DataFrame):
        # A Series' value_counts skips the query engine: 50x quicker on a small file.
        return _ordered(frame.get_column(name).value_counts(name="n").rows())
    else:
        counts = frame.group_by(name).agg(pl.len().alias("n")).sort(
            ["n", name], descending=[True, False], nulls_last=True,
        ).head(MAX_LEVELS + 1).collect(engine="streaming").rows()
    return [[None if value is None else str(value), int(n)] for value, n in counts]


class Shift(msgspec.Struct, array_like=True, frozen=True):
    """A figure before and after, kept as `[before, after]`."""

    before: int | float | None
    after: int | float | None


class Span(msgspec.Struct, array_like=True, frozen=True):
    low: float | str | None
    high: float | str | None


class RangeShift(msgspec.Struct, array_like=True, frozen=True):
    before: Span
    after: Span


class ShareMove(msgspec.Struct, array_like=True, frozen=True):
    """The level whose share of rows moved most: `[level, share before, share after]`."""

    level: str
    before: float
    after: float


class TypeChange(msgspec.Struct, array_like=True, frozen=True):
    before: str
    after: str


class ColumnChange(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How one column shared by both versions moved."""

    null_rate: Shift
    distinct: Shift
    mean: Shift | None = None  # numbers
    mean_shift_in_std: float | None = None  # in the old version's standard deviations
    range: RangeShift | None = None
    levels_compared: str | None = None  # "all", or "top values only" for old profiles
    levels_added: dict[str, int] | None = None  # level -> rows
    levels_removed: dict[str, int] | None = None
    largest_share_change: ShareMove | None = None

    def describe(self) -> str:
        """One line: mean shift, biggest level move, new and vanished levels."""
        parts = []
        if self.mean is not None and self.mean.before is not None:
            shift = self.mean_shift_in_std
            parts.append(f"mean {number(self.mean.before)} -> {number(self.mean.after)}"
                         + (f" ({shift:+.2f} sd)" if shift is not None else ""))
        moved = self.largest_share_change
        if moved is not None and abs(moved.after - moved.before) >= 0.005:
            parts.append(f"{moved.level} {moved.before:.1%} -> {moved.after:.1%}")
        for label, levels in (("added", self.levels_added), ("removed", self.levels_removed)):
            if levels:
                shown = ", ".join(f"{level} ({rows:,})" for level, rows in list(levels.items())[:5])
                more = f" and {len(levels) - 5} more" if len(levels) > 5 else ""
                parts.append(f"{label}: {shown}{more}")
        if self.levels_compared == "top values only" and \
                (self.levels_added or self.levels_removed):
            parts.append("(top values only: a version profiled before full level counts)")
        return "; ".join(parts)

    @property
    def moved(self) -> float:
        """How far the column moved, to order a diff by: its mean in standard deviations,
        five times its biggest level share, 1 for new or vanished levels."""
        shift = abs(self.mean_shift_in_std or 0.0)
        if self.largest_share_change is not None:
            change = self.largest_share_change
            shift = max(shift, abs(change.after - change.before) * 5)
        if self.levels_added or self.levels_removed:
            shift = max(shift, 1.0)
        return float(shift)


class ProfileDiff(msgspec.Struct, kw_only=True):
    """Two versions' schema and profile differences, as `data diff` and the UI show them."""

    added: list[str]
    removed: list[str]
    retyped: dict[str, TypeChange]
    columns: dict[str, ColumnChange]
    rows: Shift


def diff_profiles(old: Profile, new: Profile, rows: Shift) -> ProfileDiff:
    """Schema changes plus, for shared columns, the shifts a person would look at first."""
    added = [c for c in new if c not in old]
    removed = [c for c in old if c not in new]
    retyped = {c: TypeChange(old[c].type, new[c].type) for c in old
               if c in new and old[c].type != new[c].type}
    columns: dict[str, ColumnChange] = {}
    for name in (c for c in new if c in old and c not in retyped):
        before, after = old[name], new[name]
        change = ColumnChange(null_rate=Shift(before.null_rate, after.null_rate),
                              distinct=Shift(before.distinct, after.distinct))
        if before.type in {"int", "float"}:
            change.mean = Shift(before.mean, after.mean)
            spread = before.std or 0.0
            if spread and before.mean is not None and after.mean is not None:
                change.mean_shift_in_std = (after.mean - before.mean) / spread
            change.range = RangeShift(Span(before.min, before.max), Span(after.min, after.max))
        if before.top is not None:
            _share_change(before, after, change)
        columns[name] = change
    return ProfileDiff(added=added, removed=removed, retyped=retyped, columns=columns,
                       rows=rows)


def _share_change(before: ColumnProfile, after: ColumnProfile, change: ColumnChange) -> None:
    """Levels that appeared or vanished, with their rows, and the level whose share of
    rows moved most. Compares every level when both profiles have them (versions
    profiled before that: only their top values)."""
    complete = before.levels is not None and after.levels is not None
    old_counts: dict[str | None, int] = \
        {v: n for v, n in (before.levels or {}).items()} if complete \
        else {level.value: level.rows for level in before.top or []}
    new_counts: dict[str | None, int] = \
        {v: n for v, n in (after.levels or {}).items()} if complete \
        else {level.value: level.rows for level in after.top or []}
    old_share = {v: n / max(1, before.rows) for v, n in old_counts.items()}
    new_share = {v: n / max(1, after.rows) for v, n in new_counts.items()}
    values = [v for v in {*old_share, *new_share} if v is not None]
    change.levels_compared = "all" if complete else "top values only"
    change.levels_added = {v: new_counts[v] for v in sorted(new_counts, key=str)
                           if v is not None and v not in old_counts}
    change.levels_removed = {v: old_counts[v] for v in sorted(old_counts, key=str)
                             if v is not None and v not in new_counts}
    if values:
        moved = max(values, key=lambda v: abs(new_share.get(v, 0.0) - old_share.get(v, 0.0)))
        change.largest_share_change = ShareMove(moved, old_share.get(moved, 0.0),
                                                new_share.get(moved, 0.0))
