"""Splitting rows into train, validation (early stopping) and holdout (evaluation).

With a time column the newest rows are held out, as they would be in production: a
model is judged on data from after what it learned from. Otherwise a row is held out by
a stable hash of its identity (the id column, else its whole content), so a row held out
once is held out in every later training: no version ever trains on a row another is
judged on, and two versions can be compared on the same unseen rows. Validation rows
are drawn from the rest with the seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mlyard.core.errors import UsageError


@dataclass
class Split:
    train: np.ndarray  # row indices
    valid: np.ndarray
    holdout: np.ndarray
    record: dict[str, Any]  # how it was made, for the run's reproducibility record


def split_rows(frame: pl.DataFrame, time_column: str | None, holdout_fraction: float,
               valid_fraction: float, seed: int, id_column: str | None = None) -> Split:
    """Split rows; with a time column, rows sharing a timestamp stay on one side."""
    rows = frame.height
    if rows < 10:
        raise UsageError(f"only {rows} rows: need at least 10 to train and evaluate")
    if time_column:
        return _by_time(frame, time_column, holdout_fraction, valid_fraction, seed)
    held = holdout_mask(frame, holdout_fraction, id_column)
    holdout, rest = np.flatnonzero(held), np.flatnonzero(~held)
    if len(holdout) == 0 or len(rest) < 2:
        # Choosing other rows here would move them between holdout and training as the
        # data grows: better to say so.
        side = "none falls in the holdout" if len(holdout) == 0 else "too few are left to train on"
        raise UsageError(f"{rows} rows: {side} (each row's side is decided by a hash of "
                         f"its identity, {holdout_fraction:.0%} held out); add rows or "
                         "change [train] holdout_fraction")
    rest = rest[np.random.default_rng(seed).permutation(len(rest))]
    valid_size = max(1, int(round(len(rest) * valid_fraction)))
    split = Split(train=np.sort(rest[: len(rest) - valid_size]),
                  valid=np.sort(rest[len(rest) - valid_size:]), holdout=holdout, record={})
    split.record = _record("hash", seed, holdout_fraction, valid_fraction, split)
    split.record["identity"] = f"column {id_column}" if id_column in frame.columns \
        else "row content"
    return split


def holdout_mask(frame: pl.DataFrame, fraction: float, id_column: str | None = None
                 ) -> np.ndarray:
    """Rows whose identity hashes below `fraction` of the hash range: the same rows for
    any training that sees them, whatever else it sees."""
    return row_hashes(frame, id_column) < np.uint64(min(fraction, 1.0) * float(2**64 - 1))


def row_hashes(frame: pl.DataFrame, id_column: str | None = None) -> np.ndarray:
    """A 64-bit hash of each row's identity: its id when the frame has the id column,
    else every column's value (by column name, so column order does not matter).

    Defined here (splitmix64 over each value's bits, blake2b for text) rather than by
    polars' `hash_rows`, which polars does not keep stable across its releases: a model
    trained a year from now must hold out the rows held out today.
    """
    names = [id_column] if id_column in frame.columns else sorted(frame.columns)
    hashed = np.full(frame.height, 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in names:
            hashed = _mix(hashed ^ _column_hash(frame.get_column(name)))
    return hashed


_NULL = np.uint64(0x6A09E667F3BCC908)  # any fixed value a column cannot hash to by chance


def _column_hash(column: pl.Series) -> np.ndarray:
    # One value, one hash, however it is typed on the way: numbers (and booleans) as
    # float64, times as microseconds, so rows read back through pandas on a Dask worker
    # (ints with gaps become floats, dates datetimes) hash as they do here.
    nulls = column.is_null().to_numpy()
    if column.dtype.is_numeric() or column.dtype == pl.Boolean:
        values = column.cast(pl.Float64).fill_null(0.0).to_numpy().copy()
        nulls |= np.isnan(values)
        values[values == 0.0] = 0.0  # -0.0 and 0.0 are one value
        bits = values.view(np.uint64)
    elif column.dtype.is_temporal():
        bits = column.cast(pl.Datetime("us")).to_physical().fill_null(0).to_numpy() \
            .view(np.uint64)
    else:
        text = column.cast(pl.String)
        levels = text.drop_nulls().unique()
        codes = np.fromiter((int.from_bytes(hashlib.blake2b(level.encode(), digest_size=8)
                                            .digest(), "little") for level in levels),
                            dtype=np.uint64, count=len(levels))
        lookup = pl.Series("hash", codes, pl.UInt64)
        bits = text.replace_strict(levels, lookup, default=0, return_dtype=pl.UInt64) \
            .to_numpy().astype(np.uint64)
    return np.where(nulls, _NULL, _mix(bits.astype(np.uint64)))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _by_time(frame: pl.DataFrame, time_column: str, holdout_fraction: float,
             valid_fraction: float, seed: int) -> Split:
    times = frame.get_column(time_column)
    if times.null_count():
        raise UsageError(f"time column {time_column!r} has {times.null_count()} missing "
                         "values; a time-based split needs every row dated")
    distinct = times.n_unique()
    if distinct < 3:
        raise UsageError(f"time column {time_column!r} has {distinct} distinct "
                         f"value{'s' if distinct != 1 else ''}: too few distinct times to "
                         "hold out the newest rows (train, validation and holdout need one "
                         "each); add data or remove time_column")
    holdout_from = _cut(times, holdout_fraction)
    before = (times < holdout_from).to_numpy()
    valid_from = _cut(times.filter(pl.Series(before)), valid_fraction)
    in_train = (times < valid_from).to_numpy()
    split = Split(train=np.flatnonzero(in_train), valid=np.flatnonzero(before & ~in_train),
                  holdout=np.flatnonzero(~before), record={})
    if not (len(split.train) and len(split.valid) and len(split.holdout)):
        raise UsageError(f"time column {time_column!r} has too few distinct times to hold "
                         "out the newest rows; add data or remove time_column")
    split.record = _record("time", seed, holdout_fraction, valid_fraction, split)
    split.record.update({"time_column": time_column, "holdout_from": str(holdout_from),
                         "valid_from": str(valid_from)})
    return split


def _cut(times: pl.Series, fraction: float) -> object:
    """The earliest time such that rows at or after it make up about `fraction`."""
    ordered = times.sort()
    if ordered.len() < 2:
        return ordered[-1] if ordered.len() else None
    position = min(ordered.len() - 1, max(1, int(round(ordered.len() * (1 - fraction)))))
    return ordered[position]


def _record(method: str, seed: int, holdout_fraction: float, valid_fraction: float,
            split: Split) -> dict[str, Any]:
    return {"method": method, "seed": seed, "holdout_fraction": holdout_fraction,
            "valid_fraction": valid_fraction,
            "rows": {"train": len(split.train), "valid": len(split.valid),
                     "holdout": len(split.holdout)}}
