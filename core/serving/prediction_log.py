"""The prediction log: every scored request, written for monitoring without slowing
scoring. One record per request holds all its rows, so logging cost follows requests,
not rows.

A request appends to memory and returns; the shared buffered writer
(`mlyard.storage.buffered_writer`) writes batches about once a second, into the catalog
when it is free and into the spool when another process holds it, exactly like metric
points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from mlyard.storage.buffered_writer import BufferedWriter
from mlyard.storage.catalog import Catalog
from mlyard.storage.predictions_store import PREDICTION_SCHEMA

# One scored request: request id, timestamp, model, version, its typed feature rows
# (columnar, so a busy server holds arrays rather than one dict per row), outputs.
Prediction = tuple[str, float, str, int, pl.DataFrame, list[Any]]


class PredictionLog(BufferedWriter):
    def __init__(self, catalog: Catalog, flush_interval: float = 1.0,
                 enabled: bool = True) -> None:
        super().__init__(catalog, "mlyard-prediction-log", {"predictions": _table},
                         flush_interval=flush_interval)
        self.enabled = enabled

    def add(self, rows: list[Prediction]) -> None:
        if self.enabled:
            self.add_rows("predictions", rows)


def _table(rows: Sequence[Prediction]) -> pa.Table:
    request_ids, stamps, models, versions, inputs, outputs = zip(*rows, strict=True)
    return pa.table([
        pa.array(request_ids, pa.string()), pa.array(stamps, pa.float64()),
        pa.array(models, pa.string()), pa.array(versions, pa.int32()),
        pa.array([len(v) for v in outputs], pa.int32()),
        pa.array([frame.write_json() for frame in inputs], pa.string()),
        pa.array([orjson.dumps(v).decode() for v in outputs], pa.string()),
    ], schema=PREDICTION_SCHEMA)
