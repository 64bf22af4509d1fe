"""The terminal UI on a workspace of 10,000 runs: time to a usable runs table, and how
fast keys are answered while another process logs 5,000 metric points a second.

    .venv/bin/python bench/bench_tui.py

Headless (Textual's pilot), 120x36. "Usable" means the runs table shows its first page
with the cursor on it. Key latency is measured from sending `down` to the cursor having
moved, 200 presses spread over about 10 seconds, while the writer runs and the screen's
live refresh reloads the page every 2 seconds.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench.bench_list_runs import load
from mlyard.core.workspace import open_workspace
from mlyard.tui.app import MlyardApp

WRITER = textwrap.dedent("""
    import time
    from mlyard.core.tracking import active_run
    with active_run.start_run(name="live-writer") as run:
        started = time.perf_counter()
        for i in range(60_000):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
            if i % 500 == 499:
                time.sleep(max(0.0, started + (i + 1) / 5000 - time.perf_counter()))
""")


async def measure(folder: Path) -> dict[str, float]:
    app = MlyardApp(open_workspace(folder), screen="runs")
    started = time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        table = None
        while table is None or not table.row_count:
            await pilot.pause(0.005)
            tables = app.screen.query("#runs-table")
            table = tables.first() if tables else None
        ready = time.perf_counter() - started
        writer = subprocess.Popen([sys.executable, "-c", WRITER], cwd=folder)
        try:
            await pilot.pause(1.0)
            latencies = []
            for press in range(200):
                row = table.cursor_row
                sent = time.perf_counter()
                await pilot.press("down" if press % 100 < 50 else "up")
                while table.cursor_row == row:
                    await pilot.pause(0.001)
                latencies.append((time.perf_counter() - sent) * 1000)
                await pilot.pause(0.05)
        finally:
            writer.wait(timeout=120)
    latencies.sort()
    return {"runs_table_ready_s": round(ready, 3),
            "key_latency_p50_ms": round(statistics.median(latencies), 1),
            "key_latency_p95_ms": round(latencies[int(len(latencies) * 0.95)], 1),
            "key_latency_max_ms": round(latencies[-1], 1)}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="mlyard-bench-tui-"))
    try:
        (folder / "mlyard.toml").write_text('[project]\nname = "bench"\n')
        load(open_workspace(folder))
        results = asyncio.run(measure(folder))
        print(json.dumps({"benchmark": "tui", "runs": 10_000, **results}))
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
