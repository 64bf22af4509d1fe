"""Batch scoring on a Dask cluster.

Batches of checked rows go to the workers, at most a few in flight, and come back in
order to the same writer local scoring uses (`batch.write_scored`), so the output
appears only when every batch is done: a worker lost mid-way has its batches rerun by
the scheduler, and a failure that cannot be retried leaves no partial output.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.models.loading import load_model
from mlyard.core.serving.batch import Batches, Scored, prediction_frame, write_scored
from mlyard.core.workspace import Workspace

if TYPE_CHECKING:  # the optional dask extra: imported only where it is used
    from distributed import Client


def _score_batch(model_text: str, spec_json: str, table: pa.Table) -> pa.Table:
    """Score one batch on a worker; the model is LightGBM text, never a pickle."""
    import lightgbm as lgb  # on the worker, which may not have imported it yet

    spec = FeatureSpec.from_json(json.loads(spec_json))
    booster = lgb.Booster(model_str=model_text)
    output = np.asarray(booster.predict(encode(pl.DataFrame(pl.from_arrow(table)), spec)))
    return prediction_frame(output, spec).to_arrow()


def predict_on_cluster(ws: Workspace, ref: str, source: Path, target: Path, client: Client,
                       in_flight: int = 4, batch_rows: int = 25_000) -> Scored:
    """Like `batch.predict_file`, with the scoring on the cluster."""
    model = load_model(ws, ref)
    [model_future] = client.scatter([model.booster.model_to_string()], broadcast=True)
    spec_json = json.dumps(model.spec.to_json())

    def score(batches: Batches) -> Batches:
        pending: deque[tuple[pl.DataFrame, Any]] = deque()
        for rows, features in batches:
            pending.append((rows, client.submit(_score_batch, model_future, spec_json,
                                                features.to_arrow(), pure=False)))
            while len(pending) >= in_flight:
                yield _oldest(pending)
        while pending:
            yield _oldest(pending)

    try:
        return write_scored(model.spec, source, target, score, batch_rows)
    except (MlyardError, KeyboardInterrupt):
        raise
    except Exception as exc:  # distributed and the workers raise many kinds
        raise UsageError(f"scoring on the Dask cluster failed, nothing written: {exc}") \
            from None


def _oldest(pending: deque[tuple[pl.DataFrame, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, future = pending.popleft()
    return rows, pl.DataFrame(pl.from_arrow(future.result()))
