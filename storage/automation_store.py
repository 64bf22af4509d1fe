"""SQL for schedules, the job history and the daemon's status row."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from mlyard.storage.engine import Connection


@dataclass(frozen=True)
class ScheduleRecord:
    project: str
    name: str
    cron: str | None
    every_seconds: float | None
    pipeline: str
    source: str  # "config" (a [[schedule]] in mlyard.toml) or "cli" (`mlyard schedule add`)
    paused: bool
    created_at: float
    last_fire: float | None


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    project: str
    pipeline_id: int | None
    step: str
    trigger: str
    status: str
    started_at: float
    ended_at: float | None
    pid: int | None
    host: str | None
    run_id: str | None
    detail: str | None
    error: str | None
    log_path: str | None

    @property
    def outcome(self) -> str:
        """How the step ended in one line: its error, else what it recorded as its
        outcome (the version trained, the champion and why)."""
        if self.error:
            return self.error
        detail = json.loads(self.detail) if self.detail else {}
        return str(detail.get("outcome", "")) if isinstance(detail, dict) else ""


@dataclass(frozen=True)
class DaemonRecord:
    project: str
    pid: int
    host: str
    started_at: float
    heartbeat: float
    stopped_at: float | None
    status: str  # JSON written by the daemon


_SCHEDULE_COLUMNS = ("project, name, cron, every_seconds, pipeline, source, paused, "
                     "created_at, last_fire")
_JOB_COLUMNS = ("job_id, project, pipeline_id, step, trigger, status, started_at, ended_at, "
                "pid, host, run_id, detail, error, log_path")


def list_schedules(con: Connection, project: str) -> list[ScheduleRecord]:
    rows = con.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE project = ? "
                       "ORDER BY name", [project]).fetchall()
    return [ScheduleRecord(*row) for row in rows]


def get_schedule(con: Connection, project: str, name: str) -> ScheduleRecord | None:
    row = con.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE project = ? "
                      "AND name = ?", [project, name]).fetchone()
    return ScheduleRecord(*row) if row else None


def upsert_schedule(con: Connection, record: ScheduleRecord) -> None:
    """Insert, or update the definition of an existing schedule (its pause state and last
    fire are kept, so editing mlyard.toml does not resume a paused schedule)."""
    con.execute(
        f"INSERT INTO schedules ({_SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (project, name) DO UPDATE SET cron = excluded.cron, "
        "every_seconds = excluded.every_seconds, pipeline = excluded.pipeline, "
        "source = excluded.source",
        [record.project, record.name, record.cron, record.every_seconds, record.pipeline,
         record.source, record.paused, record.created_at, record.last_fire])


def delete_schedule(con: Connection, project: str, name: str) -> None:
    con.execute("DELETE FROM schedules WHERE project = ? AND name = ?", [project, name])


def set_paused(con: Connection, project: str, name: str, paused: bool) -> None:
    con.execute("UPDATE schedules SET paused = ? WHERE project = ? AND name = ?",
                [paused, project, name])


def set_last_fire(con: Connection, project: str, name: str, fired_at: float) -> None:
    con.execute("UPDATE schedules SET last_fire = ? WHERE project = ? AND name = ?",
                [fired_at, project, name])


def start_job(con: Connection, project: str, step: str, trigger: str, pid: int, host: str,
              pipeline_id: int | None, status: str = "running") -> int:
    row = con.execute(
        "INSERT INTO jobs (project, pipeline_id, step, trigger, status, started_at, pid, host) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING job_id",
        [project, pipeline_id, step, trigger, status, time.time(), pid, host]).fetchone()
    assert row is not None
    return int(row[0])


def set_log_path(con: Connection, job_id: int, log_path: str) -> None:
    con.execute("UPDATE jobs SET log_path = ? WHERE job_id = ?", [log_path, job_id])


def finish_job(con: Connection, job_id: int, status: str, error: str | None,
               detail: str | None, run_id: str | None) -> None:
    con.execute(
        "UPDATE jobs SET status = ?, ended_at = ?, error = ?, detail = ?, "
        "run_id = coalesce(?, run_id) WHERE job_id = ?",
        [status, time.time(), error, detail, run_id, job_id])


def jobs_of_process(con: Connection, project: str, pid: int, host: str,
                    since: float) -> list[JobRecord]:
    """Oldest first."""
    rows = con.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE project = ? AND pid = ? "
                       "AND host = ? AND started_at >= ? ORDER BY job_id",
                       [project, pid, host, since]).fetchall()
    return [JobRecord(*row) for row in rows]


def list_jobs(con: Connection, project: str, limit: int,
              status: str | None = None) -> list[JobRecord]:
    where, args = "project = ?", [project]
    if status is not None:
        where += " AND status = ?"
        args.append(status)
    rows = con.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {where} "
                       "ORDER BY job_id DESC LIMIT ?", [*args, limit]).fetchall()
    return [JobRecord(*row) for row in rows]


def get_job(con: Connection, job_id: int) -> JobRecord | None:
    row = con.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", [job_id]).fetchone()
    return JobRecord(*row) if row else None


def running_jobs(con: Connection, project: str) -> list[JobRecord]:
    return list_jobs(con, project, limit=1000, status="running")


def write_daemon(con: Connection, record: DaemonRecord) -> None:
    con.execute(
        "INSERT INTO daemons VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project) DO UPDATE "
        "SET pid = excluded.pid, host = excluded.host, started_at = excluded.started_at, "
        "heartbeat = excluded.heartbeat, stopped_at = excluded.stopped_at, "
        "status = excluded.status",
        [record.project, record.pid, record.host, record.started_at, record.heartbeat,
         record.stopped_at, record.status])


def get_daemon(con: Connection, project: str) -> DaemonRecord | None:
    row = con.execute("SELECT project, pid, host, started_at, heartbeat, stopped_at, status "
                      "FROM daemons WHERE project = ?", [project]).fetchone()
    return DaemonRecord(*row) if row else None
