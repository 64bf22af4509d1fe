"""Only regular files are read from the workspace: a FIFO named like a spool segment, a
logged-predictions file or a quarantine record (opening one waits
forever for a writer) and a directory named like one are moved aside with a reason,
and every command still answers. Each command runs as its own process with a deadline,
so a hang fails the test instead of holding it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard_process

COMMANDS = [("runs", "list"), ("models", "list"), ("data", "list"), ("data", "quarantine"),
            ("alerts",)]


def test_fifos_and_folders_named_like_workspace_files_are_set_aside(churn: Path) -> None:
    assert mlyard_process("train", cwd=churn).returncode == 0
    assert mlyard_process("models", "promote", "latest", cwd=churn).returncode == 0
    ws = open_workspace(churn)
    spool = ws.catalog.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    os.mkfifo(spool / "metrics-00000000000000000001-aaaaaaaaaaaa.arrow")
    (spool / "logs-00000000000000000002-bbbbbbbbbbbb.arrow").mkdir()
    day = ws.catalog.predictions_dir / "model=churn" / "date=2026-12-01"
    day.mkdir(parents=True)
    os.mkfifo(day / "00000000000000000001.parquet")
    ws.quarantine_dir.mkdir(parents=True, exist_ok=True)
    os.mkfifo(ws.quarantine_dir / "x.csv.reason.json")

    for command in COMMANDS:
        done = mlyard_process(*command, cwd=churn)  # a 120 s deadline: a hang fails here
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr
    served = mlyard_process("drift", "--served", "3650d", cwd=churn)  # reads the logged predictions
    assert served.returncode == 2 and "nothing to compare" in served.stderr, served.stderr

    # The spool's odd entries went the way of any unreadable segment: aside, with an alert.
    bad = spool / "bad"
    assert (bad / "metrics-00000000000000000001-aaaaaaaaaaaa.arrow").exists()
    reason = json.loads((bad / "metrics-00000000000000000001-aaaaaaaaaaaa.arrow"
                         ".reason.json").read_text())
    assert "a FIFO, not a regular file" in reason["reason"]
    assert (bad / "logs-00000000000000000002-bbbbbbbbbbbb.arrow").is_dir()
    alerts = json.loads(mlyard_process("alerts", "--json", cwd=churn).stdout)
    assert sum(alert["kind"] == "alert.spool" for alert in alerts) == 2
    # The logs' and the quarantine's raise one each too, through the spool.
    workspace = [alert for alert in alerts if alert["kind"] == "alert.workspace"]
    assert len(workspace) == 2, alerts
    assert all("set aside: a FIFO, not a regular file" in alert["what"] for alert in workspace)
    # The logs' and the quarantine's, aside in a folder of their own, with the reason.
    for folder in (day, ws.quarantine_dir):
        assert not [p for p in folder.iterdir() if p.is_fifo()], folder
        [moved] = [p for p in (folder / "set-aside").iterdir() if p.is_fifo()]
        note = json.loads((folder / "set-aside" / (moved.name + ".reason.json")).read_text())
        assert note["reason"].startswith("a FIFO, not a regular file")


def test_an_object_that_is_a_fifo_is_set_aside_with_an_alert_and_one_line(churn: Path) -> None:
    ws = open_workspace(churn)
    [version] = json.loads(mlyard_process("data", "list", "--json", cwd=churn).stdout)[:1]
    path = ws.objects.path_for(version["snapshot_blake3"])
    os.chmod(path, 0o644)
    path.unlink()
    os.mkfifo(path)
    done = mlyard_process("train", cwd=churn)  # reads every snapshot
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "a FIFO, not a regular file; set aside in" in done.stderr
    assert not path.exists() and list((ws.objects.root / "set-aside").iterdir())
    alerts = json.loads(mlyard_process("alerts", "--json", cwd=churn).stdout)
    assert [a["kind"] for a in alerts] == ["alert.workspace"]
    report = json.loads(mlyard_process("doctor", "--json", cwd=churn).stdout)
    [objects] = [f for f in report["findings"] if f["check"] == "objects"]
    assert "objects the catalog names are missing" in objects["detail"]  # what needs it
