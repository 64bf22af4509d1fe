"""Faults together, for ten minutes: does every wait end, is every loss said, and what do
they cost the requests being served?

    .venv/bin/python -m bench.bench_faults [SECONDS]

`mlyard serve` with a shadow takes a steady stream of single-row requests (one client,
latencies recorded) for SECONDS (default 600) while, all at once:
- the shadow's worker is stopped (SIGSTOP) a minute in, and stays stuck;
- alerts go to three webhook receivers on 127.0.0.1: one that drips a byte every 2 s,
  one that never answers, one that answers well; a refused file raises an alert every
  30 s, and each command delivers on its way out;
- every 30 s a FIFO named like a spool segment and one named like a logged-predictions
  file are planted (the spool's raises an alert when it is set aside), and `mlyard runs
  list` and `models list` run (each timed);
- every 60 s `mlyard sync` runs against an ssh stand-in that connects and says nothing
  (MLYARD_SYNC_TIMEOUT=5).
At the end: requests answered and failed with p50/p99 latency, rows logged against rows
answered, the good receiver's alerts against the alerts raised, the longest command, the
server's peak RSS, whether /health said degraded, and how long SIGTERM took.
"""

from __future__ import annotations

import http.server
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import psutil

from bench.bench_serve import build_project, free_port, start
from mlyard.core.data import versions
from mlyard.core.workspace import open_workspace
from mlyard.storage import prediction_files

SECONDS = 600


class Receivers:
    """/ok answers 204 and counts; /drip sends a byte every 2 s; /never says nothing."""

    def __init__(self) -> None:
        self.ok = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/ok":
                    outer.ok += 1
                    self.send_response(204)
                    self.end_headers()
                elif self.path == "/drip":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(300):
                        time.sleep(2)
                        self.wfile.write(b"X")
                else:
                    time.sleep(300)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def mlyard(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlyard", *args], cwd=project,
                          capture_output=True, timeout=600, env={**os.environ, **(env or {})})
    return done.returncode, time.perf_counter() - started


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS
    project = build_project()
    subprocess.run([sys.executable, "-m", "mlyard", "models", "alias", "challenger",
                    "latest"], cwd=project, check=True, capture_output=True)
    receivers = Receivers()
    config = project / "mlyard.toml"
    config.write_text(config.read_text() + "\n[alerts]\nwebhooks = [" + ", ".join(
        f'"{receivers.url}/{path}"' for path in ("drip", "never", "ok")) +
        ']\ntimeout = "5s"\nretries = 1\nbackoff = "30s"\nwait = "1s"\ncooldown = "1s"\n')
    ws = open_workspace(project)
    frame = versions.load_versions(ws).drop("churned").with_columns(
        pl.col(pl.Date, pl.Datetime).cast(pl.String))
    body = {"dataframe_records": frame.head(1).to_dicts()}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server, _ = start([sys.executable, "-m", "mlyard", "serve", "churn@champion", "--shadow",
                       "challenger", "--port", str(port)], project, url)
    latencies: list[float] = []
    failed = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal failed
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    ok = http.post(f"{url}/invocations", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - began)
                else:
                    failed += 1

    sending = threading.Thread(target=client, daemon=True)
    sending.start()
    proc = psutil.Process(server.pid)
    peak = degraded = 0
    longest = ("", 0.0)
    refusals = syncs = syncs_ended = 0
    quiet_ssh = shlex.join([sys.executable, "-c", "import time; time.sleep(600)"])
    began = time.monotonic()
    stopped_shadow = False
    next_fault = next_sync = began
    while (now := time.monotonic()) - began < seconds:
        peak = max(peak, sum(p.memory_info().rss for p in [proc, *proc.children(True)]))
        if not stopped_shadow and now - began > 60:
            for child in proc.children(recursive=True):
                if "shadow_worker" in " ".join(child.cmdline()):
                    child.suspend()
                    stopped_shadow = True
        try:
            degraded += httpx.get(f"{url}/health", timeout=5).json()["status"] == "degraded"
        except httpx.HTTPError:
            pass
        if now >= next_fault:
            next_fault = now + 30
            stamp = time.time_ns()
            spool = ws.catalog.spool_dir
            spool.mkdir(parents=True, exist_ok=True)
            os.mkfifo(spool / f"metrics-{stamp:020d}-fifo00000000.arrow")
            day = ws.catalog.predictions_dir / "model=churn" / "date=2026-01-01"
            day.mkdir(parents=True, exist_ok=True)
            os.mkfifo(day / f"{stamp:020d}-fifo.parquet")
            refused = project / "data" / f"refused-{stamp}.csv"
            refused.write_text("customer_id,nothing\nC1,2\n")
            refusals += mlyard(project, "ingest", str(refused))[0] == 1
            for command in (("runs", "list"), ("models", "list")):
                code, took = mlyard(project, *command)
                assert code == 0, command
                longest = max(longest, (" ".join(command), took), key=lambda x: x[1])
        if now >= next_sync:
            next_sync = now + 60
            code, took = mlyard(project, "sync", "ssh://box/srv/churn",
                                env={"MLYARD_SSH": quiet_ssh, "MLYARD_SYNC_TIMEOUT": "5"})
            syncs += 1
            syncs_ended += code == 1
            longest = max(longest, ("sync to a silent box", took), key=lambda x: x[1])
        time.sleep(1)
    stop.set()
    sending.join()
    answered = len(latencies)
    terminated = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)
    sigterm_seconds = time.perf_counter() - terminated
    logged = prediction_files.count_rows(ws.catalog.predictions_dir, "churn")
    mlyard(project, "alerts")  # one last delivery pass, as any later command makes
    listed = subprocess.run([sys.executable, "-m", "mlyard", "alerts", "--json", "--limit",
                             "1000"], cwd=project, capture_output=True, text=True, check=True)
    raised = json.loads(listed.stdout)
    ordered = sorted(latencies)
    print(json.dumps({
        "bench": "faults", "seconds": seconds,
        "requests": {"answered": answered, "failed": failed,
                     "p50_ms": round(statistics.median(ordered) * 1000, 2),
                     "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2)},
        "rows_logged": logged, "rows_answered": answered,
        "files_refused": refusals, "alerts_raised": len(raised),
        "alerts_to_the_good_receiver": receivers.ok,
        "health_degraded_readings": degraded, "shadow_stopped": stopped_shadow,
        "syncs_to_a_silent_box": syncs, "syncs_that_ended": syncs_ended,
        "longest_command": {"what": longest[0], "seconds": round(longest[1], 2)},
        "server_peak_rss_mb": round(peak / 2**20),
        "sigterm_to_exit_s": round(sigterm_seconds, 2)}))


if __name__ == "__main__":
    main()
