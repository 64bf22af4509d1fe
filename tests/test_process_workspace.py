"""`mlyard.start_run()` as the README shows it opens the project's workspace once per
process, and opens it again when it should: in another project's folder, after the
config file changes, under another MLYARD_WORKSPACE, and in a forked child."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mlyard
from mlyard.core.workspace import project_workspace


def project(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "mlyard.toml").write_text(f'[project]\nname = "{name}"\n')
    return folder


def names_in(folder: Path) -> list[str]:
    ws = mlyard.open_workspace(folder)
    return sorted(run.name or "" for run in __import__(
        "mlyard.core.tracking.run_queries", fromlist=["list_runs"]).list_runs(ws))


def test_one_workspace_per_project_and_process_and_a_new_one_when_things_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = project(tmp_path / "a", "alpha"), project(tmp_path / "b", "beta")
    monkeypatch.chdir(first)
    opened = project_workspace()
    assert project_workspace() is opened  # once per process
    with mlyard.start_run(name="in a"):
        mlyard.log_metric("loss", 0.5)
    monkeypatch.chdir(second)
    assert project_workspace() is not opened and project_workspace().project == "beta"
    with mlyard.start_run(name="in b"):
        mlyard.log_metric("loss", 0.4)
    assert names_in(first) == ["in a"] and names_in(second) == ["in b"]

    config = second / "mlyard.toml"
    before = project_workspace()
    config.write_text('[project]\nname = "beta-renamed"\n')
    os.utime(config, ns=(0, os.stat(config).st_mtime_ns + 10**9))
    assert project_workspace() is not before and project_workspace().project == "beta-renamed"

    monkeypatch.setenv("MLYARD_WORKSPACE", str(tmp_path / "elsewhere"))
    assert project_workspace().root == (tmp_path / "elsewhere").resolve()


def test_a_forked_child_opens_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project(tmp_path / "a", "alpha"))
    parent = project_workspace()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a workspace of its own, and a run recorded through it
        try:
            with mlyard.start_run(name="from the child"):
                mlyard.log_metric("loss", 0.1)
            os.write(write, json.dumps(project_workspace() is not parent).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert status == 0 and json.loads(os.read(read, 100)) is True
    assert names_in(tmp_path / "a") == ["from the child"]


def test_a_fork_while_another_thread_is_in_a_unit_of_work_leaves_that_unit_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine is closed before a fork only when no cursor of it is in use: closing it
    mid-unit would end the other thread's work with "Connection already closed"."""
    import threading

    monkeypatch.chdir(project(tmp_path / "a", "alpha"))
    ws = project_workspace()
    inside, forked = threading.Event(), threading.Event()
    seen: list[object] = []

    def unit() -> None:
        try:
            with ws.catalog.session() as con:
                inside.set()
                forked.wait(60)
                seen.append(con.execute("SELECT count(*) FROM runs").fetchone())
        except Exception as exc:  # noqa: BLE001 - what the assertion below reports
            seen.append(exc)

    worker = threading.Thread(target=unit)
    worker.start()
    assert inside.wait(60)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    forked.set()
    worker.join(60)
    assert seen == [(0,)]
