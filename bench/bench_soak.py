"""Soak: a logging server takes traffic until 2,000,000 predictions are logged; then every
command still works, nothing logged is missing, and the catalog stays small.

    .venv/bin/python -m bench.bench_soak

`mlyard serve` (prediction log on) runs as its own process with the bench_serve project.
One client sends 20,000-row requests, another single-row ones, both bounded in count, until
the rows sent reach 2,000,000. Then: the rows the log holds are counted against the rows
sent; `mlyard runs list`, `models list`, `data list` and `drift --served 1d` run; and the
catalog's file size and the server's peak RSS are reported. Before predictions moved out
of the catalog, about twenty 20,000-row requests made every process fail to open it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import polars as pl
import psutil

from bench.bench_serve import build_project, free_port, start
from mlyard.core.data import versions
from mlyard.core.workspace import open_workspace
from mlyard.storage import prediction_files

TARGET_ROWS = 2_000_000
BIG = 20_000


def main() -> None:
    project = build_project()
    frame = versions.load_versions(open_workspace(project)).drop("churned") \
        .with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String))
    big = {"dataframe_records": (frame.to_dicts() * 3)[:BIG]}
    small = {"dataframe_records": frame.head(1).to_dicts()}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server, _ = start([sys.executable, "-m", "mlyard", "serve", "churn@champion", "--port",
                       str(port)], project, url)
    sent = {"big": 0, "small": 0}
    stop = threading.Event()
    peak_rss = 0
    started = time.perf_counter()
    try:
        def send_small() -> None:
            with httpx.Client(timeout=120) as client:
                while not stop.is_set() and sent["small"] < 200_000:
                    assert client.post(f"{url}/invocations", json=small).status_code == 200
                    sent["small"] += 1

        smalls = threading.Thread(target=send_small)
        smalls.start()
        with httpx.Client(timeout=300) as client:
            while sent["big"] * BIG + sent["small"] < TARGET_ROWS:
                assert client.post(f"{url}/invocations", json=big).status_code == 200
                sent["big"] += 1
                peak_rss = max(peak_rss, psutil.Process(server.pid).memory_info().rss)
        stop.set()
        smalls.join()
        rows_sent = sent["big"] * BIG + sent["small"]
        ws = open_workspace(project)
        deadline = time.monotonic() + 120
        while prediction_files.count_rows(ws.catalog.predictions_dir, "churn") < rows_sent \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        logged = prediction_files.count_rows(ws.catalog.predictions_dir, "churn")
        health = httpx.get(f"{url}/health").json()
    finally:
        server.terminate()
        server.wait(timeout=60)
    seconds = time.perf_counter() - started
    commands = {}
    for args in (["runs", "list"], ["models", "list"], ["data", "list"],
                 ["drift", "--served", "1d", "--json"]):
        began = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "mlyard", *args], cwd=project,
                                capture_output=True, text=True)
        commands[" ".join(args)] = {"exit": result.returncode,
                                    "seconds": round(time.perf_counter() - began, 2)}
    files = sum(1 for _ in ws.catalog.predictions_dir.rglob("*.parquet"))
    size = sum(p.stat().st_size for p in ws.catalog.predictions_dir.rglob("*.parquet"))
    print(json.dumps({
        "benchmark": "soak", "rows_sent": rows_sent, "rows_logged": logged,
        "requests": sent, "seconds": round(seconds, 1), "health": health["status"],
        "dropped": health["prediction_log"]["dropped"],
        "catalog_mb": round(ws.catalog.path.stat().st_size / 2**20, 2),
        "prediction_files": files, "prediction_files_mb": round(size / 2**20, 1),
        "server_peak_rss_mb": round(peak_rss / 2**20), "commands_after": commands}))


if __name__ == "__main__":
    main()
