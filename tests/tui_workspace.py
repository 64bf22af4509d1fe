"""A small, deterministic workspace for the TUI tests: fixed ids, times and names, so
snapshots compare equal on any machine and any day."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlyard.core.automation import promotion, schedules
from mlyard.core.automation.pipeline import run_pipeline
from mlyard.core.data.ingest import ingest_file
from mlyard.core.models import registry
from mlyard.core.monitoring import drift_reports
from mlyard.core.tracking import active_run
from mlyard.core.training.trainer import plan, train
from mlyard.core.workspace import open_workspace
from tests.conftest import SAMPLE_CHURN

BASE_TIME = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


def build(folder: Path) -> Path:
    """Two batches ingested, one file quarantined, two trained models, aliases moved."""
    project = folder / "churn"
    (project / "data").mkdir(parents=True)
    shutil.copy(SAMPLE_CHURN / "mlyard.toml", project / "mlyard.toml")
    for path in sorted((SAMPLE_CHURN / "data").glob("*.csv"))[:2]:
        shutil.copy(path, project / "data" / path.name)
    (project / "data" / "broken.csv").write_text("customer_id,tenure\nC1,3\n")
    counter = itertools.count(1)
    with pytest.MonkeyPatch.context() as patch:
        # Only run ids are fixed: spool segments (named in a background thread) keep theirs.
        fixed = SimpleNamespace(uuid4=lambda: uuid.UUID(int=next(counter)))
        patch.setattr(active_run, "uuid", fixed)
        ws = open_workspace(project)
        for path in sorted((project / "data").glob("churn_*.csv")):
            ingest_file(ws, path)
        try:
            ingest_file(ws, project / "data" / "broken.csv")
        except Exception:  # noqa: BLE001 - the refusal is the point
            pass
        train(ws, plan(ws, overrides={"num_leaves": 15}), name="small-trees")
        train(ws, plan(ws, overrides={"num_leaves": 63}), name="big-trees")
    promotion.promote(ws, "1", reason="first")
    registry.set_alias(ws, "challenger", "2", reason="try")
    with (project / "mlyard.toml").open("a") as config:
        config.write('\n[[schedule]]\nname = "nightly"\ncron = "0 2 * * *"\n')
    ws = open_workspace(project)
    schedules.set_paused(ws, "nightly", True)  # a next fire time would depend on today
    run_pipeline(ws, "ingest", "manual")
    for ref in ("churn:v1", "churn:v2"):
        drift_reports.drift(ws, current=ref)
    _freeze(ws)
    return project


def _freeze(ws) -> None:  # type: ignore[no-untyped-def]
    with ws.catalog.session() as con:
        con.execute("UPDATE runs SET start_time = ? + 600 * (CAST(right(run_id, 4) AS INT)), "
                    "host = 'box', pid = 4242, user_name = 'alice'", [BASE_TIME])
        con.execute("UPDATE runs SET end_time = start_time + 12.5, heartbeat = start_time + 12.5")
        con.execute("UPDATE dataset_versions SET created_at = ? + seq * 60", [BASE_TIME])
        con.execute("UPDATE model_versions SET created_at = ? + version * 600, "
                    "created_by = 'alice'", [BASE_TIME])
        con.execute("UPDATE alias_moves SET ts = ? + move_id * 60, actor = 'alice'",
                    [BASE_TIME + 3600])
        con.execute("UPDATE jobs SET started_at = ? + 7200 + job_id * 60, "
                    "ended_at = ? + 7201.5 + job_id * 60, pid = 4242, host = 'box'",
                    [BASE_TIME, BASE_TIME])
        logs = [Path(row[0]) for row in con.execute("SELECT log_path FROM jobs").fetchall()]
        con.execute("UPDATE drift_reports SET ts = ? + 9000 + report_id * 60", [BASE_TIME])
        con.execute("UPDATE events SET ts = ? + 9000 + event_id * 60, "
                    "detail = replace(CAST(detail AS VARCHAR), ?, '') WHERE kind LIKE 'alert.%'",
                    [BASE_TIME, str(ws.project_dir) + os.sep])
    for log in logs:
        text = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", "2026-05-28 22:26:40,000",
                      log.read_text(), flags=re.MULTILINE)
        log.write_text(text.replace(str(ws.project_dir) + os.sep, ""))
    for path in (ws.project_dir / "data").iterdir():
        os.utime(path, (BASE_TIME, BASE_TIME))
    for reason_file in ws.quarantine_dir.glob("*.reason.json"):
        record = json.loads(reason_file.read_text())
        record["refused_at"] = "2026-05-28T20:30:00Z"
        record["reason"] = record["reason"].replace(str(ws.project_dir) + os.sep, "")
        reason_file.write_text(json.dumps(record))


def use_utc() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
