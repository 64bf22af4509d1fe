"""Creating runs: mlyard against Trackio and MLflow in the same run.

    .venv/bin/python -m bench.bench_runs

Each tool runs each workload in a fresh process and folder, through its public API, and
the clock stops when everything is stored (mlyard: after a unit of work that loads
what the runs left in the spool; Trackio: after `finish()`; MLflow is synchronous).
Every count is checked in the store afterwards. Trackio 0.43 is measured when
`bench/.trackio-venv` has it (`python3 -m venv bench/.trackio-venv &&
bench/.trackio-venv/bin/pip install trackio==0.43.0`), MLflow when `bench/.mlflow-venv`
has it; each is skipped with a message otherwise.

mlyard is driven as the README shows it: `import mlyard`, then in the project folder
`with mlyard.start_run(name=..., params={...}): mlyard.log_metric(...)`. Beside it, and
labelled "mlyard (workspace= passed)", the same with a workspace opened once and passed
in, a path the docs do not show users.

Workloads:
- readme: 200 runs, each `start_run(name, params)` + one `log_metric` + end, as the
  README shows (MLflow: 40 runs).
- simple: 500 runs, each start + 10 params + one metric + end (MLflow: 100 runs).
- steps: 200 runs x 10 params x 100 steps x 10 metrics (MLflow: 20 runs).
- five: 1,000 runs with 10 params and 5 metrics each (MLflow: 100 runs).
- points: one run, `log_metric` one point per call, 20,000 points (MLflow: 1,000).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENVS = {"trackio": BENCH / ".trackio-venv", "mlflow": BENCH / ".mlflow-venv"}
WORKLOADS = {  # name: (runs, steps, metrics per step, points) for mlyard and Trackio
    "readme": (200, 1, 1, 0),
    "simple": (500, 1, 1, 0),
    "steps": (200, 100, 10, 0),
    "five": (1000, 1, 5, 0),
    "points": (1, 0, 0, 20_000),
}
MLFLOW_SCALE = {"readme": 5, "simple": 5, "steps": 10, "five": 10, "points": 20}  # slow
TOOLS = ("mlyard", "mlyard-workspace", "trackio", "mlflow")
LABELS = {"mlyard-workspace": "mlyard (workspace= passed)"}


def params_for(index: int) -> dict[str, Any]:
    return {f"param_{j}": index * 10 + j for j in range(10)}


def run_mlyard(folder: Path, runs: int, steps: int, metrics: int, points: int) -> dict[str, Any]:
    """As the README shows it: in the project folder, `mlyard.start_run()` and friends."""
    import mlyard

    # `import mlyard` is lazy (the CLI starts in 0.08 s): what a script uses is imported at
    # its first use, and pyarrow imports pandas on its first array. One run in a scratch
    # project pays that before the clock, as Trackio's and MLflow's imports are paid.
    scratch = folder / "scratch"
    scratch.mkdir()
    (scratch / "mlyard.toml").write_text('[project]\nname = "scratch"\n')
    mlyard.start_run(workspace=scratch).end()
    (folder / "mlyard.toml").write_text('[project]\nname = "bench"\n')
    os.chdir(folder)
    names = [f"metric_{k}" for k in range(metrics)]
    started = time.perf_counter()  # the first run opens the workspace: on the clock
    if points:
        with mlyard.start_run(name="points"):
            for step in range(points):
                mlyard.log_metric("loss", 0.5, step)
    else:
        for index in range(runs):
            with mlyard.start_run(name=f"run-{index}", params=params_for(index)):
                for step in range(steps):
                    if metrics == 1:
                        mlyard.log_metric(names[0], step / 100, step)
                    else:
                        mlyard.log_metrics(dict.fromkeys(names, step / 100), step)
    looped = time.perf_counter() - started
    return _stored(mlyard.open_workspace(folder), started, looped)


def run_mlyard_workspace(folder: Path, runs: int, steps: int, metrics: int, points: int
                         ) -> dict[str, Any]:
    """The internal path, labelled: a workspace opened once and passed to each run."""
    from mlyard.core.tracking import active_run
    from mlyard.core.workspace import open_workspace

    (folder / "mlyard.toml").write_text('[project]\nname = "bench"\n')
    ws = open_workspace(folder)
    names = [f"metric_{k}" for k in range(metrics)]
    started = time.perf_counter()
    if points:
        with active_run.start_run(workspace=ws) as run:
            for step in range(points):
                run.log_metric("loss", 0.5, step)
    else:
        for index in range(runs):
            with active_run.start_run(workspace=ws, params=params_for(index)) as run:
                for step in range(steps):
                    run.log_metrics(dict.fromkeys(names, step / 100), step)
    return _stored(ws, started, time.perf_counter() - started)


def _stored(ws: Any, started: float, looped: float) -> dict[str, Any]:
    with ws.catalog.session() as con:  # loads whatever is still in the spool
        stored = time.perf_counter() - started
        [(count,)] = con.execute("SELECT count(*) FROM runs WHERE status = 'finished'"
                                 ).fetchall()
        [(total,)] = con.execute("SELECT count(*) FROM metrics").fetchall()
    return {"loop_s": looped, "stored_s": stored, "runs": count, "points": total}


def run_trackio(folder: Path, runs: int, steps: int, metrics: int, points: int
                ) -> dict[str, Any]:
    os.environ["TRACKIO_DIR"] = str(folder)
    import trackio

    names = [f"metric_{k}" for k in range(metrics)]
    started = time.perf_counter()
    if points:
        trackio.init(project="bench", name="points")
        for step in range(points):
            trackio.log({"loss": 0.5}, step=step)
        trackio.finish()
    else:
        for index in range(runs):
            trackio.init(project="bench", name=f"run-{index}", config=params_for(index))
            for step in range(steps):
                trackio.log(dict.fromkeys(names, step / 100), step=step)
            trackio.finish()
    stored = time.perf_counter() - started
    [database] = list(folder.glob("*.db"))
    with sqlite3.connect(database) as db:  # a row per `log` call, its metrics as JSON
        calls = db.execute("SELECT count(*) FROM metrics").fetchone()[0]
    return {"loop_s": stored, "stored_s": stored, "runs": runs,
            "points": calls * max(metrics, 1) if not points else calls}


def run_mlflow(folder: Path, runs: int, steps: int, metrics: int, points: int
               ) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    names = [f"metric_{k}" for k in range(metrics)]
    started = time.perf_counter()
    if points:
        with mlflow.start_run():
            for step in range(points):
                mlflow.log_metric("loss", 0.5, step=step)
    else:
        for index in range(runs):
            with mlflow.start_run():
                mlflow.log_params(params_for(index))
                for step in range(steps):
                    mlflow.log_metrics(dict.fromkeys(names, step / 100), step=step)
    stored = time.perf_counter() - started
    with sqlite3.connect(folder / "mlflow.db") as db:
        count = db.execute("SELECT count(*) FROM runs WHERE status = 'FINISHED'").fetchone()[0]
        logged = db.execute("SELECT count(*) FROM metrics").fetchone()[0]
    return {"loop_s": stored, "stored_s": stored, "runs": count, "points": logged}


def worker(tool: str, workload: str) -> None:
    runs, steps, metrics, points = WORKLOADS[workload]
    if tool == "mlflow":
        scale = MLFLOW_SCALE[workload]
        runs, points = max(1, runs // scale), points // scale
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as folder:
        measure = {"mlyard": run_mlyard, "mlyard-workspace": run_mlyard_workspace,
                   "trackio": run_trackio, "mlflow": run_mlflow}[tool]
        with contextlib.redirect_stdout(sys.stderr):  # the tools' chatter
            result = measure(Path(folder), runs, steps, metrics, points)
    expected_points = points or runs * steps * metrics
    if result["runs"] != runs and not points or result["points"] not in (None, expected_points):
        raise SystemExit(f"{tool} {workload}: stored {result}, expected {runs} runs and "
                         f"{expected_points} points")
    result.update(tool=tool, workload=workload, created=runs, logged=expected_points)
    print(json.dumps(result))


def measure(tool: str, workload: str) -> dict[str, Any] | None:
    python = sys.executable if tool.startswith("mlyard") else str(VENVS[tool] / "bin" / "python")
    if not Path(python).exists():
        return None
    done = subprocess.run([python, "-m", "bench.bench_runs", "worker", tool, workload],
                          cwd=BENCH.parent, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(BENCH.parent)})
    if done.returncode != 0:
        raise SystemExit(f"{tool} {workload} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    for tool in VENVS:
        if not (VENVS[tool] / "bin" / "python").exists():
            print(f"{tool}: skipped ({VENVS[tool]} not found; see this script's docstring)")
    rows = []
    for workload in WORKLOADS:
        for tool in TOOLS:
            result = measure(tool, workload)
            if result is None:
                continue
            unit = "points" if workload == "points" else "runs"
            rate = (result["logged"] if unit == "points" else result["created"]) / \
                result["stored_s"]
            rows.append({"workload": workload, "tool": LABELS.get(tool, tool),
                         f"{unit}_per_s": round(rate, 1),
                         "stored_s": round(result["stored_s"], 3),
                         "loop_s": round(result["loop_s"], 3), "created": result["created"],
                         "points": result["logged"]})
            print(json.dumps(rows[-1]), flush=True)


def rounds(workload: str = "readme", count: int = 5) -> None:
    """`python -m bench.bench_runs rounds`: the README's loop, every tool in turn in each
    round, so a machine whose speed wanders favours none; the medians and the ratio."""
    rates: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    for _ in range(count):
        for tool in TOOLS:
            result = measure(tool, workload)
            if result is not None:
                rates[tool].append(round(result["created"] / result["stored_s"], 1))
    for tool, found in rates.items():
        if found:
            print(json.dumps({"tool": LABELS.get(tool, tool), "runs_per_s": found,
                              "median": statistics.median(found)}))
    if rates["trackio"]:
        ratios = [a / b for a, b in zip(rates["mlyard"], rates["trackio"], strict=True)]
        print(json.dumps({"mlyard_over_trackio": [round(r, 2) for r in ratios],
                          "median": round(statistics.median(ratios), 2)}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["rounds"]:
        rounds()
    else:
        main()
