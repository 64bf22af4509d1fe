"""Checking the next files of a burst on other cores: results come back in order, each
file's outcome is what it would have been alone, and nothing runs on after the end."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from mlyard.core.data import lookahead
from mlyard.core.data.ingest import ingest_files
from mlyard.core.data.lookahead import Lookahead
from mlyard.core.errors import IngestRefused
from mlyard.core.workspace import open_workspace
from tests.conftest import SAMPLE_CHURN


def test_items_run_ahead_at_most_workers_at_once_and_come_back_in_order() -> None:
    running, most, guard = 0, 0, threading.Lock()
    second_started = threading.Event()

    def work(index: int) -> int:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        if index == 1:
            second_started.set()
        if index == 0:  # only returns once item 1 runs beside it
            assert second_started.wait(timeout=30)
        time.sleep(0.001)
        with guard:
            running -= 1
        return index * 10

    ahead = Lookahead(work, workers=2)
    ahead.allow(range(20))
    try:
        assert [ahead.take(i) for i in range(20)] == [i * 10 for i in range(20)]
    finally:
        ahead.close()
    assert most == 2


def test_an_error_comes_at_its_turn_and_later_items_still_come() -> None:
    def work(index: int) -> int:
        if index == 2:
            raise IngestRefused("item 2: refused")
        return index

    ahead = Lookahead(work, workers=3)
    ahead.allow([0, 1, 2, 3, 4])
    try:
        assert [ahead.take(0), ahead.take(1)] == [0, 1]
        with pytest.raises(IngestRefused, match="item 2"):
            ahead.take(2)
        assert [ahead.take(3), ahead.take(4)] == [3, 4]
    finally:
        ahead.close()


def test_items_not_allowed_ahead_run_in_the_callers_thread_and_close_drops_the_rest() -> None:
    threads: dict[int, str] = {}

    def work(index: int) -> int:
        threads[index] = threading.current_thread().name
        return index

    ahead = Lookahead(work, workers=2)
    ahead.allow([1, 2, 3, 4, 5, 6])
    assert ahead.take(0) == 0 and ahead.take(1) == 1
    ahead.close()
    assert threads[0] == threading.current_thread().name  # never allowed ahead
    assert threads[1].startswith("mlyard-ahead")
    assert set(threads) <= {0, 1, 2, 3}  # at most two ahead of the last one taken


def _burst(folder: Path, good_csv: str) -> list[Path]:
    header, *lines = good_csv.splitlines()
    rows = [line for line in lines if ",," not in line]
    folder.mkdir()
    paths = []
    for index in range(12):
        part = rows[(index * 2) % len(rows):(index * 2) % len(rows) + 2 + index % 3]
        path = folder / f"part-{index:02d}.csv"
        path.write_text("\n".join([header, *part]) + "\n")
        paths.append(path)
    paths[7].write_text(paths[2].read_text())  # the same bytes again
    bad = rows[0].split(",")
    bad[header.split(",").index("age")] = "ninety"
    paths[9].write_text("\n".join([header, ",".join(bad)]) + "\n")
    return paths


@pytest.mark.parametrize("workers", [2, 4])
def test_files_checked_ahead_become_the_versions_they_would_alone(
        tmp_path: Path, good_csv: str, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same burst with files checked one at a time and two or four at once: the same
    versions in the same order, byte for byte, the same refusal, no temp file left."""
    outcomes = {}
    for run in ("one at a time", "ahead"):
        monkeypatch.setattr(lookahead, "WORKERS", 1 if run == "one at a time" else workers)
        project = tmp_path / run.replace(" ", "-")
        project.mkdir()
        shutil.copy(SAMPLE_CHURN / "mlyard.toml", project / "mlyard.toml")
        ws = open_workspace(project)
        seen = []
        for path, outcome in ingest_files(ws, _burst(project / "burst", good_csv)):
            if isinstance(outcome, IngestRefused):
                seen.append((path.name, "refused", outcome.msg.split(": ", 1)[1]))
            else:
                version = outcome.version
                seen.append((path.name, version.ref, version.snapshot_hash, version.rows,
                             version.profile, outcome.warnings, outcome.created))
        assert list((ws.root / "objects" / "tmp").iterdir()) == []
        outcomes[run] = seen
    assert outcomes["ahead"] == outcomes["one at a time"]
    assert [o[1] for o in outcomes["ahead"]] == [
        "churn:v1", "churn:v2", "churn:v3", "churn:v4", "churn:v5", "churn:v6", "churn:v7",
        "churn:v3", "churn:v8", "refused", "churn:v9", "churn:v10"]
