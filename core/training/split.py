"""Splitting rows into train, validation (early stopping) and holdout (evaluation).

With a time column the newest rows are held out, as they would be in production: a
model is judged on data from after what it learned from. Otherwise a seeded shuffle.
"""

from __future__ import annotations

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
               valid_fraction: float, seed: int) -> Split:
    """Split rows; with a time column, rows sharing a timestamp stay on one side."""
    rows = frame.height
    if rows < 10:
        raise UsageError(f"only {rows} rows: need at least 10 to train and evaluate")
    if time_column:
        return _by_time(frame, time_column, holdout_fraction, valid_fraction, seed)
    order = np.random.default_rng(seed).permutation(rows)
    holdout_size = max(1, int(round(rows * holdout_fraction)))
    rest = order[: rows - holdout_size]
    valid_size = max(1, int(round(len(rest) * valid_fraction)))
    split = Split(train=np.sort(rest[: len(rest) - valid_size]),
                  valid=np.sort(rest[len(rest) - valid_size:]),
                  holdout=np.sort(order[rows - holdout_size:]), record={})
    split.record = _record("random", seed, holdout_fraction, valid_fraction, split)
    return split


def _by_time(frame: pl.DataFrame, time_column: str, holdout_fraction: float,
             valid_fraction: float, seed: int) -> Split:
    times = frame.get_column(time_column)
    if times.null_count():
        raise UsageError(f"time column {time_column!r} has {times.null_count()} missing "
                         "values; a time-based split needs every row dated")
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
