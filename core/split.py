"""Splitting rows into train, validation (early stopping) and holdout (evaluation).

With a time column the newest rows are held out, as they would be in production: a
model is judged on data from after what it learned from. Otherwise a seeded shuffle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from core.errors import UsageError


@dataclass
class Split:
    train: np.ndarray  # row indices
    valid: np.ndarray
    holdout: np.ndarray
    record: dict[str, Any]  # how it was made, for the run's reproducibility record


def split_rows(frame: pl.DataFrame, time_column: str | None, holdout_fraction: float,
               valid_fraction: float, seed: int) -> Split:
    rows = frame.height
    if rows < 10:
        raise UsageError(f"only {rows} rows: need at least 10 to train and evaluate")
    if time_column:
        order = frame.select(pl.arg_sort_by([pl.col(time_column)], maintain_order=True)) \
            .to_series().to_numpy()
        method = "time"
    else:
        order = np.random.default_rng(seed).permutation(rows)
        method = "random"
    holdout_size = max(1, int(round(rows * holdout_fraction)))
    rest = order[: rows - holdout_size]
    valid_size = max(1, int(round(len(rest) * valid_fraction)))
    split = Split(train=np.sort(rest[: len(rest) - valid_size]),
                  valid=np.sort(rest[len(rest) - valid_size:]),
                  holdout=np.sort(order[rows - holdout_size:]), record={})
    split.record = {"method": method, "seed": seed, "holdout_fraction": holdout_fraction,
                    "valid_fraction": valid_fraction, "rows": {"train": len(split.train),
                    "valid": len(split.valid), "holdout": len(split.holdout)}}
    if time_column:
        times = frame.get_column(time_column)
        split.record["time_column"] = time_column
        split.record["holdout_from"] = str(times[int(order[rows - holdout_size])])
        split.record["valid_from"] = str(times[int(order[len(rest) - valid_size])])
    return split
