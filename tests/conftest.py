"""Shared fixtures: real projects in temp folders, real DuckDB files, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner, Result

from mlyard.core.cli.main import cli

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CHURN = REPO / "sample_data" / "churn"
GOOD_ROWS = 300


# Modules that start real servers, daemons, sshd, a browser, a Dask cluster or PoCL, or
# run whole loops: `make test` runs them, `make test-fast` leaves them out.
SLOW_MODULES = {
    "test_bundle", "test_concurrency", "test_daemon", "test_dask", "test_decisions",
    "test_doctor", "test_gpu", "test_late_labels", "test_packaging", "test_readme_tour",
    "test_serve", "test_serve_hardening", "test_shadow", "test_sync", "test_tui",
    "test_tui_visible", "test_tui_web", "test_tune", "test_user_text", "test_watch",
    "test_one_csv_reader", "test_one_parsing_path", "test_explain", "test_prediction_log",
    "test_single_row", "test_cli_tables", "test_alerts", "test_drift_reliability",
    "test_sync_stranger", "test_alert_receivers", "test_serve_detach", "test_odd_entries",
}
FAST = bool(os.environ.get("MLYARD_TEST_FAST"))


def examples(full: int) -> int:
    """Hypothesis examples per property: all of them in `make test`, a quarter in
    `make test-fast` (the loop a person waits on)."""
    return max(5, full // 4) if FAST else full


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """`make test-fast` does not even import the slow modules (Textual, Dask, the browser
    tests' helpers): seconds of every run of the loop."""
    return True if FAST and collection_path.stem in SLOW_MODULES else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read a real workspace from the environment."""
    monkeypatch.delenv("MLYARD_WORKSPACE", raising=False)
    monkeypatch.delenv("MLYARD_LOCK_TIMEOUT", raising=False)


@pytest.fixture
def churn_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project with the sample churn contract and an empty data folder, as cwd."""
    project = tmp_path / "churn"
    (project / "data").mkdir(parents=True)
    shutil.copy(SAMPLE_CHURN / "mlyard.toml", project / "mlyard.toml")
    monkeypatch.chdir(project)
    yield project


@pytest.fixture
def good_csv() -> str:
    """The first rows of the first sample batch: a file that meets the contract."""
    lines = (SAMPLE_CHURN / "data" / "churn_2026_01.csv").read_text().splitlines()
    return "\n".join(lines[: GOOD_ROWS + 1]) + "\n"


SAMPLES = REPO / "sample_data"


def sample_project(tmp_path: Path, name: str, batches: int = 2) -> Path:
    """A copy of a sample project with its first batches ingested, as cwd."""
    project = tmp_path / name
    (project / "data").mkdir(parents=True)
    shutil.copy(SAMPLES / name / "mlyard.toml", project / "mlyard.toml")
    for path in sorted((SAMPLES / name / "data").glob("*.csv"))[:batches]:
        shutil.copy(path, project / "data" / path.name)
    return project


@pytest.fixture
def churn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = sample_project(tmp_path, "churn")
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    return project


def train_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = mlyard("train", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def mlyard(*args: str) -> Result:
    """Run the CLI in-process, with stdout and stderr kept apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def mlyard_process(*args: str, cwd: Path, env: dict[str, str] | None = None,
                   ) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a separate process, as a user or cron would."""
    return subprocess.run(
        [sys.executable, "-m", "mlyard", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=120,
    )


def python_process(code: str, cwd: Path, *args: str, env: dict[str, str] | None = None,
                   ) -> subprocess.Popen[str]:
    """Start a Python child process running `code` in `cwd`, with `args` as sys.argv[1:]."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (for servers a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll until `condition()` is truthy and return it; the deadline is generous because
    a busy 2-core machine can be several times slower than an idle one."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout:.0f} s: {what or condition}")
        time.sleep(0.05)


async def wait_until(pilot: Any, condition: Callable[[], Any], timeout: float = 60.0,
                     what: str = "") -> Any:
    """wait_for inside a Textual test: the app runs on while the pilot pauses between
    tries."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout:.0f} s: {what or condition}")
        await pilot.pause(0.05)


def levels_project(root: Path) -> Path:
    """A multiclass target with text labels, a category feature and some missing values."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 2))
    shop = rng.choice(["north", "south", "east"], size=2000)
    score = x[:, 0] + x[:, 1] + (shop == "north") * 0.8
    labels = np.array(["low", "mid", "high"])[np.digitize(score, [-0.7, 0.7])]
    missing = rng.random(2000) < 0.05
    a = pl.Series("a", x[:, 0]).scatter(np.flatnonzero(missing), None)
    project = root / "levels"
    project.mkdir()
    pl.DataFrame({"a": a, "b": x[:, 1], "shop": shop, "level": labels}) \
        .write_csv(project / "levels.csv")
    return project
