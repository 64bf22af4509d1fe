"""Ingest a large CSV and report rows/s and the peak memory of the ingesting process.

    .venv/bin/python bench/bench_ingest.py [--rows 5000000]

The file has the churn sample's 13 columns. It is generated once into bench/out/ and the
ingest runs as a separate `mlyard ingest` process, so its peak RSS is the child's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

OUT = Path(__file__).parent / "out" / "ingest"
REPO = Path(__file__).resolve().parents[1]


def make_csv(path: Path, rows: int) -> None:
    if path.exists() and path.stat().st_size > 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    chunk = 1_000_000
    with open(path, "wb") as handle:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            frame = pl.DataFrame({
                "customer_id": [f"C{i:09d}" for i in range(start, start + n)],
                "snapshot_date": pl.date_range(pl.date(2026, 1, 1), pl.date(2026, 1, 28),
                                               eager=True).sample(n, with_replacement=True,
                                                                  seed=start),
                "tenure_months": rng.integers(0, 96, n),
                "contract": rng.choice(["month-to-month", "one-year", "two-year"], n),
                "payment_method": rng.choice(["card", "bank-transfer", "e-check",
                                              "mailed-check"], n),
                "internet_service": rng.choice(["fiber", "dsl", "none"], n),
                "monthly_charges": rng.uniform(15, 160, n).round(2),
                "total_charges": rng.uniform(15, 9000, n).round(2),
                "support_calls": rng.poisson(1.2, n),
                "has_partner": rng.choice(["yes", "no"], n),
                "region": rng.choice(["north", "south", "east", "west"], n),
                "age": rng.integers(18, 90, n),
                "churned": rng.integers(0, 2, n),
            })
            frame.write_csv(handle, include_header=start == 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    csv_path = OUT / f"churn_{args.rows}.csv"
    make_csv(csv_path, args.rows)
    project = OUT / "project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    shutil.copy(REPO / "sample_data" / "churn" / "mlyard.toml", project / "mlyard.toml")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mlyard", "ingest", "--json", str(csv_path)],
                            cwd=project, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"ingest failed: {result.stderr}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = json.loads(result.stdout)[0]["rows"]
    print(json.dumps({
        "benchmark": "ingest", "rows": rows, "file_mb": round(csv_path.stat().st_size / 2**20),
        "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
        "peak_rss_mb": round(peak_mb),
    }))


if __name__ == "__main__":
    main()
