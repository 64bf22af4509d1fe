"""The prediction log: every scored request, written for monitoring without slowing
scoring. One record per request holds all its rows, so logging cost follows requests,
not rows.

A request appends to memory and returns; a background thread writes batches about once
a second, into the catalog when it is free and into the spool when another process
holds it, exactly like metric points.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from mlyard.storage import spool
from mlyard.storage.catalog import Catalog
from mlyard.storage.errors import MlyardError
from mlyard.storage.predictions_store import PREDICTION_SCHEMA, insert_predictions

# One scored request: request id, timestamp, model, version, its typed feature rows
# (columnar, so a busy server holds arrays rather than one dict per row), outputs.
Prediction = tuple[str, float, str, int, pl.DataFrame, list[Any]]


class PredictionLog:
    def __init__(self, catalog: Catalog, flush_interval: float = 1.0,
                 enabled: bool = True) -> None:
        self.catalog = catalog
        self.enabled = enabled
        self.flush_interval = flush_interval
        self._rows: list[Prediction] = []
        self._guard = threading.Lock()
        self._flush_guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlyard-prediction-log",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, rows: list[Prediction]) -> None:
        if not self.enabled:
            return
        with self._guard:
            self._rows.extend(rows)

    def flush(self) -> None:
        with self._flush_guard:
            with self._guard:
                rows, self._rows = self._rows, []
            if not rows:
                return
            batch = _table(rows)
            try:
                with self.catalog.try_session() as con:
                    if con is not None:
                        insert_predictions(con, batch)
                        return
            except MlyardError:
                pass
            spool.write_segment(self.catalog.spool_dir, "predictions", batch)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except OSError:
                continue


def _table(rows: list[Prediction]) -> pa.Table:
    request_ids, stamps, models, versions, inputs, outputs = zip(*rows, strict=True)
    return pa.table([
        pa.array(request_ids, pa.string()), pa.array(stamps, pa.float64()),
        pa.array(models, pa.string()), pa.array(versions, pa.int32()),
        pa.array([len(v) for v in outputs], pa.int32()),
        pa.array([frame.write_json() for frame in inputs], pa.string()),
        pa.array([orjson.dumps(v).decode() for v in outputs], pa.string()),
    ], schema=PREDICTION_SCHEMA)
