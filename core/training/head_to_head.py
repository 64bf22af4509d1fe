"""Model versions judged on the same rows, which none of them trained on.

The rows are the holdout of the project's data as training would split it now: the
newest period with a time column, else the rows whose identity hashes into the holdout
(core/training/split.py), which no version trained here has ever trained on. A model
that cannot score some of them (a class it never saw) is judged on them anyway, with no
probability on that class: telling that apart is what the comparison is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from mlyard.core.config import segment_columns
from mlyard.core.data import versions
from mlyard.core.errors import UsageError
from mlyard.core.models import registry
from mlyard.core.models.classes import aligned, class_names, union
from mlyard.core.models.gates import HeadToHead, Rescored, SegmentEvidence
from mlyard.core.models.loading import LoadedModel, load_model
from mlyard.core.models.trial import Candidate, check_all_load
from mlyard.core.tracking.evaluation import comparable_metric, evaluate, paired_bootstrap
from mlyard.core.tracking.segments import segment_figures
from mlyard.core.training import trainer
from mlyard.core.training.split import split_rows
from mlyard.core.workspace import Workspace


@dataclass(frozen=True)
class EvaluationRows:
    frame: pl.DataFrame  # the holdout rows of the project's data, labelled
    datasets: list[str]  # the dataset versions they come from


def evaluation_rows(ws: Workspace) -> EvaluationRows:
    """The rows a training started now would hold out, with a label."""
    plan = trainer.plan(ws)
    cfg = plan.config
    if cfg.data.target is None:
        raise UsageError("[data] target is not set: there is nothing to score models on")
    frame = versions.read_versions(ws, plan.versions).filter(pl.col(cfg.data.target).is_not_null())
    split = split_rows(frame, cfg.data.time_column, cfg.train.holdout_fraction,
                       cfg.train.valid_fraction, plan.seed, cfg.data.id_column)
    holdout = frame[split.holdout]
    if holdout.height == 0:
        raise UsageError("no holdout rows to score models on; ingest data first")
    return EvaluationRows(holdout, [v.ref for v in plan.versions])


def scored(task: str, target: str, rows: pl.DataFrame, models: list[LoadedModel]
           ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The rows' labels and each model's predictions, on one class index: classes are
    matched by name across the models, and a class a model does not know gets no
    probability from it."""
    labels = rows.get_column(target)
    predictions = [np.asarray(m.predict(rows), dtype=np.float64) for m in models]
    plain = task == "binary" and all(m.spec.classes is None for m in models)
    if task == "regression" or plain:  # numbers, or 0/1 labels: read as they are
        return labels.cast(pl.Float64).to_numpy(), predictions
    known = [class_names(m.spec.classes, p) for m, p in zip(models, predictions, strict=True)]
    names = union(*known)
    names += sorted(set(map(str, labels.unique().to_list())) - set(names))
    truth = labels.cast(pl.String).replace_strict(names, list(range(len(names))),
                                                  return_dtype=pl.Float64).to_numpy()
    return truth, [aligned(predicted, classes, names, task == "binary")
                   for classes, predicted in zip(known, predictions, strict=True)]


def versus_champion(ws: Workspace, ref: str) -> HeadToHead | None:
    """Version `ref` and the champion on the same evaluation rows, with a paired
    bootstrap of how much worse `ref` is; None when there is no other champion."""
    candidate = registry.resolve(ws, ref)
    champion = registry.champion(ws)
    if champion is None or champion.version == candidate.version:
        return None
    rows = evaluation_rows(ws)
    task = ws.config.train.task
    # A model that would abort us aborts a child.
    check_all_load(ws, [Candidate(ws.objects.path_for(v.model_hash), f"{v.model}/{v.version}",
                                  ws.objects.read_bytes(v.card_hash))
                        for v in (champion, candidate)])
    models = [load_model(ws, str(champion.version)), load_model(ws, str(candidate.version))]
    truth, (theirs, ours) = scored(task, models[1].spec.target, rows.frame, models)
    metric = comparable_metric(task, registry.primary_metric(ws))
    comparison = paired_bootstrap(task, truth, theirs, ours, metric,
                                  ws.config.train.threshold)
    return HeadToHead(candidate.version, champion.version, comparison, rows.datasets)


def segments_on_evaluation_rows(ws: Workspace, ref: str) -> SegmentEvidence | None:
    """Version `ref`'s figures per group of each segment on the evaluation rows, and the
    champion's on the same rows; None without `[monitor] segments`."""
    segments = segment_columns(ws.config)
    if not segments:
        return None
    candidate = registry.resolve(ws, ref)
    champion = registry.champion(ws)
    others = [champion] if champion is not None and champion.version != candidate.version \
        else []
    rows = evaluation_rows(ws)
    missing = [name for columns in segments for name in columns
               if name not in rows.frame.columns]
    if missing:
        raise UsageError(f"[monitor] segments: no column {missing[0]!r} in the evaluation "
                         f"rows (their columns: {', '.join(rows.frame.columns)})")
    check_all_load(ws, [Candidate(ws.objects.path_for(v.model_hash), f"{v.model}/{v.version}",
                                  ws.objects.read_bytes(v.card_hash))
                        for v in [*others, candidate]])
    models = [load_model(ws, str(v.version)) for v in [*others, candidate]]
    task = ws.config.train.task
    truth, predictions = scored(task, models[-1].spec.target, rows.frame, models)
    metric = comparable_metric(task, registry.primary_metric(ws))
    sensitive = {name for name, column in ws.config.data.columns.items() if column.sensitive}
    figures = [segment_figures(task, truth, predicted, rows.frame, segments, sensitive, metric,
                               ws.config.train.threshold) for predicted in predictions]
    return SegmentEvidence(candidate.version, figures[-1],
                           others[0].version if others else None,
                           figures[0] if others else None, rows.datasets)


def rescore(ws: Workspace, ref: str) -> Rescored:
    """Holdout metrics of model `ref` on this project's evaluation rows."""
    model = load_model(ws, ref)
    rows = evaluation_rows(ws)
    task = model.card.task
    truth, (predicted,) = scored(task, model.spec.target, rows.frame, [model])
    metrics = evaluate(task, truth, predicted, ws.config.train.threshold)
    return Rescored({f"holdout.{k}": v for k, v in metrics.items()}, rows.frame.height,
                    rows.datasets)


def rescore_if_imported(ws: Workspace, ref: str) -> Rescored | None:
    """`rescore` for a version that came from another workspace; None for one trained
    here."""
    return rescore(ws, ref) if registry.imported(ws, ref) else None
