"""What a shadow model costs the champion's latency, at the same load, in the same run.

    .venv/bin/python -m bench.bench_shadow

The churn sample's 100-tree model is champion; a second model (63 leaves, 200 trees,
so scoring it is more work than scoring the champion) is the challenger. Two `mlyard serve`
processes run side by side, one alone and one with `--shadow challenger`, and each round
loads one and then the other (the order alternating) with `wrk`, cell by cell:

- single-row and 100-row bodies at a steady load (4 connections, each waiting a few
  milliseconds between requests: well below what the server can take, which is how a
  server is run, and where latency is the server's rather than a queue's);
- the same bodies as fast as the server answers (8 connections), for throughput.

Each figure is the median of ROUNDS rounds; each ratio is the median of the per-round
ratios (with shadow / alone), so a machine whose speed wanders cannot favour one side.
At the end each server's /health says how many requests the shadow scored and dropped.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import httpx

from bench.bench_serve import OUT, build_project, free_port, load, start
from mlyard.core.data import versions
from mlyard.core.models.loading import load_model
from mlyard.core.workspace import open_workspace

ROUNDS = 9
# (rows per body, connections, milliseconds each connection waits between requests)
CELLS = [(1, 4, 4), (100, 4, 20), (1, 8, None), (100, 8, None)]


def add_challenger(project: Path) -> None:
    for args in (["train", "-q", "--param", "num_leaves=63", "--param",
                  "num_iterations=200"], ["models", "alias", "challenger", "latest"]):
        subprocess.run([sys.executable, "-m", "mlyard", *args], cwd=project, check=True,
                       capture_output=True)


def main() -> None:
    project = build_project()
    add_challenger(project)
    frame = versions.load_versions(open_workspace(project))
    spec = load_model(open_workspace(project), "champion").spec
    bodies = {}
    for rows in (1, 100):
        body = OUT / f"shadow_body_{rows}.json"
        records = frame.head(rows).select([*spec.names, "customer_id"]).to_dicts()
        body.write_text(json.dumps({"dataframe_records": records}))
        bodies[rows] = body
    ports = {"alone": free_port(), "with_shadow": free_port()}
    extra = {"alone": [], "with_shadow": ["--shadow", "challenger"]}
    processes = []
    rounds: dict[str, dict[str, list[dict[str, float]]]] = {name: {} for name in ports}
    health: dict[str, object] = {}
    try:
        for name, port in ports.items():
            processes.append(start([sys.executable, "-m", "mlyard", "serve", "champion",
                                    "--port", str(port), *extra[name]], project,
                                   f"http://127.0.0.1:{port}")[0])
        for index in range(ROUNDS):
            names = list(ports) if index % 2 == 0 else list(reversed(ports))
            for rows, connections, delay in CELLS:
                cell = f"{rows}_rows_c{connections}" + ("_steady" if delay else "_flat_out")
                for name in names:
                    rounds[name].setdefault(cell, []).append(load(
                        f"http://127.0.0.1:{ports[name]}", bodies[rows], connections, rows,
                        delay_ms=delay))
        for name, port in ports.items():
            health[name] = httpx.get(f"http://127.0.0.1:{port}/health").json()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    results: dict[str, object] = {"benchmark": "shadow", "rounds": ROUNDS}
    for name, cells in rounds.items():
        results[name] = {cell: {key: statistics.median(r[key] for r in runs)
                                for key in ("requests_per_s", "p50_ms", "p99_ms", "errors")}
                         for cell, runs in cells.items()}
    for cell in rounds["alone"]:
        alone, shadowed = rounds["alone"][cell], rounds["with_shadow"][cell]
        results[f"{cell}_with_shadow_vs_alone"] = {
            key: round(statistics.median(s[key] / a[key]
                                         for s, a in zip(shadowed, alone, strict=True)), 3)
            for key in ("requests_per_s", "p50_ms", "p99_ms")}
    results["shadow_health"] = health["with_shadow"]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
