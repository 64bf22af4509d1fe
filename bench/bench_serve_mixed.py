"""Single-row latency with and without 20,000-row requests beside it, in one run.

    .venv/bin/python -m bench.bench_serve_mixed

`mlyard serve` runs as its own process on 127.0.0.1 with the bench_serve project (a
100-tree model on the churn sample). A client sends single-row requests one after another
for 10 s; then for another 10 s while a second client sends 20,000-row requests back to
back. Scoring runs in worker threads, so the small requests should stay fast; before
that, each big request held the event loop and every small one waited behind it.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time

import httpx
import polars as pl

from bench.bench_serve import build_project, free_port, start
from mlyard.core.data import versions
from mlyard.core.workspace import open_workspace

SECONDS = 10.0


def small_latencies(url: str, body: dict[str, object], seconds: float) -> list[float]:
    latencies = []
    with httpx.Client(timeout=120) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert client.post(f"{url}/invocations", json=body).status_code == 200
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"requests": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
            "max_ms": round(ordered[-1], 2)}


def main() -> None:
    project = build_project()
    frame = versions.load_versions(open_workspace(project)).drop("churned") \
        .with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String))
    small = {"dataframe_records": frame.head(1).to_dicts()}
    big = {"dataframe_records": (frame.head(20_000).to_dicts() * 3)[:20_000]}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server, _ = start([sys.executable, "-m", "mlyard", "serve", "churn@champion", "--port",
                       str(port), "--no-log"], project, url)
    try:
        alone = small_latencies(url, small, SECONDS)
        stop = threading.Event()
        big_times: list[float] = []

        def send_big() -> None:
            with httpx.Client(timeout=300) as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    assert client.post(f"{url}/invocations", json=big).status_code == 200
                    big_times.append(time.perf_counter() - started)

        sender = threading.Thread(target=send_big)
        sender.start()
        beside = small_latencies(url, small, SECONDS)
        stop.set()
        sender.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps({"benchmark": "serve_mixed", "single_row_alone": summary(alone),
                      "single_row_beside_20k_row_requests": summary(beside),
                      "big_requests": len(big_times),
                      "big_request_median_s": round(statistics.median(big_times), 2)}))


if __name__ == "__main__":
    main()
