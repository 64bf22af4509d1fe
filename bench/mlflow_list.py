"""MLflow's `search_runs` on the runs `bench_list_runs.py` lists, for the comparison only.

Run with the benchmark's own MLflow venv: `bench/.mlflow-venv/bin/python
bench/mlflow_list.py FOLDER RUNS PARAMS METRICS`. One run is created through MLflow's
API (so every table and column is MLflow's own); the rest are copies of its rows under
new ids with the same shapes as mlyard's bench (param values from the same choices,
random metrics), inserted with sqlite3 because creating 10,000 runs through MLflow takes
many minutes. Prints one JSON line of median milliseconds (7 calls each).
"""

import json
import random
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path

import mlflow

folder, runs, params, metrics = Path(sys.argv[1]), *map(int, sys.argv[2:5])
database = folder / "mlflow.db"
mlflow.set_tracking_uri(f"sqlite:///{database}")
experiment = mlflow.set_experiment("bench").experiment_id
with mlflow.start_run() as first:
    mlflow.log_params({f"param_{k}": 31 for k in range(params)})
    mlflow.log_metrics({f"metric_{k}": 0.5 for k in range(metrics)})
template = first.info.run_id

rng = random.Random(0)
ids = [uuid.uuid4().hex for _ in range(runs - 1)]  # one per copy, the same in every table
with sqlite3.connect(database) as db:
    for table, id_column in (("runs", "run_uuid"), ("params", "run_uuid"),
                             ("metrics", "run_uuid"), ("latest_metrics", "run_uuid"),
                             ("tags", "run_uuid")):
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        rows = db.execute(f"SELECT * FROM {table} WHERE {id_column} = ?", [template]).fetchall()
        copies = []
        for index, new_id in enumerate(ids):
            for row in rows:
                values = dict(zip(columns, row, strict=True))
                values[id_column] = new_id
                if table == "runs":
                    values["name"] = f"run-{index}"
                    values["start_time"] = values["start_time"] - index * 1000
                if table == "params":
                    values["value"] = str(rng.choice([15, 31, 63, 127, 255]))
                if table in ("metrics", "latest_metrics"):
                    values["value"] = rng.random()
                copies.append([values[c] for c in columns])
        db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", copies)


def median_ms(call) -> float:
    samples = []
    for _ in range(7):
        started = time.perf_counter()
        found = call()
        samples.append((time.perf_counter() - started) * 1000)
    assert len(found) > 0
    return round(statistics.median(samples), 1)


everything = mlflow.search_runs([experiment], max_results=100_000)
assert len(everything) == runs, len(everything)
print(json.dumps({
    "list_all_ms": median_ms(lambda: mlflow.search_runs([experiment], max_results=100_000)),
    "filter_metric_ms": median_ms(lambda: mlflow.search_runs(
        [experiment], "metrics.metric_0 > 0.5", max_results=100_000)),
    "filter_and_sort_ms": median_ms(lambda: mlflow.search_runs(
        [experiment], "metrics.metric_0 > 0.5 and params.param_1 = '63'",
        order_by=["metrics.metric_1 DESC"], max_results=100_000)),
    "top_50_by_metric_ms": median_ms(lambda: mlflow.search_runs(
        [experiment], order_by=["metrics.metric_3 DESC"], max_results=50)),
}))
