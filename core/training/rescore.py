"""An imported model's metrics are claims: score it on this project's own holdout rows
(the rows this project's training would hold out), for the gates to judge."""

from __future__ import annotations

import numpy as np

from mlyard.core.data import versions as data
from mlyard.core.errors import UsageError
from mlyard.core.models import registry
from mlyard.core.models.features import encode_target
from mlyard.core.models.gates import Rescored
from mlyard.core.models.loading import load_model
from mlyard.core.tracking.evaluation import evaluate
from mlyard.core.training import trainer
from mlyard.core.training.split import split_rows
from mlyard.core.workspace import Workspace


def rescore(ws: Workspace, ref: str) -> Rescored:
    """Holdout metrics of model `ref` on this project's data, split as training here
    would split it."""
    model = load_model(ws, ref)
    plan = trainer.plan(ws)
    cfg = plan.config
    frame = data.read_versions(ws, plan.versions)
    target = encode_target(frame, model.spec)
    keep = ~np.isnan(target)
    frame, target = frame.filter(keep), target[keep]
    split = split_rows(frame, cfg.data.time_column, cfg.train.holdout_fraction,
                       cfg.train.valid_fraction, plan.seed)
    holdout = frame[split.holdout]  # row positions
    if holdout.height == 0:
        raise UsageError("no holdout rows to score the imported model on; ingest data first")
    predicted = model.predict(holdout)
    metrics = evaluate(str(model.card["task"]), target[split.holdout], predicted,
                       cfg.train.threshold)
    return Rescored({f"holdout.{k}": v for k, v in metrics.items()}, holdout.height,
                    [v.ref for v in plan.versions])


def rescore_if_imported(ws: Workspace, ref: str) -> Rescored | None:
    """`rescore` for a version that came in a bundle; None for one trained here."""
    return rescore(ws, ref) if registry.imported(ws, ref) else None
