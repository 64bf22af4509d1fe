"""Listing, filtering and sorting 10,000 runs with 10 params and 5 metrics each.

    .venv/bin/python bench/bench_list_runs.py

The runs are bulk-loaded straight into the catalog (creating them one by one through the
tracking API is measured in bench_logging.py). Each timing is one call of the same core
function the CLI uses, including opening the catalog, taking the lock and building the
result objects; the median of 7 calls is reported. `mlyard runs list` (its table and its
--json) is timed as a whole process too, and MLflow's `search_runs` on the same shapes in
the same run (bench/mlflow_list.py) when `bench/.mlflow-venv` exists.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa

from mlyard.core.tracking import run_queries
from mlyard.core.workspace import open_workspace
from mlyard.storage.runs_store import METRIC_SCHEMA, insert_metrics

RUNS = 10_000
PARAMS = 10
METRICS = 5


def load(ws) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(0)
    now = time.time()
    ids = [uuid.uuid4().hex for _ in range(RUNS)]
    run_rows = pa.table({
        "run_id": ids, "project": ["bench"] * RUNS, "name": [f"run-{i}" for i in range(RUNS)],
        "status": ["finished"] * RUNS, "start_time": [now - i for i in range(RUNS)],
        "end_time": [now - i + 30 for i in range(RUNS)], "heartbeat": [now] * RUNS,
        "pid": [1] * RUNS, "host": ["bench"] * RUNS, "user_name": ["bench"] * RUNS,
        "error": pa.nulls(RUNS, pa.string()),
    })
    param_rows = pa.table({
        "run_id": [r for r in ids for _ in range(PARAMS)],
        "key": [f"param_{k}" for _ in ids for k in range(PARAMS)],
        "value": [str(rng.choice([15, 31, 63, 127, 255])) for _ in range(RUNS * PARAMS)],
    })
    metrics = pa.table({
        "run_id": [r for r in ids for _ in range(METRICS)],
        "key": [f"metric_{k}" for _ in ids for k in range(METRICS)],
        "value": [rng.random() for _ in range(RUNS * METRICS)],
        "step": [0] * (RUNS * METRICS), "ts": [now] * (RUNS * METRICS),
    }, schema=METRIC_SCHEMA)
    with ws.catalog.session() as con:
        con.register("run_rows", run_rows)
        con.register("param_rows", param_rows)
        con.execute("INSERT INTO runs SELECT * FROM run_rows")
        con.execute("INSERT INTO params SELECT * FROM param_rows")
        insert_metrics(con, metrics)


def median_ms(call) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(7):
        started = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - started) * 1000)
    assert result
    return round(statistics.median(samples), 1)


def whole_process(folder: Path, args: list[str]) -> float:
    """`mlyard ARGS` as a user runs it, start-up and output included (median of 3)."""
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mlyard", *args], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "120"})
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples), 2)


def mlflow_search_runs(folder: Path) -> dict[str, float] | str:
    """The same shapes through MLflow's `search_runs`, in the same run (bench/mlflow_list.py
    in `bench/.mlflow-venv`), or why it was skipped."""
    python = Path(__file__).parent / ".mlflow-venv" / "bin" / "python"
    if not python.exists():
        return f"skipped: {python} not found (see bench_serve.py's docstring)"
    where = folder / "mlflow"
    where.mkdir()
    done = subprocess.run([str(python), str(Path(__file__).parent / "mlflow_list.py"),
                           str(where), str(RUNS), str(PARAMS), str(METRICS)],
                          capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="mlyard-bench-"))
    try:
        (folder / "mlyard.toml").write_text('[project]\nname = "bench"\n')
        ws = open_workspace(folder)
        load(ws)
        assert len(run_queries.list_runs(ws)) == RUNS
        results = {
            "list_all_ms": median_ms(lambda: run_queries.list_runs(ws)),
            "filter_metric_ms": median_ms(
                lambda: run_queries.list_runs(ws, ["metrics.metric_0 > 0.5"])),
            "filter_and_sort_ms": median_ms(lambda: run_queries.list_runs(
                ws, ["metrics.metric_0 > 0.5", "params.param_1 >= 63"], "-metrics.metric_1")),
            "sort_by_param_ms": median_ms(lambda: run_queries.list_runs(ws, [], "params.param_2")),
            "top_50_by_metric_ms": median_ms(
                lambda: run_queries.list_runs(ws, [], "-metrics.metric_3", 50)),
        }
        for name, args in (("cli_table_s", []), ("cli_json_s", ["--json"])):
            results[name] = whole_process(folder, ["runs", "list", *args])
        results["mlflow_search_runs"] = mlflow_search_runs(folder)
        if isinstance(results["mlflow_search_runs"], dict):
            results["mlyard_times_faster"] = {
                key: round(value / float(results[key]), 1)  # type: ignore[arg-type]
                for key, value in results["mlflow_search_runs"].items()}
        print(json.dumps({"benchmark": "list_runs", "runs": RUNS, **results}))
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
