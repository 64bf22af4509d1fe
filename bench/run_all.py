"""Run every benchmark in its own process and print one JSON line each.

    make bench        (or: .venv/bin/python bench/run_all.py)

Figures and the machine they were taken on are kept in docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = ["bench_startup.py", "bench_logging.py", "bench_runs.py", "bench_list_runs.py",
              "bench_ingest.py", "bench_train.py", "bench_tui.py", "bench_serve.py",
              "bench_serve_mixed.py", "bench_soak.py", "bench_watch.py", "bench_drift.py",
              "bench_evidently.py", "bench_shadow.py", "bench_gpu.py", "bench_sync.py",
              "bench_compaction.py", "bench_faults.py"]


def main() -> None:
    failed = 0
    for name in BENCHMARKS:
        module = f"bench.{Path(name).stem}"
        result = subprocess.run([sys.executable, "-m", module], cwd=HERE.parent)
        failed += result.returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
