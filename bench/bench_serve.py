"""Scoring server throughput and latency, against the in-process floor and MLflow.

    .venv/bin/python -m bench.bench_serve [--interleaved]

A 100-tree LightGBM model on the churn sample. `mlyard serve` runs as its own process on
127.0.0.1 (with and without its prediction log); Debian's `wrk` (compiled, so the client
is not the limit) posts single-row and 100-row `dataframe_records` bodies at
concurrency 1 and 8 for 5 s each. Reported:
requests/s, rows/s, p50/p95/p99, errors, wrk's CPU seconds, the server's RSS, and the
cold start to the first answered /ping. MLflow's server is measured the same way when
`bench/.mlflow-venv/bin/mlflow` exists (create it with
`python3 -m venv bench/.mlflow-venv && bench/.mlflow-venv/bin/pip install mlflow lightgbm`);
otherwise the script says it skipped it. Last, the target ratios again, interleaved:
mlyard with and without its log and the floor side by side, loaded in turn for ROUNDS
rounds (see `interleaved`): on a shared machine whose speed wanders, one pass per server
can put one server in a slow minute and another in a fast one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import psutil

from mlyard.core.data import versions
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.models.loading import load_model
from mlyard.core.workspace import open_workspace

HERE = Path(__file__).parent
OUT = HERE / "out" / "serve"
REPO = HERE.parent
DURATION = "5s"


def build_project() -> Path:
    project = OUT / "project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "data").mkdir(parents=True)
    config = (REPO / "sample_data" / "churn" / "mlyard.toml").read_text()
    config = config.replace("[train]\n", "[train]\nnum_boost_round = 100\n"
                            "early_stopping_rounds = 1000\n")
    (project / "mlyard.toml").write_text(config)
    for path in sorted((REPO / "sample_data" / "churn" / "data").glob("*.csv")):
        shutil.copy(path, project / "data" / path.name)
    for args in (["ingest", "data"], ["train", "-q"], ["models", "promote", "latest"]):
        subprocess.run([sys.executable, "-m", "mlyard", *args], cwd=project, check=True,
                       capture_output=True)
    return project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], cwd: Path, url: str) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    # MLflow starts uvicorn by name, so its venv's bin must come first on PATH.
    path = f"{Path(command[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "PATH": path})
    while True:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode}")
        time.sleep(0.02)


def load(url: str, body: Path, connections: int, rows: int, delay_ms: int | None = None,
         duration: str = DURATION) -> dict[str, float]:
    """wrk against `url`: as fast as it answers, or with `delay_ms` between each
    connection's requests (a steady load below saturation)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    paced = {"WRK_DELAY_MS": str(delay_ms)} if delay_ms is not None else {}
    result = subprocess.run(
        ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}",
         "-s", str(HERE / "bench_serve.lua"), f"{url}/invocations"],
        capture_output=True, text=True, env={**os.environ, "WRK_BODY": str(body), **paced},
        check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    per_s = figures["requests"] / figures["seconds"]
    return {"requests_per_s": round(per_s), "rows_per_s": round(per_s * rows),
            "p50_ms": round(figures["p50_ms"], 2), "p95_ms": round(figures["p95_ms"], 2),
            "p99_ms": round(figures["p99_ms"], 2), "errors": figures["errors"],
            "client_cpu_s": round((after.ru_utime + after.ru_stime)
                                  - (before.ru_utime + before.ru_stime), 2)}


CELLS = [(1, 1), (1, 8), (100, 1), (100, 8)]  # (rows per body, connections)


def measure_server(name: str, command: list[str], cwd: Path, url: str,
                   bodies: dict[int, Path], cells: list[tuple[int, int]] = CELLS,
                   busy: bool = False) -> dict[str, object]:
    """Start a server, load it cell by cell, stop it. With `busy`, a process burning one
    core runs beside it (what a shared machine does to a server)."""
    process, cold = start(command, cwd, url)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        figures: dict[str, object] = {"cold_start_s": round(cold, 2)}
        for rows, connections in cells:
            figures[f"{rows}_rows_c{connections}"] = load(url, bodies[rows], connections, rows)
        figures["server_rss_mb"] = round(psutil.Process(process.pid).memory_info().rss / 2**20)
        return {name: figures}
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
        process.terminate()
        process.wait(timeout=30)


def in_process_floor(project: Path) -> dict[str, float]:
    model = load_model(open_workspace(project), "champion")
    row = encode(versions.load_versions(open_workspace(project)).head(1), model.spec)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < 2.0:
        model.booster.predict(row)
        calls += 1
    return {"booster_predict_single_row_calls_per_s": round(calls / 2.0)}


def main() -> None:
    only_interleaved = "--interleaved" in sys.argv[1:]  # the target ratios alone
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    project = build_project()
    frame = versions.load_versions(open_workspace(project))
    spec = load_model(open_workspace(project), "champion").spec
    bodies = {}
    for rows in (1, 100):
        body = OUT / f"body_{rows}.json"
        records = frame.head(rows).select(spec.names).to_dicts()
        body.write_text(json.dumps({"dataframe_records": records}))
        bodies[rows] = body
    if only_interleaved:
        print(json.dumps({"benchmark": "serve", **interleaved(project, bodies)}))
        return
    results: dict[str, object] = {"benchmark": "serve", **in_process_floor(project)}
    if importlib.util.find_spec("sklearn") is not None:
        # lightgbm imports scikit-learn whenever it is installed (the dask extra brings it)
        results["note"] = ("scikit-learn is installed: every server imports it (~65 MB, "
                           "~0.4 s); the recorded figures are from an install without it")
    port = free_port()
    results.update(measure_server(
        "mlyard", [sys.executable, "-m", "mlyard", "serve", "churn@champion", "--port",
                   str(port)], project, f"http://127.0.0.1:{port}", bodies))
    port = free_port()
    results.update(measure_server(
        "mlyard_without_prediction_log",
        [sys.executable, "-m", "mlyard", "serve", "churn@champion", "--port", str(port),
         "--no-log"], project, f"http://127.0.0.1:{port}", bodies))
    port = free_port()
    results.update(measure_server(
        "mlyard_workers_2", [sys.executable, "-m", "mlyard", "serve", "churn@champion",
                             "--port", str(port), "--workers", "2"],
        project, f"http://127.0.0.1:{port}", bodies, cells=[(1, 8)]))
    port = free_port()
    results.update(measure_server(
        "mlyard_one_core_busy", [sys.executable, "-m", "mlyard", "serve", "churn@champion",
                                 "--port", str(port)],
        project, f"http://127.0.0.1:{port}", bodies, cells=[(1, 8), (100, 8)], busy=True))
    results.update(measure_bare(project, bodies))
    results.update(measure_bare(project, bodies, busy=True))
    floor = results["bare_predict_app"]
    for name in ("mlyard", "mlyard_without_prediction_log"):
        results[f"{name}_vs_bare"] = {
            key: round(results[name][key]["requests_per_s"]  # type: ignore[index]
                       / floor[key]["requests_per_s"], 2)  # type: ignore[index]
            for key in floor if key.endswith(("_c1", "_c8"))}  # type: ignore[union-attr]
    idle = results["mlyard"]
    busy = results["mlyard_one_core_busy"]
    results["mlyard_one_core_busy_vs_idle"] = {
        key: round(busy[key]["requests_per_s"] / idle[key]["requests_per_s"], 2)  # type: ignore[index]
        for key in busy if key.endswith("_c8")}  # type: ignore[union-attr]
    mlflow = HERE / ".mlflow-venv" / "bin" / "mlflow"
    if mlflow.exists():
        results.update(measure_mlflow(project, mlflow, frame, spec))
        for name in ("mlflow", "mlflow_with_signature"):
            results[f"mlyard_vs_{name}"] = {
                key: round(idle[key]["requests_per_s"]  # type: ignore[index]
                           / results[name][key]["requests_per_s"], 2)  # type: ignore[index]
                for key in idle if key.endswith(("_c1", "_c8"))}  # type: ignore[union-attr]
    else:
        results["mlflow"] = f"skipped: {mlflow} not found (see this script's docstring)"
    results.update(interleaved(project, bodies))
    results["uvloop"] = importlib.util.find_spec("uvloop") is not None
    print(json.dumps(results))


ROUNDS = 5  # interleaved rounds; the median of each cell is reported


def interleaved(project: Path, bodies: dict[int, Path]) -> dict[str, object]:
    """The ratios the targets are about, measured so that a machine whose speed wanders
    (other tenants, turbo) cannot favour one server: mlyard with and without its log and
    the floor run side by side, and each round loads every one of them in turn (the order
    rotating), cell by cell; each figure is the median of ROUNDS rounds, each ratio the
    median of the per-round ratios."""
    ports = {name: free_port() for name in ("mlyard", "mlyard_no_log", "floor", "raw_floor",
                                             "http_only")}
    raw = ["--http", "httptools", "--loop", "uvloop", "--log-level", "warning"]
    commands = {
        "mlyard": [sys.executable, "-m", "mlyard", "serve", "churn@champion", "--port",
                   str(ports["mlyard"])],
        "mlyard_no_log": [sys.executable, "-m", "mlyard", "serve", "churn@champion",
                          "--port", str(ports["mlyard_no_log"]), "--no-log"],
        "floor": [sys.executable, "-m", "uvicorn", "bench.bare_predict_app:app", "--port",
                  str(ports["floor"]), "--log-level", "warning"],
        # The raw floors (issue 34): no framework, LightGBM's single-row fast predict; and
        # HTTP alone, answering a constant.
        "raw_floor": [sys.executable, "-m", "uvicorn", "bench.raw_floor_app:app", "--port",
                      str(ports["raw_floor"]), *raw],
        "http_only": [sys.executable, "-m", "uvicorn", "bench.raw_floor_app:http_only",
                      "--port", str(ports["http_only"]), *raw]}
    processes = []
    with bare_environment(project):
        try:
            for name, command in commands.items():
                processes.append(start(command, project if name.startswith("mlyard")
                                       else REPO,
                                       f"http://127.0.0.1:{ports[name]}")[0])
            rounds: dict[str, dict[str, list[dict[str, float]]]] = {n: {} for n in commands}
            for index in range(ROUNDS):
                names = list(commands)
                names = names[index % len(names):] + names[:index % len(names)]
                for rows, connections in ((1, 8), (100, 8)):
                    for name in names:
                        rounds[name].setdefault(f"{rows}_rows_c{connections}", []).append(
                            load(f"http://127.0.0.1:{ports[name]}", bodies[rows], connections,
                                 rows))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    result: dict[str, object] = {"rounds": ROUNDS}
    for name, cells in rounds.items():
        result[name] = {cell: {key: statistics.median(r[key] for r in runs)
                               for key in ("requests_per_s", "p50_ms", "p99_ms")}
                        for cell, runs in cells.items()}
    for cell in rounds["floor"]:
        floor = rounds["floor"][cell]
        result[f"{cell}_ratios"] = {
            "mlyard_vs_floor": _median_ratio(rounds["mlyard"][cell], floor, "requests_per_s"),
            "no_log_vs_floor": _median_ratio(rounds["mlyard_no_log"][cell], floor,
                                             "requests_per_s"),
            "log_vs_no_log": _median_ratio(rounds["mlyard"][cell], rounds["mlyard_no_log"][cell],
                                           "requests_per_s"),
            "p99_mlyard_vs_floor": _median_ratio(rounds["mlyard"][cell], floor, "p99_ms"),
            "mlyard_vs_raw_floor": _median_ratio(rounds["mlyard"][cell],
                                                 rounds["raw_floor"][cell], "requests_per_s"),
            "p99_mlyard_vs_raw_floor": _median_ratio(rounds["mlyard"][cell],
                                                     rounds["raw_floor"][cell], "p99_ms"),
            "raw_floor_vs_http_only": _median_ratio(rounds["raw_floor"][cell],
                                                    rounds["http_only"][cell],
                                                    "requests_per_s")}
    return {"interleaved": result}


def _median_ratio(ours: list[dict[str, float]], theirs: list[dict[str, float]],
                  key: str) -> float:
    return round(statistics.median(a[key] / b[key] for a, b in zip(ours, theirs, strict=True)),
                 2)


@contextlib.contextmanager
def bare_environment(project: Path) -> Iterator[None]:
    """bench/bare_predict_app.py reads its model and spec from the environment, which
    start() passes on to it."""
    model = load_model(open_workspace(project), "champion")
    spec_file = OUT / "bare_spec.json"
    spec_file.write_text(json.dumps(model.spec.to_json()))
    os.environ.update({"BARE_SPEC": str(spec_file), "BARE_MODEL": str(
        open_workspace(project).objects.path_for(model.version.model_hash))})
    try:
        yield
    finally:
        for key in ("BARE_SPEC", "BARE_MODEL"):
            os.environ.pop(key, None)


def measure_bare(project: Path, bodies: dict[int, Path], busy: bool = False
                 ) -> dict[str, object]:
    """bench/bare_predict_app.py on the same model and bodies: the floor."""
    port = free_port()
    with bare_environment(project):
        return measure_server("bare_predict_app_one_core_busy" if busy else "bare_predict_app",
                              [sys.executable, "-m", "uvicorn", "bench.bare_predict_app:app",
                               "--port", str(port), "--log-level", "warning"],
                              REPO, f"http://127.0.0.1:{port}", bodies,
                              cells=[(1, 8), (100, 8)] if busy else CELLS, busy=busy)


def measure_mlflow(project: Path, mlflow: Path, frame: pl.DataFrame,
                   spec: FeatureSpec) -> dict[str, object]:
    """The same model and rows through `mlflow models serve --env-manager local`, saved
    without and with a signature (which makes the server check every request's columns
    and types, as MLflow's documentation recommends).

    MLflow's LightGBM flavour takes the booster's numeric inputs, so its bodies carry the
    category codes mlyard would compute; the rows and the model are the same.
    """
    model = load_model(open_workspace(project), "champion")
    bodies = {}
    for rows in (1, 100):
        encoded = encode(frame.head(rows), spec)
        body = OUT / f"mlflow_body_{rows}.json"
        body.write_text(json.dumps({"dataframe_records": [
            dict(zip(spec.names, map(_finite, row), strict=True)) for row in encoded.tolist()]}))
        bodies[rows] = body
    results: dict[str, object] = {}
    for name, extra in (("mlflow", []), ("mlflow_with_signature", [str(bodies[100])])):
        saved = OUT / f"{name}-model"
        shutil.rmtree(saved, ignore_errors=True)
        subprocess.run([str(mlflow.parent / "python"), str(HERE / "mlflow_save.py"),
                        str(open_workspace(project).objects.path_for(model.version.model_hash)),
                        str(saved), *extra], check=True, capture_output=True)
        port = free_port()
        results.update(measure_server(
            name, [str(mlflow), "models", "serve", "-m", str(saved), "--env-manager", "local",
                   "-h", "127.0.0.1", "-p", str(port)], OUT, f"http://127.0.0.1:{port}",
            bodies))
    return results


def _finite(value: float) -> float | None:
    return None if value != value else value


if __name__ == "__main__":
    main()
