"""Schedules and the daemon: a real `mlyard daemon` process with APScheduler inside,
real child processes for each pipeline, signals sent as a service manager would."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlyard.core.automation import jobs
from mlyard.core.workspace import open_workspace
from mlyard.storage import automation_store
from tests.conftest import mlyard, mlyard_process, wait_for

FAST_TRAIN = "[train]\nnum_boost_round = 20\nearly_stopping_rounds = 1000\n"
SLOW_TRAIN = ("[train]\nnum_boost_round = 1000000\nearly_stopping_rounds = 1000000\n"
              "params = { learning_rate = 0.0001 }\n")


def configure(project: Path, train: str, extra: str) -> None:
    config = project / "mlyard.toml"
    text = config.read_text().replace("[train]\n", train, 1)
    config.write_text(text + "\n" + extra)


@pytest.fixture
def project(churn: Path) -> Path:
    """Two sample batches ingested, as cwd."""
    return churn


@pytest.fixture
def start_daemon(project: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (project / "daemon.stderr").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "mlyard", "daemon"], cwd=project,
                                   stdout=log, stderr=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def job_list(project: Path) -> list[dict[str, Any]]:
    result = mlyard_process("jobs", "list", "-n", "200", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_list(project: Path) -> list[dict[str, Any]]:
    result = mlyard_process("runs", "list", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


def status(project: Path) -> dict[str, Any]:
    result = mlyard_process("status", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def test_a_schedule_fires_and_pausing_it_from_another_process_stops_it(
        project: Path, start_daemon: Callable[[], subprocess.Popen[bytes]]) -> None:
    configure(project, FAST_TRAIN, '[[schedule]]\nname = "quick"\nevery = "2s"\n')
    daemon = start_daemon()
    trains = lambda: [j for j in job_list(project)  # noqa: E731
                      if j["step"] == "train" and j["trigger"] == "schedule:quick"]
    wait_for(lambda: len([j for j in trains() if j["status"] == "succeeded"]) >= 2)
    state = status(project)
    assert state["daemon"]["running"] is True  # even if trainings made a heartbeat late
    # the next fire of a 2 s interval, as of the last heartbeat
    beat = state["daemon"]["record"]["heartbeat"]
    assert -1 <= state["daemon"]["detail"]["schedules"]["quick"] - beat <= 3
    assert state["schedules"][0]["last_fire"] is not None

    assert mlyard("schedule", "pause", "quick").exit_code == 0
    # The daemon notices at its next heartbeat; a pipeline fired just before that runs to
    # its end. Then, over three more heartbeats (more than two intervals), nothing fires.
    detail = lambda: status(project)["daemon"]["detail"]  # noqa: E731
    wait_for(lambda: detail()["schedules"].get("quick", 0) is None and not detail()["children"],
             what="the daemon sees the pause and its last pipeline ends")
    paused_count = len(trains())
    heartbeat = lambda: status(project)["daemon"]["record"]["heartbeat"]  # noqa: E731
    for _ in range(3):
        last = heartbeat()
        wait_for(lambda: heartbeat() > last)  # noqa: B023
    assert len(trains()) == paused_count
    assert mlyard("schedule", "resume", "quick").exit_code == 0
    wait_for(lambda: len(trains()) > paused_count)

    assert stop(daemon) == 0
    assert status(project)["daemon"]["running"] is False


def test_the_daemon_log_says_how_each_step_ended(
        project: Path, start_daemon: Callable[[], subprocess.Popen[bytes]]) -> None:
    """Not only that a retrain started: the version it trained, and the gate that stopped
    its promotion, one line each."""
    configure(project, FAST_TRAIN, '[[schedule]]\nname = "soon"\nevery = "2s"\n'
              'pipeline = "promote"\n')
    config = project / "mlyard.toml"
    config.write_text(config.read_text().replace("min_auc = 0.7", "min_auc = 0.9999", 1))
    daemon = start_daemon()
    log = project / ".mlyard" / "logs" / "daemon.log"
    wait_for(lambda: log.exists(), what="the daemon's log")
    wait_for(lambda: "promote failed" in log.read_text(), what="the promote step's end logged")
    lines = log.read_text().splitlines()
    trained = next(line for line in lines if "train succeeded: trained churn/" in line)
    assert "schedule:soon: job " in trained
    refused = next(line for line in lines if "promote failed" in line)
    assert "min_auc" in refused and "WARNING" in refused
    assert stop(daemon) == 0


def test_a_retrain_never_overlaps_another_whoever_triggers_it(
        project: Path, start_daemon: Callable[[], subprocess.Popen[bytes]]) -> None:
    configure(project, FAST_TRAIN, '[[schedule]]\nname = "busy"\nevery = "1s"\n')
    ws = open_workspace()
    with jobs.training_slot(ws, wait=False, who="a person in a notebook"):
        daemon = start_daemon()
        skipped = wait_for(lambda: [j for j in job_list(project)
                                    if j["step"] == "train" and j["status"] == "skipped"])
        assert "already training (a person in a notebook" in skipped[0]["error"]
    # Meanwhile a person runs `mlyard train` (it waits its turn) while the schedule fires.
    manual = [mlyard_process("train", "-q", cwd=project) for _ in range(2)]
    assert all(result.returncode == 0 for result in manual)
    wait_for(lambda: any(j["step"] == "train" and j["status"] == "succeeded"
                         for j in job_list(project)))
    assert stop(daemon) == 0
    runs = json.loads(mlyard_process("runs", "list", "--json", cwd=project).stdout)
    spans = sorted((r["start_time"], r["end_time"]) for r in runs if r["end_time"])
    assert len(spans) >= 3
    for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert next_start >= end, "two trainings of one project overlapped"


def test_sigterm_mid_training_marks_the_job_and_leaves_a_consistent_catalog(
        project: Path, start_daemon: Callable[[], subprocess.Popen[bytes]]) -> None:
    configure(project, SLOW_TRAIN, '[[schedule]]\nname = "slow"\nevery = "1s"\n')
    daemon = start_daemon()
    running = wait_for(lambda: [j for j in job_list(project)
                                if j["step"] == "train" and j["status"] == "running"
                                and j["run_id"] is None])
    wait_for(lambda: any(r["status"] == "running" and r["metrics"] for r in run_list(project)),
             what="the training logs its first iterations")
    assert stop(daemon) == 0
    after = {j["job_id"]: j for j in job_list(project)}
    job = after[running[0]["job_id"]]
    assert job["status"] == "failed" and "interrupted" in job["error"]
    assert not [j for j in after.values() if j["status"] == "running"]
    runs = json.loads(mlyard_process("runs", "list", "--json", cwd=project).stdout)
    assert runs and all(r["status"] != "running" for r in runs)
    with jobs.training_slot(open_workspace(), wait=False, who="test"):
        pass  # the slot was released
    assert status(project)["daemon"]["running"] is False
    assert mlyard_process("jobs", "show", str(job["job_id"]), cwd=project).returncode == 0


def test_a_crashed_training_is_marked_failed_and_the_next_start_goes_on(project: Path) -> None:
    configure(project, SLOW_TRAIN, "")
    child = subprocess.Popen([sys.executable, "-m", "mlyard", "pipeline", "run", "train",
                              "--no-ingest"], cwd=project, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for(lambda: [j for j in job_list(project) if j["status"] == "running"])
    wait_for(lambda: any(r["status"] == "running" for r in run_list(project)),
             what="the training run starts")
    child.send_signal(signal.SIGKILL)  # no chance to record anything
    child.wait()
    [job] = job_list(project)
    assert job["status"] == "failed" and f"pid {child.pid}" in job["error"]
    config = project / "mlyard.toml"
    config.write_text(config.read_text().replace(SLOW_TRAIN, FAST_TRAIN))
    result = mlyard_process("pipeline", "run", "train", "--no-ingest", cwd=project)
    assert result.returncode == 0, result.stderr
    assert job_list(project)[0]["status"] == "succeeded"


def test_a_missed_fire_runs_once_within_the_grace_time_and_is_skipped_beyond_it(
        project: Path, start_daemon: Callable[[], subprocess.Popen[bytes]]) -> None:
    configure(project, FAST_TRAIN,
              "[automation]\nmisfire_grace_seconds = 600\n\n"
              '[[schedule]]\nname = "recent"\nevery = "5m"\npipeline = "ingest"\n\n'
              '[[schedule]]\nname = "stale"\nevery = "30m"\npipeline = "ingest"\n')
    ws = open_workspace()
    assert mlyard("schedule", "list").exit_code == 0  # copies [[schedule]] into the catalog
    now = time.time()
    with ws.catalog.session() as con:
        # Down for 22 minutes: "recent" missed four fires, the last 2 minutes ago.
        automation_store.set_last_fire(con, ws.project, "recent", now - 22 * 60)
        # Down for 3h20m: even the last of the fires "stale" missed is 20 minutes late,
        # twice the grace time.
        automation_store.set_last_fire(con, ws.project, "stale", now - 3 * 3600 - 20 * 60)
    daemon = start_daemon()
    by_trigger = lambda trigger: [j for j in job_list(project)  # noqa: E731
                                  if j["trigger"] == trigger]
    wait_for(lambda: {j["status"] for j in by_trigger("schedule:recent")
                      + by_trigger("schedule:stale")} <= {"succeeded", "skipped", "failed"}
             and by_trigger("schedule:recent") and by_trigger("schedule:stale"))
    assert stop(daemon) == 0
    [recent] = by_trigger("schedule:recent")
    assert recent["status"] == "succeeded"
    [stale] = by_trigger("schedule:stale")
    assert stale["status"] == "skipped" and "misfire grace" in stale["error"]


def test_crontab_lines_run_headlessly_and_fail_with_a_recorded_log(project: Path) -> None:
    configure(project, FAST_TRAIN,
              '[[schedule]]\nname = "nightly"\ncron = "0 2 * * *"\npipeline = "train"\n\n'
              '[[schedule]]\nname = "strict"\ncron = "0 3 * * *"\npipeline = "promote"\n\n'
              '[[schedule]]\nname = "often"\nevery = "15m"\n')
    config = project / "mlyard.toml"
    config.write_text(config.read_text().replace("min_auc = 0.7", "min_auc = 0.999"))
    result = mlyard_process("schedule", "crontab", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = {line.split(" run-now ")[1].split()[0]: line for line in result.stdout.splitlines()
             if " run-now " in line and not line.startswith("#")}
    assert set(lines) == {"nightly", "strict"}
    assert "# often: every 15m has no crontab form" in result.stdout

    def run_from_cron(line: str) -> int:
        fields = line.split(None, 5)
        assert fields[:5] in (["0", "2", "*", "*", "*"], ["0", "3", "*", "*", "*"])
        command = fields[5].split(" >> ")[0]
        # cron's bare environment, from the root folder
        env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
        argv = shlex.split(command)
        assert Path(argv[0]).name == "mlyard"
        argv[0:1] = [sys.executable, "-m", "mlyard"]  # the same mlyard, this checkout
        return subprocess.run(argv, cwd="/", env=env, capture_output=True,
                              timeout=120).returncode

    assert run_from_cron(lines["nightly"]) == 0
    assert run_from_cron(lines["strict"]) == 1
    listed = job_list(project)
    assert {(j["trigger"], j["step"], j["status"]) for j in listed} >= {
        ("cron:nightly", "train", "succeeded"), ("cron:strict", "promote", "failed")}
    failed = next(j for j in listed if j["status"] == "failed")
    shown = mlyard_process("jobs", "show", str(failed["job_id"]), cwd=project)
    assert "gate min_auc failed" in shown.stdout


def test_schedule_commands_and_their_errors(project: Path) -> None:
    assert mlyard("schedule", "add", "weekly", "--cron", "0 3 * * 1").exit_code == 0
    assert mlyard("schedule", "add", "hourly", "--every", "1h", "--pipeline",
                  "ingest").exit_code == 0
    listed = json.loads(mlyard("schedule", "list", "--json").stdout)
    assert [(s["name"], s["pipeline"], s["every_seconds"]) for s in listed] == [
        ("hourly", "ingest", 3600.0), ("weekly", "train", None)]
    assert mlyard("schedule", "pause", "weekly").exit_code == 0
    listed = json.loads(mlyard("schedule", "list", "--json").stdout)
    assert listed[1]["paused"] is True and listed[1]["next_fire"] is None

    bad_cron = mlyard("schedule", "add", "bad", "--cron", "0 25 * * *")
    assert bad_cron.exit_code == 2 and "cron '0 25 * * *'" in bad_cron.stderr
    bad_every = mlyard("schedule", "add", "bad", "--every", "soon")
    assert bad_every.exit_code == 2 and "expected a number and a unit" in bad_every.stderr
    unknown = mlyard("schedule", "pause", "nope")
    assert unknown.exit_code == 1 and "known: hourly, weekly" in unknown.stderr
    assert mlyard("schedule", "remove", "hourly").exit_code == 0
    assert [s["name"] for s in json.loads(mlyard("schedule", "list", "--json").stdout)] == [
        "weekly"]

    config = project / "mlyard.toml"
    config.write_text(config.read_text() + '\n[[schedule]]\nname = "x"\ncron = "* * * * *"\n'
                      'every = "1m"\n')
    both = mlyard_process("schedule", "list", cwd=project)
    assert both.returncode == 1 and "set exactly one of `cron` or `every`" in both.stderr


def test_a_second_daemon_for_the_same_project_is_refused(
        project: Path, start_daemon: Callable[[], subprocess.Popen[bytes]]) -> None:
    first = start_daemon()
    wait_for(lambda: status(project)["daemon"]["running"])
    second = mlyard_process("daemon", cwd=project)
    assert second.returncode == 2 and "a daemon already runs" in second.stderr
    assert stop(first) == 0
