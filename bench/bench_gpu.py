"""`mlyard train` on the CPU against `mlyard train --device gpu` on the same data.

    .venv/bin/python -m bench.bench_gpu

The 200,000-row, 30-feature project of bench_train, trained with the same params and
seed on each device, REPEATS times each in turn, as fresh processes. The GPU is whatever
OpenCL device the machine has (named in the output): here, with no GPU, PoCL running
the OpenCL learner on the same two CPU cores, which measures the GPU path's cost, not a
GPU's speed. The first GPU run compiles LightGBM's kernels (PoCL caches them); it is
timed apart, with an empty kernel cache.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_train import make_project

REPEATS = 3


def train(project: Path, device: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mlyard", "train", "-q", "--json",
                             "--device", device], cwd=project, capture_output=True,
                            text=True, check=True, env=env)
    return {**json.loads(result.stdout), "seconds": time.perf_counter() - started}


def main() -> None:
    project = make_project()
    with tempfile.TemporaryDirectory() as cache:
        cold = train(project, "gpu", {**os.environ, "POCL_CACHE_DIR": cache})
    runs: dict[str, list[dict[str, Any]]] = {"cpu": [], "gpu": []}
    for _ in range(REPEATS):
        for device in runs:
            runs[device].append(train(project, device))
    summary = {}
    for device, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        summary[device] = {"device": results[0]["device"], "train_s": round(seconds, 2),
                           "best_iteration": results[0]["best_iteration"],
                           "holdout_auc": round(results[0]["metrics"]["auc"], 5)}
    print(json.dumps({"benchmark": "gpu", "rows": 200_000, "features": 30,
                      **summary, "gpu_vs_cpu": round(summary["gpu"]["train_s"]
                                                     / summary["cpu"]["train_s"], 2),
                      "gpu_first_run_s": round(cold["seconds"], 2)}))


if __name__ == "__main__":
    main()
