"""Schedules: pipelines run by cron expression or at an interval.

The catalog is the source of truth. `[[schedule]]` entries in mlyard.toml are copied into
it whenever schedules are read (their pause state survives edits to the file); schedules
added with `mlyard schedule add` live only in the catalog. APScheduler's triggers compute
fire times, so `mlyard schedule list`, the daemon and the crontab lines agree.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mlyard.core.config import PipelineName
from mlyard.core.durations import describe_seconds, parse_every
from mlyard.core.errors import ConfigError, NotFound, UsageError
from mlyard.core.workspace import Workspace
from mlyard.storage import automation_store
from mlyard.storage.automation_store import ScheduleRecord

PIPELINES: tuple[str, ...] = get_args(PipelineName)


@dataclass(frozen=True)
class Schedule:
    record: ScheduleRecord
    next_fire: float | None  # None while paused

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def when(self) -> str:
        """The cron expression or `every 15m`, as a person wrote it."""
        if self.record.cron is not None:
            return self.record.cron
        return f"every {describe_seconds(self.record.every_seconds or 0)}"


def check_cron(expression: str) -> None:
    """Raise ValueError naming the field when `expression` is not five crontab fields."""
    if len(expression.split()) != 5:
        raise ValueError(f"cron {expression!r}: expected five fields "
                         "(minute hour day month weekday)")
    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        raise ValueError(f"cron {expression!r}: {exc}") from None


def trigger_for(record: ScheduleRecord) -> BaseTrigger:
    """The APScheduler trigger; an interval counts from the last fire when there was one."""
    if record.cron is not None:
        return CronTrigger.from_crontab(record.cron)
    seconds = record.every_seconds or 0.0
    if record.last_fire is not None:
        start = dt.datetime.fromtimestamp(record.last_fire + seconds).astimezone()
        return IntervalTrigger(seconds=seconds, start_date=start)
    return IntervalTrigger(seconds=seconds)


def first_fire(record: ScheduleRecord, now: float | None = None) -> float:
    """When the schedule should fire next: the first fire time after its last fire, which
    is in the past if fires were missed (the scheduler then runs it once, within the grace
    time), or the next one from now for a schedule that never fired."""
    trigger = trigger_for(record)
    current = dt.datetime.fromtimestamp(time.time() if now is None else now).astimezone()
    if record.last_fire is not None:
        after = dt.datetime.fromtimestamp(record.last_fire + 0.001).astimezone()
        missed = trigger.get_next_fire_time(None, after)
        if missed is not None:
            return float(missed.timestamp())
    upcoming = trigger.get_next_fire_time(None, current)
    return upcoming.timestamp() if upcoming is not None else float("inf")


def sync_from_config(ws: Workspace) -> None:
    """Copy `[[schedule]]` entries into the catalog; drop config schedules no longer there."""
    wanted = {entry.name: entry for entry in ws.config.schedule}
    with ws.catalog.session() as con:
        existing = {r.name: r for r in automation_store.list_schedules(con, ws.project)}
        for name, record in existing.items():
            if record.source == "config" and name not in wanted:
                automation_store.delete_schedule(con, ws.project, name)
        for entry in wanted.values():
            try:
                record = _record(ws.project, entry.name, entry.cron, entry.every,
                                 entry.pipeline, "config")
            except ValueError as exc:
                raise ConfigError(f"{ws.config_path}: [[schedule]] {entry.name!r}: {exc}") \
                    from exc
            before = existing.get(entry.name)
            # Readers call this every few seconds: write only what changed.
            if before is None or _definition(before) != _definition(record):
                automation_store.upsert_schedule(con, record)


def list_schedules(ws: Workspace) -> list[Schedule]:
    """Every schedule of the project with its next fire time."""
    sync_from_config(ws)
    with ws.catalog.session() as con:
        records = automation_store.list_schedules(con, ws.project)
    now = time.time()
    return [Schedule(r, None if r.paused else max(first_fire(r, now), now)) for r in records]


def get_schedule(ws: Workspace, name: str) -> ScheduleRecord:
    sync_from_config(ws)
    with ws.catalog.session() as con:
        record = automation_store.get_schedule(con, ws.project, name)
        known = [r.name for r in automation_store.list_schedules(con, ws.project)]
    if record is None:
        raise NotFound(f"schedule {name!r}: not found; known: {', '.join(known) or 'none'}")
    return record


def add_schedule(ws: Workspace, name: str, cron: str | None, every: str | None,
                 pipeline: str) -> ScheduleRecord:
    """Add a schedule kept only in the catalog (as `mlyard schedule add` does)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(f"schedule name {name!r}: use letters, digits, '_', '.' and '-'")
    if (cron is None) == (every is None):
        raise UsageError("give exactly one of --cron or --every")
    try:
        record = _record(ws.project, name, cron, every, pipeline, "cli")
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    sync_from_config(ws)
    with ws.catalog.session() as con:
        if automation_store.get_schedule(con, ws.project, name) is not None:
            raise UsageError(f"schedule {name!r} already exists; remove it first")
        automation_store.upsert_schedule(con, record)
    return record


def remove_schedule(ws: Workspace, name: str) -> None:
    record = get_schedule(ws, name)
    if record.source == "config":
        raise UsageError(f"schedule {name!r} is defined in {ws.config_path}; remove its "
                         "[[schedule]] entry there (or pause it)")
    with ws.catalog.session() as con:
        automation_store.delete_schedule(con, ws.project, name)


def set_paused(ws: Workspace, name: str, paused: bool) -> None:
    ws.check_writable(f"{'pause' if paused else 'resume'} schedule {name}")
    get_schedule(ws, name)
    with ws.catalog.session() as con:
        automation_store.set_paused(con, ws.project, name, paused)


def record_fire(ws: Workspace, name: str, fired_at: float) -> None:
    with ws.catalog.session() as con:
        automation_store.set_last_fire(con, ws.project, name, fired_at)


def crontab_lines(ws: Workspace, executable: str | None = None) -> list[str]:
    """Lines for `crontab -e` that run each cron schedule headlessly with this mlyard.

    Interval schedules have no crontab form and are listed as comments.
    """
    mlyard = executable or str(Path(sys.executable).with_name("mlyard"))
    base = [mlyard, "-C", str(ws.config_path.parent), "--workspace", str(ws.root)]
    cron_log = shlex.quote(str(ws.root / "logs" / "cron.log"))
    lines = [f"# mlyard schedules for project {ws.project}; each job's log: mlyard jobs show "
             f"ID; anything before a job starts: {cron_log}"]
    for schedule in list_schedules(ws):
        record = schedule.record
        command = shlex.join([*base, "schedule", "run-now", record.name, "--trigger", "cron"])
        if record.cron is None:
            lines.append(f"# {record.name}: {schedule.when} has no crontab form; use "
                         "mlyard daemon")
        elif record.paused:
            lines.append(f"# paused: {record.cron} {command}")
        else:
            lines.append(f"{record.cron} {command} >> {cron_log} 2>&1")
    return lines


def _definition(record: ScheduleRecord) -> tuple[object, ...]:
    return (record.cron, record.every_seconds, record.pipeline, record.source)


def _record(project: str, name: str, cron: str | None, every: str | None, pipeline: str,
            source: str) -> ScheduleRecord:
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline {pipeline!r}: expected one of {', '.join(PIPELINES)}")
    if cron is not None:
        check_cron(cron)
    seconds = parse_every(every) if every is not None else None
    return ScheduleRecord(project=project, name=name, cron=cron, every_seconds=seconds,
                          pipeline=pipeline, source=source, paused=False,
                          created_at=time.time(), last_fire=None)
