"""Batch scoring on a Dask cluster.

Scoring sends batches of validated rows to the workers, at most a few in flight, and
writes the results in order into one Parquet file that appears only when every batch
is done: a worker lost mid-way has its batches rerun by the scheduler, and a failure
that cannot be retried leaves no partial output.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from mlyard.core.data.reader import read_batches
from mlyard.core.data.sniff import sniff
from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.models.loading import load_model
from mlyard.core.serving.batch import _typed
from mlyard.core.workspace import Workspace


def _score_batch(model_text: str, spec_json: str, table: pa.Table) -> pa.Table:
    """Score one batch on a worker; the model is LightGBM text, never a pickle."""
    import lightgbm as lgb

    spec = FeatureSpec.from_json(json.loads(spec_json))
    booster = lgb.Booster(model_str=model_text)
    frame = pl.DataFrame(pl.from_arrow(table))
    output = np.asarray(booster.predict(encode(frame, spec)))
    if output.ndim == 2:
        labels = spec.classes or [str(i) for i in range(output.shape[1])]
        return pa.table({f"prediction_{label}": output[:, i] for i, label in enumerate(labels)})
    return pa.table({"prediction": output})


def predict_on_cluster(ws: Workspace, ref: str, source: Path, target: Path, client: Any,
                       in_flight: int = 4, batch_rows: int = 25_000) -> int:
    """Like `core.predict.predict_file`, with the scoring on the cluster."""
    model = load_model(ws, ref)
    text = model.booster.model_to_string()
    [model_future] = client.scatter([text], broadcast=True)
    spec_json = json.dumps(model.spec.to_json())
    tmp = target.with_name(target.name + ".partial")
    writer: pq.ParquetWriter | None = None
    pending: deque[tuple[pl.DataFrame, Any]] = deque()
    rows = 0

    def write_oldest() -> None:
        nonlocal writer
        batch, future = pending.popleft()
        scored = future.result()
        table = pl.concat([batch, pl.DataFrame(pl.from_arrow(scored))],
                          how="horizontal").to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table.cast(writer.schema))

    try:
        for batch in read_batches(sniff(source), batch_rows):
            features = _typed(batch, model.spec, rows, source)
            future = client.submit(_score_batch, model_future, spec_json,
                                   features.to_arrow(), pure=False)
            pending.append((batch, future))
            rows += batch.height
            while len(pending) >= in_flight:
                write_oldest()
        while pending:
            write_oldest()
    except BaseException as exc:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        if isinstance(exc, MlyardError | KeyboardInterrupt):
            raise
        raise UsageError(f"scoring on the Dask cluster failed, nothing written: {exc}") \
            from None
    if writer is None:
        raise UsageError(f"{source}: no rows to score")
    writer.close()
    tmp.replace(target)
    return rows
