"""Compacting one day of 2,650,000 logged requests: the peak memory of the process doing it.

    .venv/bin/python -m bench.bench_compaction [ROWS]

A day folder is filled the way `mlyard serve` fills it (`prediction_files.write`, one file
per flush of 2,650 single-row requests, each with its inputs and outputs as JSON), then
compacted in a fresh process by `prediction_files.compact`, the call the server's log
makes once a day is over. Beside it, in the same run and on a copy of the same folder,
the previous way (every file read whole, concatenated and sorted: labelled "read whole")
as the figure to beat. Peak RSS is the child's ru_maxrss; its RSS after imports is the
floor both start from.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from mlyard.storage import prediction_files

ROWS = 2_650_000
PER_FLUSH = 2_650
DAY = "2026-11-30"

CHILD = """
import resource, sys, time
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from mlyard.storage import prediction_files
root, how = Path(sys.argv[1]), sys.argv[2]
floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if how == "mlyard":
    prediction_files.compact(root, "churn", before_day="2026-12-01")
else:  # the previous way: every file whole, concatenated and sorted
    [day] = prediction_files.day_dirs(root, "churn")
    sources = sorted(day.glob("*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in sources]).sort_by("ts")
    prediction_files.write_whole(day, table, "whole")
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(floor // 1024, peak // 1024, round(seconds, 2))
"""


def fill(root: Path, rows: int) -> None:
    start = time.mktime(time.strptime(DAY + " 00:00:00", "%Y-%m-%d %H:%M:%S"))
    inputs = json.dumps([{"tenure_months": 14, "contract": "month-to-month",
                          "payment_method": "card", "internet_service": "fiber",
                          "monthly_charges": 70.35, "total_charges": 1012.9,
                          "support_calls": 2, "paperless": "yes", "region": "east",
                          "age": 41}])
    for first in range(0, rows, PER_FLUSH):
        count = min(PER_FLUSH, rows - first)
        ts = [start + (first + i) * 86_000 / rows for i in range(count)]
        prediction_files.write(root, pa.table({
            "request_id": [f"r{first + i:09d}" for i in range(count)],
            "ts": ts, "model": ["churn"] * count, "version": pa.array([3] * count, pa.int32()),
            "rows": pa.array([1] * count, pa.int32()), "inputs": [inputs] * count,
            "outputs": [f"[{(first + i) % 997 / 997:.6f}]" for i in range(count)]},
            schema=prediction_files.PREDICTION_SCHEMA))


def measure(root: Path, how: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), how], check=True,
                          capture_output=True, text=True)
    floor, peak, seconds = done.stdout.split()
    return {"floor_mb": int(floor), "peak_mb": int(peak), "seconds": float(seconds)}


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    with tempfile.TemporaryDirectory() as scratch:
        ours, theirs = Path(scratch) / "ours", Path(scratch) / "whole"
        fill(ours, rows)
        [day] = prediction_files.day_dirs(ours, "churn")
        files = len(list(day.glob("*.parquet")))
        size = sum(p.stat().st_size for p in day.glob("*.parquet"))
        shutil.copytree(ours, theirs)
        result = {"bench": "compaction", "rows": rows, "files": files,
                  "day_mb": round(size / 2**20, 1), "mlyard": measure(ours, "mlyard"),
                  "read_whole": measure(theirs, "whole")}
        logged = prediction_files.count_rows(ours, "churn")
        assert logged == rows, (logged, rows)  # nothing lost in the merge
        result["files_after"] = len(list(day.glob("*.parquet")))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
