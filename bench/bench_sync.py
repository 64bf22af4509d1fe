"""`mlyard sync` of a workspace with 10,000 runs into an empty project, then again.

    .venv/bin/python -m bench.bench_sync

The runs are bench_list_runs' (10 params and 5 metrics each, 150,000 rows). Both syncs
run as whole processes, as a user runs them; the second must move nothing. Reported:
wall time of each, and what the first moved.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_list_runs import RUNS, load
from mlyard.core.workspace import open_workspace


def project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "mlyard.toml").write_text('[project]\nname = "bench"\n')
    return folder


def timed_sync(here: Path, remote: Path) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlyard", "sync", str(remote), "--json"],
                          cwd=here, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mlyard-bench-sync-"))
    try:
        box, laptop = project(root / "box"), project(root / "laptop")
        load(open_workspace(box))
        first_s, first = timed_sync(laptop, box)
        second_s, second = timed_sync(laptop, box)
        assert len(first["new_runs"]) == RUNS and not second["new_runs"]  # type: ignore[arg-type]
        print(json.dumps({"benchmark": "sync", "runs": RUNS, "first_sync_s": round(first_s, 2),
                          "runs_per_s": round(RUNS / first_s), "second_sync_s":
                          round(second_s, 2), "second_sync_bytes": second["bytes"],
                          "second_sync_runs": len(second["new_runs"])}))  # type: ignore[arg-type]
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
