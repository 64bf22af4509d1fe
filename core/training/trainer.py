"""`mlyard train`: LightGBM on the project's dataset versions, every step recorded.

A training run logs every iteration's train and validation metrics, stops early on the
validation set, is judged on a holdout the model never saw, and stores the model as
LightGBM text with a JSON model card. Its reproducibility record names everything that
determines the result, which is what `mlyard reproduce` replays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import msgspec
import numpy as np
import polars as pl

from mlyard.core.config import Config, Device, ParamValue, segment_column_names, segment_columns
from mlyard.core.data import versions
from mlyard.core.data.contract import contract_hash
from mlyard.core.data.inference import time_like_columns
from mlyard.core.errors import UsageError
from mlyard.core.models import registry
from mlyard.core.models.card import ModelCard, card_bytes
from mlyard.core.models.explain import mean_abs_contributions
from mlyard.core.models.features import FeatureSpec, build_spec, encode, encode_target
from mlyard.core.models.reference import reference_sketch
from mlyard.core.tracking import active_run, artifacts
from mlyard.core.tracking.evaluation import (
    DEFAULT_METRIC,
    LIGHTGBM_METRICS,
    comparable_metric,
    evaluate,
)
from mlyard.core.tracking.provenance import environment, git_state
from mlyard.core.tracking.segments import SegmentFigures, segment_figures
from mlyard.core.training.device import DEVICE_TAG, describe, device_params
from mlyard.core.training.split import split_rows
from mlyard.core.workspace import Workspace
from mlyard.storage import models_store
from mlyard.storage.datasets_store import VersionRecord

# TreeSHAP costs about trees x leaves^2 per row (a 500-tree, 31-leaf model: 3 s per 1,000
# rows on 2 cores), so the global contributions are averaged over as many holdout rows as
# this much work allows (~0.3 s), at least 100 and at most 10,000.
CONTRIBUTION_WORK = 30_000_000

# Called after every boosting round with (iteration, total rounds, best validation score).
ProgressCallback = Callable[[int, int, float | None], None]


@dataclass
class TrainResult:
    run_id: str
    metrics: dict[str, float]
    best_iteration: int
    model_hash: str
    card: ModelCard
    model_version: int | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> blake3
    device: str = "cpu"  # what it trained on (device.describe)


@dataclass
class TrainPlan:
    """Everything that determines a training result, resolved before training starts."""

    config: Config
    versions: list[VersionRecord]
    params: dict[str, ParamValue]
    overrides: dict[str, ParamValue]
    seed: int
    warnings: list[str] = field(default_factory=list)  # worth saying before training


def plan(ws: Workspace, dataset_refs: list[str] | None = None,
         overrides: dict[str, ParamValue] | None = None, seed: int | None = None,
         config: Config | None = None, device: Device | None = None) -> TrainPlan:
    """Resolve dataset versions and LightGBM params from the config and the command line
    (`device` over `[train] device`)."""
    cfg = config or ws.config
    if device is not None:
        cfg = msgspec.structs.replace(cfg, train=msgspec.structs.replace(cfg.train,
                                                                        device=device))
    chosen_seed = cfg.train.seed if seed is None else seed
    chosen = versions.select_versions(ws, dataset_refs, cfg.train.window)
    return TrainPlan(cfg, chosen, lightgbm_params(cfg, overrides or {}, chosen_seed),
                     dict(overrides or {}), chosen_seed, _plan_warnings(ws, cfg, chosen))


def _plan_warnings(ws: Workspace, cfg: Config, chosen: list[VersionRecord]) -> list[str]:
    warnings = []
    current = contract_hash(versions.current_contract(ws), cfg.data)
    stale = [v.ref for v in chosen if v.contract_hash != current]
    if stale:
        warnings.append(f"{', '.join(stale)} {'was' if len(stale) == 1 else 'were'} checked "
                        "against an older contract than mlyard.toml's; run `mlyard data "
                        "recheck` to check them against it")
    roles = {cfg.data.target, cfg.data.id_column, cfg.data.time_column, *cfg.data.exclude}
    text = [name for name, kind in chosen[-1].schema.items()
            if kind == "string" and name not in roles]
    if text:
        warnings.append(f"text column{'s' if len(text) > 1 else ''} "
                        f"{', '.join(map(repr, text))} {'are' if len(text) > 1 else 'is'} not "
                        "used as features (type \"string\"); make it a category, a number, or "
                        "add it to [data] exclude to say so")
    if not cfg.data.time_column:
        timed = [c for c in time_like_columns(chosen[-1].schema) if c != cfg.data.target]
        if timed:
            warnings.append(f"column {timed[0]!r} looks like time but [data] time_column is "
                            "not set: the holdout is a random shuffle, which flatters a model "
                            "of time-ordered data; set time_column (and exclude ids repeated "
                            "across periods)")
    return warnings


def lightgbm_params(cfg: Config, overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    """mlyard's defaults, then `[train] params`, then `--param` overrides."""
    task = cfg.train.task
    params: dict[str, Any] = {
        "objective": {"binary": "binary", "multiclass": "multiclass",
                      "regression": "regression"}[task],
        "metric": LIGHTGBM_METRICS[task],
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "feature_pre_filter": False,
        "seed": seed,
        "deterministic": cfg.train.deterministic,
        "force_col_wise": True,
        "num_threads": cfg.train.num_threads,
        "verbosity": -1,
        **device_params(cfg.train),
    }
    params.update(cfg.train.params)
    params.update(overrides)
    if "device" in params:  # LightGBM's alias, as a user may write it
        params["device_type"] = params.pop("device")
    params["seed"] = seed
    return params


def train(ws: Workspace, training: TrainPlan, name: str | None = None,
          on_iteration: ProgressCallback | None = None,
          tags: dict[str, str] | None = None, register: bool | None = None) -> TrainResult:
    """Train, evaluate and store one model as a tracked run; register it as a model
    version when `register` says so (default: `[registry] auto_register`)."""
    cfg = training.config
    device = describe(training.params)  # before the run: no device, no run
    frame = versions.read_versions(ws, training.versions)
    types = training.versions[-1].schema
    spec = build_spec(cfg, types, versions.current_contract(ws), frame)
    target = encode_target(frame, spec)
    keep = ~np.isnan(target)
    frame, target = frame.filter(keep), target[keep]
    params = dict(training.params)
    if cfg.train.task == "multiclass":
        params["num_class"] = len(spec.classes or np.unique(target))
    split = split_rows(frame, cfg.data.time_column, cfg.train.holdout_fraction,
                       cfg.train.valid_fraction, training.seed, cfg.data.id_column)
    features = encode(frame, spec)

    named = segment_names(cfg, frame.columns)
    segments = frame.select(named) if named else None

    def fit(run: active_run.Run) -> Fitted:
        booster = _fit(cfg, params, features, target, split, spec, run, on_iteration)
        best = booster.best_iteration or booster.current_iteration()
        predicted = np.asarray(booster.predict(features[split.holdout], num_iteration=best))
        return Fitted(booster, best, target[split.holdout], predicted, frame,
                      features[split.holdout],
                      segments[split.holdout] if segments is not None else None)

    result = record_training(ws, training, spec, params, split.record, fit,
                             name=name or f"{cfg.project.name}-train",
                             tags={"mlyard.kind": "train", DEVICE_TAG: device, **(tags or {})},
                             register=register)
    result.device = device
    return result


@dataclass
class Fitted:
    """What a fit hands back to `record_training`, wherever it ran."""

    booster: lgb.Booster
    best_iteration: int
    holdout_target: np.ndarray
    predicted: np.ndarray  # on the holdout rows, at the best iteration
    reference_rows: pl.DataFrame  # training data the drift reference is sketched from
    holdout_features: np.ndarray  # the encoded holdout rows, for global contributions
    holdout_segments: pl.DataFrame | None = None  # their segment columns, when any


def segment_names(cfg: Config, columns: Sequence[str]) -> list[str]:
    """The columns `[monitor] segments` breaks figures down by, checked to be among the
    dataset's `columns`."""
    wanted = list(segment_column_names(cfg))
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise UsageError(f"[monitor] segments: no column {missing[0]!r} in the dataset "
                         f"(its columns: {', '.join(columns)})")
    return wanted


def record_training(ws: Workspace, training: TrainPlan, spec: FeatureSpec,
                    params: dict[str, Any], split: dict[str, Any],
                    fit: Callable[[active_run.Run], Fitted], name: str, tags: dict[str, str],
                    register: bool | None = None) -> TrainResult:
    """Everything a training run records around its fit, the same for a model trained
    here and one trained on a Dask cluster: the run with its params and tags, its input
    versions and reproducibility record, then the holdout metrics, importance, drift
    reference, model and card; then the registration (default: `[registry]
    auto_register`)."""
    cfg = training.config
    with active_run.start_run(name=name, params=_flat(params), tags=tags, workspace=ws) as run:
        with run.session() as con:
            models_store.record_inputs(con, run.run_id, [(v.dataset, v.seq, v.snapshot_hash)
                                                         for v in training.versions])
        record = _reproducibility_record(ws, training, split)
        stored = {artifacts.REPRODUCE: run.log_bytes(artifacts.REPRODUCE, _dumps(record))}
        # How many rows the model learned from and was judged on, beside its figures.
        run.log_metrics({f"rows.{side}": count
                         for side, count in split.get("rows", {}).items()})
        fitted = fit(run)
        result = _store_model(ws, run, training, spec, params, fitted, stored)
    if cfg.registry.auto_register if register is None else register:
        result.model_version = registry.register(ws, run.run_id).version
    return result


def _store_model(ws: Workspace, run: active_run.Run, training: TrainPlan, spec: FeatureSpec,
                 params: dict[str, Any], fitted: Fitted,
                 stored: dict[str, str]) -> TrainResult:
    cfg = training.config
    booster, best, predicted = fitted.booster, fitted.best_iteration, fitted.predicted
    metrics = evaluate(cfg.train.task, fitted.holdout_target, predicted, cfg.train.threshold)
    run.log_metrics({f"holdout.{k}": v for k, v in metrics.items()})
    run.log_lines(f"best iteration {best}; holdout " + "  ".join(
        f"{k}={v:.5g}" for k, v in metrics.items()), "train")
    run.log_metric("best_iteration", best)
    importance = {kind: dict(zip(spec.names, booster.feature_importance(kind).tolist(),
                                 strict=True)) for kind in ("gain", "split")}
    trees = best * booster.num_model_per_iteration()
    leaves = int(params.get("num_leaves", 31))
    rows = max(100, min(10_000, CONTRIBUTION_WORK // max(1, trees * leaves * leaves)))
    importance["contribution"] = mean_abs_contributions(
        booster, fitted.holdout_features[:rows], spec.names, num_iteration=best)
    stored[artifacts.FEATURE_IMPORTANCE] = run.log_bytes(artifacts.FEATURE_IMPORTANCE,
                                                         _dumps(importance))
    if fitted.holdout_segments is not None:
        found = _segments(cfg, fitted, predicted)
        stored[artifacts.SEGMENTS] = run.log_bytes(artifacts.SEGMENTS,
                                                   msgspec.json.encode(found))
        for note in found.notes:
            run.log_lines(note, "train")
    reference = reference_sketch(fitted.reference_rows, spec, predicted, cfg.train.task)
    stored[artifacts.REFERENCE] = run.log_bytes(artifacts.REFERENCE, _dumps(reference))
    card = _model_card(cfg, spec, params, metrics, best, training, run.run_id, importance)
    model_text = booster.model_to_string(num_iteration=best).encode()
    stored[artifacts.MODEL] = run.log_bytes(artifacts.MODEL, model_text)
    stored[artifacts.MODEL_CARD] = run.log_bytes(artifacts.MODEL_CARD, card_bytes(card))
    return TrainResult(run.run_id, metrics, best, stored[artifacts.MODEL], card,
                       artifacts=stored)


def _segments(cfg: Config, fitted: Fitted, predicted: np.ndarray) -> SegmentFigures:
    """The holdout's figures per group of each segment, and the sensitive ones' fairness."""
    assert fitted.holdout_segments is not None
    task = cfg.train.task
    metric = comparable_metric(task, cfg.train.metric or DEFAULT_METRIC[task])
    sensitive = {name for name, column in cfg.data.columns.items() if column.sensitive}
    return segment_figures(task, fitted.holdout_target, predicted, fitted.holdout_segments,
                           segment_columns(cfg), sensitive, metric, cfg.train.threshold)


def _fit(cfg: Config, params: dict[str, Any], features: np.ndarray, target: np.ndarray,
         split: Any, spec: FeatureSpec, run: active_run.Run,
         on_iteration: ProgressCallback | None) -> lgb.Booster:
    categorical = spec.categorical
    train_set = lgb.Dataset(features[split.train], target[split.train],
                            feature_name=spec.names, categorical_feature=categorical,
                            free_raw_data=True)
    valid_set = lgb.Dataset(features[split.valid], target[split.valid], reference=train_set)
    callbacks: list[Callable[..., Any]] = [
                 active_run.lightgbm_callback(run), _log_progress(run),
                 lgb.early_stopping(cfg.train.early_stopping_rounds, verbose=False)]
    if on_iteration is not None:
        callbacks.append(_progress(on_iteration, cfg))
    try:
        return lgb.train(params, train_set, num_boost_round=cfg.train.num_boost_round,
                         valid_sets=[train_set, valid_set], valid_names=["train", "valid"],
                         callbacks=callbacks)
    except lgb.basic.LightGBMError as exc:
        raise UsageError(f"LightGBM refused the training set-up: {exc}") from None


def _log_progress(run: active_run.Run, every: int = 10) -> Callable[[Any], None]:
    """A line in the run's log every `every` iterations, for the live log tail."""

    def _callback(env: Any) -> None:
        if env.iteration % every == 0 or env.iteration + 1 == env.end_iteration:
            scores = "  ".join(f"{r[0]}.{r[1]}={r[2]:.5g}" for r in env.evaluation_result_list)
            run.log_lines(f"[{env.iteration + 1}/{env.end_iteration}] {scores}", "train")

    _callback.order = 26  # type: ignore[attr-defined]  # before early stopping (30)
    return _callback


def _progress(report: ProgressCallback, cfg: Config) -> Callable[[Any], None]:
    best: list[float] = []

    def _callback(env: Any) -> None:
        valid = [r for r in env.evaluation_result_list if r[0] == "valid"]
        if valid:
            _, _, score, higher_better = valid[0][:4]
            if not best or (score > best[0] if higher_better else score < best[0]):
                best[:] = [score]
        report(env.iteration + 1, cfg.train.num_boost_round, best[0] if best else None)

    _callback.order = 27  # type: ignore[attr-defined]  # before early stopping (30)
    return _callback


def _reproducibility_record(ws: Workspace, training: TrainPlan,
                            split: dict[str, Any]) -> dict[str, Any]:
    return {
        "datasets": [{"ref": v.ref, "snapshot_blake3": v.snapshot_hash,
                      "source_blake3": v.source_hash} for v in training.versions],
        "config": msgspec.to_builtins(training.config),
        "params": training.params,
        "overrides": training.overrides,
        "seed": training.seed,
        "split": split,
        "git": git_state(ws.project_dir),
        "environment": environment(),
        "recorded_at": time.time(),
    }


def _model_card(cfg: Config, spec: FeatureSpec, params: dict[str, Any],
                metrics: dict[str, float], best: int, training: TrainPlan, run_id: str,
                importance: dict[str, dict[str, float]]) -> ModelCard:
    return ModelCard(
        model=cfg.project.name, run_id=run_id, task=cfg.train.task,
        objective=str(params["objective"]),
        primary_metric=cfg.train.metric or DEFAULT_METRIC[cfg.train.task],
        threshold=cfg.train.threshold if cfg.train.task == "binary" else None,
        spec=spec, metrics={f"holdout.{k}": v for k, v in metrics.items()},
        best_iteration=best, params=params, datasets=[v.ref for v in training.versions],
        feature_importance=importance)


def _flat(params: dict[str, Any]) -> dict[str, str]:
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in params.items()}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode()
