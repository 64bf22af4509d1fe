"""Start-up time of whole `mlyard` processes, as a person at a shell feels it.

    .venv/bin/python -m bench.bench_startup      (or: make bench-startup)

Each command runs as a fresh process (`.venv/bin/mlyard ...`) several times on the
sample churn project (two batches ingested, one model trained); the minimum and median
wall times are reported. `mlflow --help` runs beside it when `bench/.mlflow-venv/bin/mlflow`
exists (python3 -m venv bench/.mlflow-venv && bench/.mlflow-venv/bin/pip install mlflow).
Run it on an idle machine: the targets are for one.
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

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "sample_data" / "churn"
MLYARD = Path(sys.executable).parent / "mlyard"
REPEATS = 9
TARGETS = {"mlyard --help": 0.3, "mlyard --version": 0.3, "mlyard runs list --json": 0.6}


def timed(command: list[str], cwd: Path) -> list[float]:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "churn"
        (project / "data").mkdir(parents=True)
        shutil.copy(SAMPLE / "mlyard.toml", project / "mlyard.toml")
        for path in sorted((SAMPLE / "data").glob("*.csv"))[:2]:
            shutil.copy(path, project / "data" / path.name)
        for args in (["ingest", "data"], ["train", "--quiet"]):
            subprocess.run([str(MLYARD), *args], cwd=project, check=True,
                           stdout=subprocess.DEVNULL)
        commands = {name: [str(MLYARD), *name.split()[1:]] for name in TARGETS}
        mlflow = HERE / ".mlflow-venv" / "bin" / "mlflow"
        if mlflow.exists():
            commands["mlflow --help"] = [str(mlflow), "--help"]
        results = {}
        for name, command in commands.items():
            times = timed(command, project)
            results[name] = {"min_s": round(min(times), 3),
                             "median_s": round(statistics.median(times), 3),
                             "target_s": TARGETS.get(name)}
            print(f"{name:28} min {min(times):.3f} s  median {statistics.median(times):.3f} s"
                  + (f"  (target {TARGETS[name]} s)" if name in TARGETS else ""))
        if not mlflow.exists():
            results["mlflow --help"] = {"skipped": f"{mlflow} not found"}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
