"""`mlyard train` wall time against a plain `lightgbm.train` script on the same data.

    .venv/bin/python bench/bench_train.py

200,000 rows and 30 numeric features (binary target), ingested once (not timed). Both
sides run as fresh processes, so both pay Python start-up and imports, and both read the
same Parquet snapshot, train on the same rows (mlyard's hash split, computed here and
handed to the plain script, which only loads it), with the same LightGBM params and
threads (train and valid evaluated every round, early stopping), and predict the
holdout. mlyard additionally hashes each row's identity for its split, logs every
iteration, evaluates six holdout metrics, records provenance, stores the model and its
card, and registers a model version.

Then `mlyard check` on the newest version: the champion gate scores it and the champion
on the same 40,000 evaluation rows, with a 200-resample paired bootstrap (the cost a
promotion adds, reported beside the training overhead).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl

from mlyard.core.training import trainer
from mlyard.core.training.split import split_rows
from mlyard.core.workspace import open_workspace

ROWS = 200_000
FEATURES = 30
OUT = Path(__file__).parent / "out" / "train"
REPEATS = 3

PLAIN = textwrap.dedent("""
    import json, sys
    import lightgbm as lgb
    import numpy as np
    import polars as pl
    params, snapshot, features, split, rounds, patience = json.loads(sys.argv[1])
    frame = pl.read_parquet(snapshot)
    x = frame.select(features).to_numpy().astype(np.float64)
    y = frame.get_column("label").cast(pl.Float64).to_numpy()
    sides = np.load(split)
    tr, va, ho = sides["train"], sides["valid"], sides["holdout"]
    dtrain = lgb.Dataset(x[tr], y[tr], feature_name=features)
    dvalid = lgb.Dataset(x[va], y[va], reference=dtrain)
    booster = lgb.train(params, dtrain, num_boost_round=rounds, valid_sets=[dtrain, dvalid],
                        valid_names=["train", "valid"],
                        callbacks=[lgb.early_stopping(patience, verbose=False)])
    booster.predict(x[ho], num_iteration=booster.best_iteration)
    print(booster.best_iteration)
""")


def make_project() -> Path:
    project = OUT / "project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES))
    logit = x[:, :10] @ rng.normal(size=10) + 0.5 * np.sin(x[:, 10] * 3) + x[:, 11] * x[:, 12]
    label = (rng.random(ROWS) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pl.DataFrame({f"f{i:02d}": x[:, i] for i in range(FEATURES)}).with_columns(
        pl.Series("label", label))
    frame.write_csv(project / "train.csv")
    (project / "mlyard.toml").write_text(
        '[project]\nname = "bench"\n[data]\ntarget = "label"\n[train]\ntask = "binary"\n')
    subprocess.run([sys.executable, "-m", "mlyard", "ingest", "train.csv"], cwd=project,
                   check=True, capture_output=True)
    return project


def timed(command: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode not in ok:
        raise RuntimeError(f"{command}: exit {result.returncode}: {result.stderr}")
    return time.perf_counter() - started, result.stdout


def main() -> None:
    project = make_project()
    ws = open_workspace(project)
    training = trainer.plan(ws)
    cfg = ws.config.train
    snapshot = ws.objects.path_for(training.versions[0].snapshot_hash)
    features = [f"f{i:02d}" for i in range(FEATURES)]
    split = split_rows(pl.read_parquet(snapshot), None, cfg.holdout_fraction,
                       cfg.valid_fraction, training.seed, ws.config.data.id_column)
    sides = OUT / "split.npz"
    np.savez(sides, train=split.train, valid=split.valid, holdout=split.holdout)
    plain_args = json.dumps([training.params, str(snapshot), features, str(sides),
                             cfg.num_boost_round, cfg.early_stopping_rounds])
    mlyard_times, plain_times = [], []
    for _ in range(REPEATS):
        seconds, out = timed([sys.executable, "-m", "mlyard", "train", "-q", "--json"],
                             project)
        mlyard_times.append(seconds)
        mlyard_best = json.loads(out)["best_iteration"]
        seconds, out = timed([sys.executable, "-c", PLAIN, plain_args], project)
        plain_times.append(seconds)
        plain_best = int(out.strip())
    ours, theirs = statistics.median(mlyard_times), statistics.median(plain_times)
    subprocess.run([sys.executable, "-m", "mlyard", "models", "promote", "1", "--force"],
                   cwd=project, check=True, capture_output=True)
    (project / "mlyard.toml").write_text((project / "mlyard.toml").read_text()
                                         + "[gates]\nmax_regression_vs_champion = 0.01\n")
    check_s = statistics.median(timed([sys.executable, "-m", "mlyard", "check", "--json"],
                                      project, ok=(0, 1))[0] for _ in range(REPEATS))
    print(json.dumps({
        "benchmark": "train_overhead", "rows": ROWS, "features": FEATURES,
        "threads": training.params["num_threads"], "best_iteration": [mlyard_best, plain_best],
        "mlyard_train_s": round(ours, 2), "plain_lightgbm_s": round(theirs, 2),
        "overhead_s": round(ours - theirs, 2), "overhead_pct": round(100 * (ours / theirs - 1), 1),
        # Every run, in order: a slow first run (cold caches) shows here, not in the medians.
        "mlyard_runs_s": [round(s, 2) for s in mlyard_times],
        "plain_runs_s": [round(s, 2) for s in plain_times],
        "check_head_to_head_s": round(check_s, 2),
    }))


if __name__ == "__main__":
    main()
