"""Many processes share one catalog: writers never see lock errors and lose nothing;
a process killed mid-run shows as crashed with what it flushed."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

import pytest

from mlyard.core.tracking import run_queries
from mlyard.core.workspace import open_workspace
from mlyard.storage.runs_store import count_metric_points
from tests.conftest import python_process, wait_for

WRITER = textwrap.dedent("""
    import sys, time
    from mlyard.core.tracking import active_run
    with active_run.start_run(name=sys.argv[1], flush_interval=0.2) as run:
        for i in range(5000):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
            if i % 250 == 0:
                time.sleep(0.05)
    print(run.run_id, run._buffer.spooled_segments)
""")

READER = textwrap.dedent("""
    import os, time
    from mlyard.core.tracking import run_queries
    from mlyard.core.workspace import open_workspace
    ws = open_workspace()
    reads = 0
    while not os.path.exists("writers.done"):
        run_queries.list_runs(ws)
        reads += 1
    print(reads)
""")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mlyard.toml").write_text('[project]\nname = "race"\n')
    monkeypatch.chdir(tmp_path)
    open_workspace()  # create the catalog before the race starts
    return tmp_path


def test_four_writers_and_a_reader_lose_nothing(project: Path) -> None:
    reader = python_process(READER, project)
    writers = [python_process(WRITER, project, f"writer-{index}") for index in range(4)]
    outputs = [writer.communicate(timeout=180) for writer in writers]
    (project / "writers.done").touch()
    reader_out, reader_err = reader.communicate(timeout=60)

    for writer, (_out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert "locked" not in err.lower()
    assert reader.returncode == 0, reader_err
    assert int(reader_out.strip()) > 0
    ws = open_workspace()
    found = run_queries.list_runs(ws)
    assert len(found) == 4 and {r.status for r in found} == {"finished"}
    with ws.catalog.session() as con:
        assert count_metric_points(con) == 20_000
        for run in found:
            assert count_metric_points(con, run.run_id) == 5_000
    assert {r.metrics["loss"] for r in found} == {1.0 / 5000}
    assert not list((ws.root / "spool").glob("*.arrow"))


CRASHER = textwrap.dedent("""
    import time
    from mlyard.core.tracking import active_run
    run = active_run.start_run(name="doomed", flush_interval=0.1)
    for i in range(1000):
        run.log_metric("loss", float(i), step=i)
    run.flush()
    print(run.run_id, flush=True)
    i = 1000
    while True:
        run.log_metric("loss", float(i), step=i)
        i += 1
        time.sleep(0.001)
""")


def test_killed_run_shows_as_crashed_with_its_flushed_metrics(project: Path) -> None:
    child = python_process(CRASHER, project)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read() if child.stderr else ""
    wait_for(lambda: run_queries.show_run(open_workspace(), run_id).metric_points.get("loss", 0)
             >= 1000, what="1,000 points flushed")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.stderr is not None
    child.stderr.close()

    ws = open_workspace()
    detail = run_queries.show_run(ws, run_id)
    assert detail.run.status == "crashed"
    assert not list(ws.catalog.outcomes_dir.glob("*"))  # its reserved block released
    assert detail.metric_points["loss"] >= 1000
    history = run_queries.metric_history(ws, run_id, "loss")
    assert [step for step, _, _ in history[:1000]] == list(range(1000))
    assert detail.run.end_time is not None
    listed = json.loads(json.dumps([r.status for r in run_queries.list_runs(ws)]))
    assert listed == ["crashed"]


def test_a_run_whose_pid_was_reused_by_a_later_process_shows_as_crashed(project: Path,
                                                                         ) -> None:
    import subprocess

    from mlyard.core.tracking import active_run

    older = subprocess.Popen(["sleep", "60"])
    ws = open_workspace()
    run = active_run.start_run(name="reused", workspace=ws)
    run.flush()  # stored, as a run is within START_DELAY of its start
    run._buffer.stop()  # as if this process had died: nothing more is written for it
    active_run._active.remove(run)
    later = subprocess.Popen(["sleep", "60"])
    try:
        wait_for(lambda: Path(f"/proc/{later.pid}/stat").exists())
        with ws.catalog.session() as con:  # the run's pid is a live process older than it
            con.execute("UPDATE runs SET pid = ? WHERE run_id = ?", [older.pid, run.run_id])
        assert run_queries.show_run(ws, run.run_id).run.status == "running"
        with ws.catalog.session() as con:  # ... now one that started after it (by more
            # than the tolerance for clock ticks: the run is dated back a few seconds)
            con.execute("UPDATE runs SET pid = ?, start_time = start_time - 5 "
                        "WHERE run_id = ?", [later.pid, run.run_id])
        assert run_queries.show_run(ws, run.run_id).run.status == "crashed"
    finally:
        for process in (older, later):
            process.kill()
            process.wait()
