"""Training on a Dask cluster.

Training reads the dataset versions' Parquet snapshots as a Dask dataframe on the
workers (so the workspace must be visible to them at the same path: one machine, or a
shared filesystem), encodes each partition exactly as local training does, holds out
the rows local training holds out (the newest, or by the hash of each row's identity)
and fits with `lightgbm.dask`. The booster comes back to this process and is recorded
by `trainer.record_training`, like any other model.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from mlyard.core.data import versions
from mlyard.core.errors import UsageError
from mlyard.core.models.features import FeatureSpec, build_spec, encode, encode_target
from mlyard.core.tracking import active_run
from mlyard.core.tracking.evaluation import higher_is_better
from mlyard.core.training import trainer
from mlyard.core.training.device import wants_gpu
from mlyard.core.training.split import holdout_mask
from mlyard.core.workspace import Workspace

REFERENCE_SAMPLE_ROWS = 200_000
TRAIN, VALID, HOLDOUT = 0, 1, 2

if TYPE_CHECKING:  # the optional dask extra: imported only where it is used
    from distributed import Client


SEGMENT = "__segment:"  # a segment column carried beside the features, as it was read


def _encoded_partition(frame: Any, spec_json: str, time_column: str | None,
                       holdout_from: str | None, fractions: tuple[float, float],
                       seed: int, id_column: str | None, segments: list[str],
                       partition_info: dict[str, Any] | None = None) -> Any:
    """One partition as float features, the target, its split and its segment columns
    (for the holdout's figures per group); runs on a worker."""
    import pandas as pd  # the optional dask extra brings it; only workers run this

    spec = FeatureSpec.from_json(json.loads(spec_json))
    rows = pl.from_pandas(frame)
    features = encode(rows, spec)
    target = encode_target(rows, spec)
    # Validation rows are drawn in every partition, so every worker that holds training
    # rows also holds validation rows (lightgbm.dask needs both on each worker).
    number = (partition_info or {}).get("number", 0)
    draw = np.random.default_rng([seed, number]).random(rows.height)
    holdout, valid = fractions
    if holdout_from is not None and time_column is not None:
        times = rows.get_column(time_column)
        text = pl.Series([holdout_from])  # ISO text, as sent
        cutoff = (text.str.to_date() if times.dtype == pl.Date else
                  text.str.to_datetime() if isinstance(times.dtype, pl.Datetime) else
                  text.cast(times.dtype))
        held_out = (times >= cutoff[0]).fill_null(False).to_numpy()
        split = np.where(held_out, HOLDOUT, np.where(draw < valid, VALID, TRAIN))
    else:  # the rows local training holds out: by the hash of each row's identity
        held_out = holdout_mask(rows.drop([c for c in rows.columns if c.startswith("__")]),
                                holdout, id_column)
        split = np.where(held_out, HOLDOUT, np.where(draw < valid, VALID, TRAIN))
    out = pd.DataFrame(features, columns=spec.names, index=frame.index)
    out["__target"] = target
    out["__split"] = split
    for name in segments:
        out[SEGMENT + name] = frame[name]
    return out[~np.isnan(target)]


def train_on_cluster(ws: Workspace, training: trainer.TrainPlan, client: Client,
                     name: str | None = None) -> trainer.TrainResult:
    """Train like `trainer.train`, with the data and the fit on the cluster."""
    if wants_gpu(training.params):
        raise UsageError("[train] device = \"gpu\" trains on this machine's GPU; on a Dask "
                         "cluster mlyard trains on the workers' CPUs: train without "
                         "--cluster, or set device = \"cpu\"")
    # The optional dask extra; `compute.dask_client` has already said what to install.
    import dask.dataframe as dd
    import lightgbm as lgb
    import lightgbm.dask as lgb_dask

    cfg = training.config
    lgb.register_logger(logging.getLogger("mlyard.lightgbm"))  # not on stdout, which is --json's
    sample = versions.read_versions(ws, training.versions).head(REFERENCE_SAMPLE_ROWS) \
        if sum(v.rows for v in training.versions) <= 5 * REFERENCE_SAMPLE_ROWS else \
        versions.read_versions(ws, training.versions[-1:]).head(REFERENCE_SAMPLE_ROWS)
    types = training.versions[-1].schema
    spec = build_spec(cfg, types, versions.current_contract(ws), sample)
    paths = [str(ws.objects.path_for(v.snapshot_hash)) for v in training.versions]
    frame = dd.read_parquet(paths)
    time_column = cfg.data.time_column
    holdout_from = None
    if time_column:  # the newest rows are the holdout, as in local training
        holdout_from = _holdout_from(frame[time_column], cfg.train.holdout_fraction)
    spec_json = json.dumps(spec.to_json())
    segments = trainer.segment_names(cfg, list(frame.columns))
    meta = {**{n: "f8" for n in spec.names}, "__target": "f8", "__split": "i8",
            **{SEGMENT + name: frame[name].dtype for name in segments}}
    encoded = frame.map_partitions(_encoded_partition, spec_json, time_column, holdout_from,
                                   (cfg.train.holdout_fraction, cfg.train.valid_fraction),
                                   training.seed, cfg.data.id_column, segments,
                                   meta=meta).persist()
    parts = {which: encoded[encoded["__split"] == which] for which in (TRAIN, VALID, HOLDOUT)}
    arrays = {which: _non_empty(part[spec.names].to_dask_array(lengths=True),
                                part["__target"].to_dask_array(lengths=True))
              for which, part in parts.items()}
    # LightGBM takes its params as keyword arguments of many types; they are checked there.
    params: dict[str, Any] = {k: v for k, v in training.params.items()
                              if k not in ("num_threads",)}
    if cfg.train.task == "multiclass":
        params["num_class"] = len(spec.classes or [])
    estimator = (lgb_dask.DaskLGBMRegressor if cfg.train.task == "regression"
                 else lgb_dask.DaskLGBMClassifier)
    model = estimator(client=client, n_estimators=cfg.train.num_boost_round, **params)
    split = {"kind": "time holdout, random validation" if holdout_from is not None
             else "hash holdout, random validation",
             "engine": "dask", "workers": len(client.scheduler_info().get("workers", {}))}

    def fit(run: active_run.Run) -> trainer.Fitted:
        try:
            model.fit(*arrays[TRAIN], eval_X=(arrays[VALID][0],), eval_y=(arrays[VALID][1],),
                      eval_names=["valid"],
                      categorical_feature=[spec.names.index(c) for c in spec.categorical])
        except Exception as exc:  # LightGBM and distributed raise many kinds
            raise UsageError(f"training on the Dask cluster failed: {exc}") from None
        curves = model.evals_result_.get("valid", {})
        for metric, series in curves.items():
            for step, value in enumerate(series):
                run.log_metric(f"valid.{metric}", float(value), step=step)
        booster = model.booster_
        best = _best_iteration(curves, booster.current_iteration())
        holdout_x, holdout_y = arrays[HOLDOUT]
        carried = parts[HOLDOUT][[SEGMENT + name for name in segments]]
        features, truth, groups = client.compute([holdout_x, holdout_y, carried], sync=True)
        predicted = np.asarray(booster.predict(features))
        held = pl.from_pandas(groups).rename(lambda column: column.removeprefix(SEGMENT))
        return trainer.Fitted(booster, best, truth, predicted, sample, features,
                              held if segments else None)

    return trainer.record_training(ws, training, spec, params, split, fit,
                                     name=name or f"{cfg.project.name}-train-dask",
                                     tags={"mlyard.kind": "train", "mlyard.engine": "dask"})


def _best_iteration(curves: dict[str, list[float]], trained: int) -> int:
    """What early stopping keeps: the best round of the first validation metric."""
    if not curves:
        return trained
    metric, series = next(iter(curves.items()))
    values = np.asarray(series)
    return int(values.argmax() if higher_is_better(metric) else values.argmin()) + 1


def _holdout_from(times: Any, fraction: float) -> str:
    """The time local training cuts at (`split._cut`: the one at the sorted position
    where `fraction` of the rows remain), from per-time counts (small) computed on the
    cluster; equal times stay together."""
    counts = times.value_counts().compute().sort_index()
    total = int(counts.sum())
    position = min(total - 1, max(1, int(round(total * (1 - fraction)))))
    cutoff = counts.index[int((counts.cumsum() > position).to_numpy().argmax())]
    return cutoff.isoformat() if hasattr(cutoff, "isoformat") else str(cutoff)


def _non_empty(features: Any, target: Any) -> tuple[Any, Any]:
    """The arrays without their empty blocks: a partition that is all holdout must not
    hand a worker zero training rows."""
    import dask.array as da  # the optional dask extra, as above

    keep = [i for i, size in enumerate(features.chunks[0]) if size > 0]
    if not keep:
        raise UsageError("no rows for one of the train, validation or holdout sets; "
                         "ingest more data or change [train] holdout_fraction")
    return (da.concatenate([features.blocks[i] for i in keep]),
            da.concatenate([target.blocks[i] for i in keep]))
