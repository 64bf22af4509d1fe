"""Watched folders on a real watchdog observer (inotify, and the polling observer)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlyard.core.automation import jobs
from mlyard.core.automation.watcher import Debouncer, FolderWatcher, is_candidate
from mlyard.core.data import versions
from mlyard.core.workspace import Workspace, open_workspace
from tests.conftest import SAMPLE_CHURN, wait_for

SETTLE = 0.6
SLOW_WRITER_GAP = 0.1
BATCH_1 = SAMPLE_CHURN / "data" / "churn_2026_01.csv"


def chunks(rows: int, parts: int) -> list[str]:
    """The first sample batch split into `parts` CSV texts of `rows` rows each."""
    header, *lines = BATCH_1.read_text().splitlines()
    return ["\n".join([header, *lines[i * rows:(i + 1) * rows]]) + "\n" for i in range(parts)]


@pytest.fixture
def incoming(churn_project: Path) -> Path:
    folder = churn_project / "data"
    return folder


@pytest.fixture
def ws(churn_project: Path) -> Workspace:
    return open_workspace()


@pytest.fixture(params=[False, True], ids=["inotify", "polling"])
def watcher(request: pytest.FixtureRequest, ws: Workspace,
            incoming: Path) -> Iterator[FolderWatcher]:
    started = FolderWatcher(ws, [incoming], polling=request.param, settle_seconds=SETTLE,
                            poll_interval=0.2)
    started.start()
    yield started
    started.stop()


def stored_versions(ws: Workspace) -> list[versions.VersionRecord]:
    return versions.list_versions(ws)


def quarantined(ws: Workspace) -> list[Path]:
    return [p for p in ws.quarantine_dir.glob("*") if not p.name.endswith(".reason.json")]


@pytest.fixture(params=[False, True], ids=["inotify", "polling"])
def patient_watcher(request: pytest.FixtureRequest, ws: Workspace,
                    incoming: Path) -> Iterator[FolderWatcher]:
    """A settle time twenty times the slow writer's gaps, so even a busy machine that
    stalls the writer does not make a half-written file look complete."""
    started = FolderWatcher(ws, [incoming], polling=request.param,
                            settle_seconds=SLOW_WRITER_GAP * 20, poll_interval=0.2)
    started.start()
    yield started
    started.stop()


def test_a_file_written_slowly_is_ingested_once_and_whole(patient_watcher: FolderWatcher,
                                                          ws: Workspace, incoming: Path) -> None:
    text = chunks(600, 1)[0]
    lines = text.splitlines(keepends=True)
    target = incoming / "slow.csv"
    with target.open("w") as handle:
        for start in range(0, len(lines), 100):  # 7 writes, each well inside the settle time
            handle.writelines(lines[start:start + 100])
            handle.flush()
            time.sleep(SLOW_WRITER_GAP)  # the slow writer's pace, not a synchronisation
    wait_for(lambda: len(stored_versions(ws)) == 1)
    time.sleep(SETTLE * 2)  # a quiet window: no second version from the later write events
    [version] = stored_versions(ws)
    assert version.rows == 600
    assert target.read_text() == text  # the user's file is untouched


def test_temporary_and_hidden_names_are_ignored_until_renamed(watcher: FolderWatcher,
                                                              ws: Workspace,
                                                              incoming: Path) -> None:
    first, second, third = chunks(100, 3)
    (incoming / "batch.csv.part").write_text(first)
    (incoming / ".hidden.csv").write_text(second)
    (incoming / "~lock.csv").write_text(third)
    (incoming / "upload.tmp").write_text(third)
    time.sleep(SETTLE * 3)  # a quiet window: nothing is ingested from these names
    assert stored_versions(ws) == []
    (incoming / "batch.csv.part").rename(incoming / "batch.csv")
    wait_for(lambda: len(stored_versions(ws)) == 1)
    assert Path(stored_versions(ws)[0].source_path).name == "batch.csv"


def test_the_same_bytes_twice_make_one_version(watcher: FolderWatcher, ws: Workspace,
                                               incoming: Path) -> None:
    text = chunks(100, 1)[0]
    (incoming / "a.csv").write_text(text)
    wait_for(lambda: len(stored_versions(ws)) == 1)
    (incoming / "copy-of-a.csv").write_text(text)
    wait_for(lambda: any(j.step == "ingest" and j.detail and "copy-of-a" in j.detail
                         for j in jobs.list_jobs(ws)))
    assert len(stored_versions(ws)) == 1


def test_a_bad_file_is_quarantined_while_good_ones_go_on(watcher: FolderWatcher,
                                                         ws: Workspace, incoming: Path) -> None:
    good_1, good_2 = chunks(100, 2)
    lines = good_1.splitlines()
    fields = lines[1].split(",")
    fields[2] = "weekly"  # tenure_months: not a whole number
    bad = "\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n"
    (incoming / "good-1.csv").write_text(good_1)
    (incoming / "bad.csv").write_text(bad)
    (incoming / "good-2.csv").write_text(good_2)
    wait_for(lambda: len(stored_versions(ws)) == 2)
    wait_for(lambda: any(p.name.endswith("bad.csv") for p in ws.quarantine_dir.glob("*")))
    assert (incoming / "bad.csv").read_text() == bad  # the source stays where it was
    finished = lambda: [j for j in jobs.list_jobs(ws) if j.step == "ingest"  # noqa: E731
                        and j.status != "running"]
    wait_for(lambda: any(j.detail and "weekly" in j.detail for j in finished()))
    ingest_jobs = finished()
    [refusing] = [j for j in ingest_jobs if j.detail and "weekly" in j.detail]
    assert refusing.status == "succeeded with refusals"
    assert refusing.error and "1 refused: " in refusing.error and "bad.csv" in refusing.error
    assert all(j.status == "succeeded" for j in ingest_jobs if j is not refusing)


def test_a_burst_of_files_makes_one_retrain(ws: Workspace, incoming: Path) -> None:
    retrains: list[float] = []
    burst = FolderWatcher(ws, [incoming], settle_seconds=0.3)
    # Ingesting the burst takes longer than the debounce; the watcher holds it meanwhile.
    debouncer = Debouncer(0.5, lambda: retrains.append(time.monotonic()), hold=burst.busy)
    burst.on_new_versions = lambda _: debouncer.poke()
    debouncer.start()
    burst.start()
    staging = incoming.parent / "staging"
    staging.mkdir()
    for index, text in enumerate(chunks(60, 40)):
        (staging / f"part-{index:03d}.csv").write_text(text)
    try:
        # The burst arrives as `mv staging/* data/` would deliver it: 40 renames at once.
        for path in sorted(staging.iterdir()):
            path.rename(incoming / path.name)
        # A small slice may fail the contract's null-rate limits; it counts as handled.
        wait_for(lambda: len(stored_versions(ws)) + len(quarantined(ws)) == 40, timeout=60)
        assert len(stored_versions(ws)) >= 35
        wait_for(lambda: len(retrains) >= 1)
        time.sleep(2.0)  # a quiet window well past the debounce: no second retrain follows
        assert len(retrains) == 1
    finally:
        burst.stop()
        debouncer.stop()


def test_files_already_there_are_picked_up_at_start(ws: Workspace, incoming: Path) -> None:
    shutil.copy(BATCH_1, incoming / BATCH_1.name)
    started = FolderWatcher(ws, [incoming], settle_seconds=0.2)
    started.start()
    try:
        wait_for(lambda: len(stored_versions(ws)) == 1)
    finally:
        started.stop()


def test_pokes_while_the_action_runs_lead_to_exactly_one_more_run() -> None:
    runs: list[int] = []
    release = threading.Event()

    def action() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            release.wait(5)

    debouncer = Debouncer(0.05, action)
    debouncer.start()
    try:
        debouncer.poke()
        wait_for(lambda: len(runs) == 1)
        for _ in range(5):
            debouncer.poke()
        release.set()
        wait_for(lambda: len(runs) == 2)
        time.sleep(0.3)  # a quiet window: the pokes made while it ran add one run, no more
        assert len(runs) == 2
    finally:
        debouncer.stop()


def test_candidate_names() -> None:
    assert is_candidate(Path("in/batch.csv")) and is_candidate(Path("in/b.parquet"))
    for name in ("b.csv.part", "b.tmp", "~b.csv", ".b.csv", "notes.md"):
        assert not is_candidate(Path("in") / name)


def test_a_missing_watched_folder_is_a_clear_error(ws: Workspace, tmp_path: Path) -> None:
    from mlyard.core.errors import ConfigError

    with pytest.raises(ConfigError, match="nowhere.*does not exist"):
        FolderWatcher(ws, [tmp_path / "nowhere"])
