"""Training and batch scoring on a Dask cluster.

Training reads the dataset versions' Parquet snapshots as a Dask dataframe on the
workers (so the workspace must be visible to them at the same path: one machine, or a
shared filesystem), encodes each partition exactly as local training does, splits rows
by time (or by a seeded draw per partition) and fits with `lightgbm.dask`. The booster
comes back to this process and is stored like any other model.

Scoring sends batches of validated rows to the workers, at most a few in flight, and
writes the results in order into one Parquet file that appears only when every batch
is done: a worker lost mid-way has its batches rerun by the scheduler, and a failure
that cannot be retried leaves no partial output.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core import data, registry, tracking
from core import train as train_api
from core.errors import MlyardError, UsageError
from core.evaluate import higher_is_better
from core.features import FeatureSpec, build_spec, encode, encode_target
from core.workspace import Workspace
from storage import models_store

REFERENCE_SAMPLE_ROWS = 200_000
TRAIN, VALID, HOLDOUT = 0, 1, 2


def _encoded_partition(frame: Any, spec_json: str, time_column: str | None,
                       holdout_from: str | None, fractions: tuple[float, float],
                       seed: int, partition_info: dict[str, Any] | None = None) -> Any:
    """One partition as float features, the target and its split; runs on a worker."""
    import pandas as pd

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
    else:
        split = np.where(draw < holdout, HOLDOUT,
                         np.where(draw < holdout + (1 - holdout) * valid, VALID, TRAIN))
    out = pd.DataFrame(features, columns=spec.names, index=frame.index)
    out["__target"] = target
    out["__split"] = split
    return out[~np.isnan(target)]


def train_on_cluster(ws: Workspace, training: train_api.TrainPlan, client: Any,
                     name: str | None = None) -> train_api.TrainResult:
    """Train like `core.train.train`, with the data and the fit on the cluster."""
    import dask.dataframe as dd
    import lightgbm as lgb
    import lightgbm.dask as lgb_dask

    cfg = training.config
    lgb.register_logger(logging.getLogger("mlyard.lightgbm"))  # not on stdout, which is --json's
    sample = data.read_versions(ws, training.versions).head(REFERENCE_SAMPLE_ROWS) \
        if sum(v.rows for v in training.versions) <= 5 * REFERENCE_SAMPLE_ROWS else \
        data.read_versions(ws, training.versions[-1:]).head(REFERENCE_SAMPLE_ROWS)
    types = json.loads(training.versions[-1].schema)
    spec = build_spec(cfg, types, data.current_contract(ws), sample)
    paths = [str(ws.objects.path_for(v.snapshot_hash)) for v in training.versions]
    frame = dd.read_parquet(paths)
    time_column = cfg.data.time_column
    holdout_from = None
    if time_column:  # the newest rows are the holdout, as in local training
        holdout_from = _holdout_from(frame[time_column], cfg.train.holdout_fraction)
    spec_json = json.dumps(spec.to_json())
    meta = {**{n: "f8" for n in spec.names}, "__target": "f8", "__split": "i8"}
    encoded = frame.map_partitions(_encoded_partition, spec_json, time_column, holdout_from,
                                   (cfg.train.holdout_fraction, cfg.train.valid_fraction),
                                   training.seed, meta=meta).persist()
    parts = {which: encoded[encoded["__split"] == which] for which in (TRAIN, VALID, HOLDOUT)}
    arrays = {which: _non_empty(part[spec.names].to_dask_array(lengths=True),
                                part["__target"].to_dask_array(lengths=True))
              for which, part in parts.items()}
    params = {k: v for k, v in training.params.items() if k not in ("num_threads",)}
    if cfg.train.task == "multiclass":
        params["num_class"] = len(spec.classes or [])
    estimator = (lgb_dask.DaskLGBMRegressor if cfg.train.task == "regression"
                 else lgb_dask.DaskLGBMClassifier)
    model = estimator(client=client, n_estimators=cfg.train.num_boost_round, **params)
    run_tags = {"mlyard.kind": "train", "mlyard.engine": "dask"}
    with tracking.start_run(name=name or f"{cfg.project.name}-train-dask",
                            params=train_api._flat(params), tags=run_tags,
                            workspace=ws) as run:
        with ws.catalog.session() as con:
            models_store.record_inputs(con, run.run_id, [(v.dataset, v.seq, v.snapshot_hash)
                                                         for v in training.versions])
        record = train_api._reproducibility_record(
            ws, training, {"kind": "time holdout, random validation" if holdout_from is not None
                           else "random per partition",
                           "engine": "dask", "workers": len(client.scheduler_info()
                                                             .get("workers", {}))})
        artifacts = {"reproduce.json": run.log_bytes("reproduce.json",
                                                     train_api._dumps(record))}
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
        features, truth = client.compute([holdout_x, holdout_y], sync=True)
        predicted = booster.predict(features)
        result = train_api.store_model(ws, run, training, spec, params, booster, best,
                                       truth, predicted, sample, artifacts)
    if cfg.registry.auto_register:
        result.model_version = registry.register(ws, run.run_id).version
    return result


def _best_iteration(curves: dict[str, list[float]], trained: int) -> int:
    """What early stopping keeps: the best round of the first validation metric."""
    if not curves:
        return trained
    metric, series = next(iter(curves.items()))
    values = np.asarray(series)
    return int(values.argmax() if higher_is_better(metric) else values.argmin()) + 1


def _holdout_from(times: Any, fraction: float) -> str:
    """The earliest time such that rows at or after it are about `fraction` of all rows,
    from per-time counts (small) computed on the cluster; equal times stay together."""
    counts = times.value_counts().compute().sort_index()
    after = counts[::-1].cumsum()[::-1] / counts.sum()  # share of rows at or after each
    eligible = after[after <= fraction]
    cutoff = eligible.index[0] if len(eligible) else counts.index[-1]
    return cutoff.isoformat() if hasattr(cutoff, "isoformat") else str(cutoff)


def _non_empty(features: Any, target: Any) -> tuple[Any, Any]:
    """The arrays without their empty blocks: a partition that is all holdout must not
    hand a worker zero training rows."""
    import dask.array as da

    keep = [i for i, size in enumerate(features.chunks[0]) if size > 0]
    if not keep:
        raise UsageError("no rows for one of the train, validation or holdout sets; "
                         "ingest more data or change [train] holdout_fraction")
    return (da.concatenate([features.blocks[i] for i in keep]),
            da.concatenate([target.blocks[i] for i in keep]))


def _score_batch(model_text: str, spec_json: str, table: pa.Table) -> pa.Table:
    """Score one batch on a worker; the model is LightGBM text, never a pickle."""
    import lightgbm as lgb

    spec = FeatureSpec.from_json(json.loads(spec_json))
    booster = lgb.Booster(model_str=model_text)
    output = booster.predict(encode(pl.from_arrow(table), spec))
    if output.ndim == 2:
        labels = spec.classes or [str(i) for i in range(output.shape[1])]
        return pa.table({f"prediction_{label}": output[:, i] for i, label in enumerate(labels)})
    return pa.table({"prediction": output})


def predict_on_cluster(ws: Workspace, ref: str, source: Path, target: Path, client: Any,
                       in_flight: int = 4, batch_rows: int = 25_000) -> int:
    """Like `core.predict.predict_file`, with the scoring on the cluster."""
    from core.model import load_model
    from core.predict import _typed
    from core.reader import read_batches
    from core.sniff import sniff

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
        table = pl.concat([batch, pl.from_arrow(scored)], how="horizontal").to_arrow()
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
