"""Metric logging throughput, in-process, through the public tracking API.

    .venv/bin/python bench/bench_logging.py

per call: one `log_metric` per point. batched: `log_metrics` with 10 metrics per call.
"logging" is the rate the training loop sees; "end to end" also waits until every point
is flushed into the catalog. Runs created per second are measured too, for comparison
with MLflow's figure in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlyard.core.tracking import active_run
from mlyard.core.workspace import open_workspace
from mlyard.storage.runs_store import count_metric_points

POINTS = 1_000_000


def per_call(ws) -> dict[str, float]:  # type: ignore[no-untyped-def]
    run = active_run.start_run(workspace=ws)
    started = time.perf_counter()
    for step in range(POINTS):
        run.log_metric("loss", 0.5, step)
    logged = time.perf_counter() - started
    run.end()
    total = time.perf_counter() - started
    _check(ws, run.run_id, POINTS)
    return {"logging_points_per_s": POINTS / logged, "end_to_end_points_per_s": POINTS / total}


def batched(ws) -> dict[str, float]:  # type: ignore[no-untyped-def]
    run = active_run.start_run(workspace=ws)
    metrics = {f"metric_{i}": 0.5 for i in range(10)}
    started = time.perf_counter()
    for step in range(POINTS // 10):
        run.log_metrics(metrics, step)
    logged = time.perf_counter() - started
    run.end()
    total = time.perf_counter() - started
    _check(ws, run.run_id, POINTS)
    return {"logging_points_per_s": POINTS / logged, "end_to_end_points_per_s": POINTS / total}


def runs_per_second(ws, count: int = 100) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for index in range(count):
        with active_run.start_run(workspace=ws, params={"i": index}) as run:
            run.log_metric("auc", 0.5)
    return count / (time.perf_counter() - started)


def _check(ws, run_id: str, expected: int) -> None:  # type: ignore[no-untyped-def]
    with ws.catalog.session() as con:
        assert count_metric_points(con, run_id) == expected


def main() -> None:
    if len(sys.argv) < 2:
        # The measuring process gets a folder of its own and the folder is removed once
        # it has exited: its spool loader makes a last load at exit, which re-created a
        # folder removed before.
        folder = Path(tempfile.mkdtemp(prefix="mlyard-bench-"))
        try:
            subprocess.run([sys.executable, "-m", "bench.bench_logging", str(folder)],
                           check=True)
        finally:
            shutil.rmtree(folder)
        return
    folder = Path(sys.argv[1])
    (folder / "mlyard.toml").write_text('[project]\nname = "bench"\n')
    ws = open_workspace(folder)
    results = {
        "per_call": _median_of(3, lambda: per_call(ws)),
        "batched_10_per_call": _median_of(3, lambda: batched(ws)),
        "runs_created_per_s": round(runs_per_second(ws), 1),
    }
    print(json.dumps({"benchmark": "metric_logging", **results}))


def _median_of(times: int, measure) -> dict[str, int]:  # type: ignore[no-untyped-def]
    samples = [measure() for _ in range(times)]
    return {key: round(statistics.median(s[key] for s in samples)) for key in samples[0]}


if __name__ == "__main__":
    main()
