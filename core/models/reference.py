"""The drift reference stored with every trained model: sketches of its training data's
features and target, and of its predictions on the holdout rows.

Written at training time as the run's `reference.json`, so drift checks compare new data
with a few kB instead of rereading the training data. Models trained before it existed
get one built from their recorded input versions the first time it is asked for.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from mlyard.core.data import versions
from mlyard.core.models.features import FeatureSpec
from mlyard.core.models.loading import load_model
from mlyard.core.models.sketch import column_kind, sketch_column, sketch_frame
from mlyard.core.tracking import artifacts
from mlyard.core.workspace import Workspace
from mlyard.storage import models_store, runs_store
from mlyard.storage.models_store import ModelVersion


def target_kind(task: str) -> str:
    return "numeric" if task == "regression" else "categorical"


def prediction_series(predicted: np.ndarray, task: str) -> pl.Series:
    """Model outputs as one column: a score per row, or the predicted class."""
    if task == "multiclass":
        return pl.Series("prediction", np.asarray(predicted).argmax(axis=1).astype(str))
    return pl.Series("prediction", np.asarray(predicted, dtype=np.float64).ravel())


def target_series(frame: pl.DataFrame, spec: FeatureSpec, task: str) -> pl.Series:
    column = frame[spec.target]
    return column.cast(pl.String) if target_kind(task) == "categorical" else column


def reference_sketch(frame: pl.DataFrame, spec: FeatureSpec, predicted: np.ndarray,
                     task: str) -> dict[str, Any]:
    kinds = {f.name: column_kind(f.type) for f in spec.features}
    return {
        "format": 1,
        "rows": frame.height,
        "features": sketch_frame(frame, kinds),
        "target": sketch_column(target_series(frame, spec, task), target_kind(task)),
        "prediction": sketch_column(prediction_series(predicted, task),
                                    "categorical" if task == "multiclass" else "numeric"),
    }


def load_reference(ws: Workspace, version: ModelVersion) -> dict[str, Any]:
    """The model's reference sketch (built from its input versions if it has none)."""
    with ws.catalog.session() as con:
        hashes = runs_store.artifact_hashes(con, version.run_id)
        inputs = models_store.run_inputs(con, version.run_id)
    if artifacts.REFERENCE in hashes:
        loaded: dict[str, Any] = json.loads(ws.objects.read_bytes(hashes[artifacts.REFERENCE]))
        return loaded
    # A model trained before references existed: build one from its recorded inputs.
    model = load_model(ws, str(version.version))
    frame = versions.load_versions(ws, [used.ref for used in inputs])
    task = model.card.task
    frame = frame.filter(pl.col(model.spec.target).is_not_null())
    return reference_sketch(frame, model.spec, model.predict(frame), task)
