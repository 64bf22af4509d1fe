"""Figures per segment for 1,000,000 rows and 3 segment columns (50, 20 and 5 levels),
against Fairlearn's `MetricFrame` on the same rows in the same run.

    .venv/bin/python -m bench.bench_segments [--rows 1000000]

Three measurements, mlyard's the median of 3 and Fairlearn's one run (it takes minutes):
- the user's path: `mlyard feedback labels.csv` as its own process, over a prediction
  log of ROWS served rows written through the server's own log writer first (not
  timed), each row's id and three segments in the log's key columns as `mlyard serve`
  keeps them; the windows' figures overall and per group of each segment, stored;
- inside it, labelled as such: `segment_figures` on the rows in memory (AUC, log loss,
  accuracy, F1, precision, recall, selection rate, TPR and FPR per group, the fairness
  figures of the sensitive segment);
- the same command again on one copy, as a daily delivery of labels would run it
  (DELIVERIES times): feedback reads every delivery kept so far, folded into one file
  once there are four, so these should not grow;
- Fairlearn: one `MetricFrame` per segment with AUC, accuracy, selection rate, TPR and
  FPR, plus its demographic parity and equalized odds differences for the sensitive one
  (fewer figures than mlyard computes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import polars as pl
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, roc_auc_score

from mlyard.core.config import logged_keys
from mlyard.core.serving.prediction_log import PredictionLog
from mlyard.core.tracking.segments import segment_figures
from mlyard.core.workspace import open_workspace

OUT = Path(__file__).parent / "out" / "segments"
SEGMENTS = {"store": 50, "product": 20, "age_band": 5}
REQUEST_ROWS = 1000
REPEATS = 3
DELIVERIES = 7


def data(rows: int) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, rows)
    scores = np.clip(truth * 0.5 + rng.normal(0.25, 0.25, rows), 0.0, 1.0)
    groups = pl.DataFrame({name: pl.Series(rng.integers(0, levels, rows)).cast(pl.String)
                           .str.pad_start(2, "0").str.replace(r"^", f"{name[0]}")
                           for name, levels in SEGMENTS.items()})
    return truth, scores, groups


def project(truth: np.ndarray, scores: np.ndarray, groups: pl.DataFrame) -> Path:
    """A trained project whose prediction log holds every row, and a labels file."""
    root = OUT / "project"
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    rng = np.random.default_rng(4)
    train = pl.DataFrame({"row_id": np.arange(2000), "x": rng.normal(size=2000)}).with_columns(
        (pl.col("x") > 0).cast(pl.Int64).alias("label"),
        *[pl.lit(groups[name][0]).alias(name) for name in SEGMENTS])
    train.write_csv(root / "data" / "train.csv")
    columns = "".join(f'[data.columns.{name}]\ntype = "category"\nrole = "segment"\n'
                      for name in SEGMENTS)
    (root / "mlyard.toml").write_text(
        '[project]\nname = "seg"\n[data]\ntarget = "label"\nid_column = "row_id"\n'
        '[data.columns.row_id]\ntype = "int"\n[data.columns.x]\ntype = "float"\n'
        '[data.columns.label]\ntype = "int"\n' + columns.replace(
            '[data.columns.age_band]\ntype = "category"\nrole = "segment"\n',
            '[data.columns.age_band]\ntype = "category"\nrole = "segment"\nsensitive = true\n')
        + f'[train]\nnum_boost_round = 20\n[monitor]\nsegments = {json.dumps(list(SEGMENTS))}\n')
    for command in (["ingest", "data"], ["train", "-q"], ["models", "promote", "latest"]):
        subprocess.run([sys.executable, "-m", "mlyard", *command], cwd=root, check=True,
                       capture_output=True)
    ws = open_workspace(root)
    keys = logged_keys(ws.config)  # as `mlyard serve` logs: the id, then the segments
    log = PredictionLog(ws.catalog, keys=keys)
    log.start()
    ids = [str(i) for i in range(len(truth))]
    columns = {"row_id": ids, **{name: groups[name].to_list() for name in SEGMENTS}}
    now = time.time()
    for start in range(0, len(truth), REQUEST_ROWS):
        end = min(start + REQUEST_ROWS, len(truth))
        inputs = orjson.dumps([{"x": 0.0, **{name: columns[name][i] for name in keys}}
                               for i in range(start, end)]).decode()
        log.add([(f"r{start}", now, "seg", 1, end - start, inputs,
                  orjson.dumps(scores[start:end].tolist()).decode(),
                  tuple(columns[name][start:end] for name in keys))])
    log.close()
    pl.DataFrame({"row_id": ids, "label": truth}).write_csv(root / "labels.csv")
    return root


def feedback_seconds(root: Path) -> float:
    """One first delivery of the labels, on a fresh copy of the project (a delivery is
    kept, so a second run on the same copy would also reread the first)."""
    fresh = OUT / "run"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(root, fresh)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mlyard", "feedback", "labels.csv",
                             "--json"], cwd=fresh, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return time.perf_counter() - started


def repeated_deliveries(root: Path) -> list[float]:
    """`mlyard feedback` run DELIVERIES times on one copy, each a whole process."""
    fresh = OUT / "repeated"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(root, fresh)
    seconds = []
    for _ in range(DELIVERIES):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mlyard", "feedback", "labels.csv", "--json"],
                       cwd=fresh, capture_output=True, check=True)
        seconds.append(round(time.perf_counter() - started, 2))
    return seconds


def ours(truth: np.ndarray, scores: np.ndarray, groups: pl.DataFrame) -> float:
    started = time.perf_counter()
    segment_figures("binary", truth, scores, groups, [(name,) for name in SEGMENTS],
                    {"age_band"}, "auc")
    return time.perf_counter() - started


def fairlearn(truth: np.ndarray, scores: np.ndarray, groups: pl.DataFrame) -> float:
    started = time.perf_counter()
    labels = (scores >= 0.5).astype(int)
    for name in SEGMENTS:
        sensitive = groups[name].to_pandas().astype("category")
        rates = MetricFrame(metrics={"accuracy": accuracy_score,
                                     "selection_rate": selection_rate,
                                     "tpr": true_positive_rate, "fpr": false_positive_rate},
                            y_true=truth, y_pred=labels, sensitive_features=sensitive)
        auc = MetricFrame(metrics=roc_auc_score, y_true=truth, y_pred=scores,
                          sensitive_features=sensitive)
        assert len(rates.by_group) == len(auc.by_group) == SEGMENTS[name]
        if name == "age_band":
            demographic_parity_difference(truth, labels, sensitive_features=sensitive)
            equalized_odds_difference(truth, labels, sensitive_features=sensitive)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    truth, scores, groups = data(args.rows)
    root = project(truth, scores, groups)
    timings: dict[str, list[float]] = {"feedback": [], "segment_figures": [], "fairlearn": []}
    for _ in range(REPEATS):  # interleaved, so a busy neighbour slows both alike
        timings["feedback"].append(feedback_seconds(root))
        timings["segment_figures"].append(ours(truth, scores, groups))
    repeated = repeated_deliveries(root)
    # Fairlearn once: it takes minutes at this size, and its spread matters little then.
    timings["fairlearn"].append(fairlearn(truth, scores, groups))
    print(json.dumps({
        "benchmark": "segments", "rows": args.rows, "segments": SEGMENTS,
        "mlyard_feedback_s (user path, whole process)": round(
            statistics.median(timings["feedback"]), 2),
        "segment_figures_s (inside, in memory)": round(
            statistics.median(timings["segment_figures"]), 2),
        "fairlearn_metricframe_s": round(statistics.median(timings["fairlearn"]), 2),
        f"mlyard_feedback_s, {DELIVERIES} deliveries in turn": repeated,
        "runs": {k: [round(v, 2) for v in vs] for k, vs in timings.items()}}))


if __name__ == "__main__":
    main()
