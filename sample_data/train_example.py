"""A training script of the kind people write themselves, tracked with mlyard.

    cd sample_data/churn && python ../train_example.py

It trains LightGBM on every ingested version of the project's dataset, splits by the
time column, logs every iteration through the LightGBM callback, and logs holdout
metrics and the model file. `mlyard train` (a later release) does all of this for you;
this script shows the tracking API on its own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.metrics import log_loss, mean_absolute_error, roc_auc_score

import mlyard
from mlyard.core.data import versions


def main() -> None:
    ws = mlyard.open_workspace()
    cfg = ws.config
    frame = versions.load_versions(ws)
    roles = {cfg.data.id_column, cfg.data.time_column, cfg.data.target, *cfg.data.exclude}
    features = [c for c in frame.columns if c not in roles]
    if cfg.data.time_column:
        frame = frame.sort(cfg.data.time_column)
    cut = int(frame.height * (1 - cfg.train.valid_fraction))
    categorical = [c for c in features if frame.schema[c] == pl.String]
    # LightGBM wants category codes; an Enum over the sorted values keeps them stable.
    x = frame.select(
        pl.col(c).cast(pl.Enum(sorted(frame.get_column(c).drop_nulls().unique())))
        .to_physical() if c in categorical else pl.col(c)
        for c in features
    ).to_numpy().astype(float)
    y = frame.get_column(cfg.data.target).to_numpy().astype(float)
    objective = {"binary": "binary", "regression": "regression"}[cfg.train.task]
    metrics = ["auc", "binary_logloss"] if objective == "binary" else ["l1", "l2"]
    params = {"objective": objective, "metric": metrics, "learning_rate": 0.05, "num_leaves": 31,
              "seed": cfg.train.seed, "verbosity": -1, "deterministic": True,
              "num_threads": 2, **cfg.train.params}
    with mlyard.start_run(name=f"{cfg.project.name}-example") as run:
        run.log_params({**params, "features": len(features), "rows": frame.height})
        train_set = lgb.Dataset(x[:cut], y[:cut], feature_name=features,
                                categorical_feature=categorical)
        valid_set = lgb.Dataset(x[cut:], y[cut:], reference=train_set)
        booster = lgb.train(
            params, train_set, num_boost_round=cfg.train.num_boost_round,
            valid_sets=[train_set, valid_set], valid_names=["train", "valid"],
            callbacks=[mlyard.lightgbm_callback(run),
                       lgb.early_stopping(cfg.train.early_stopping_rounds, verbose=False)],
        )
        predicted = booster.predict(x[cut:], num_iteration=booster.best_iteration)
        if objective == "binary":
            run.log_metrics({"holdout.auc": roc_auc_score(y[cut:], predicted),
                             "holdout.log_loss": log_loss(y[cut:], predicted)})
        else:
            run.log_metrics({"holdout.mae": mean_absolute_error(y[cut:], predicted),
                             "holdout.rmse": float(np.sqrt(np.mean((y[cut:] - predicted) ** 2)))})
        run.log_metric("best_iteration", booster.best_iteration)
        with tempfile.TemporaryDirectory() as tmp:
            model_path = Path(tmp) / "model.txt"
            booster.save_model(model_path, num_iteration=booster.best_iteration)
            run.log_artifact(model_path)
    print(f"run {run.run_id}")


if __name__ == "__main__":
    main()
