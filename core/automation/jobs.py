"""The job history: every automated step (ingest, train, promote) recorded with how it
ended, and the rule that a project trains at most once at a time.

A job row is written when the step starts (status `running`, with the pid) and finished
when it ends: `succeeded`, `succeeded with refusals` (an ingest that quarantined files,
listed as its error), `failed` with the error, or `skipped` with the reason. Its log
goes to `.mlyard/logs/jobs/<id>.log`, where `mlyard jobs show` finds it. A job whose
process died is marked failed the next time jobs are read.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from mlyard.core.errors import MlyardError, NotFound
from mlyard.core.processes import pid_alive
from mlyard.core.workspace import Workspace
from mlyard.storage import automation_store, meta_store
from mlyard.storage.automation_store import JobRecord as JobRecord  # the UI reads these

log = logging.getLogger("mlyard")
PARTIAL = "succeeded with refusals"
STATUSES = ("running", "succeeded", PARTIAL, "failed", "skipped")


class TrainingBusy(MlyardError):
    """The project is already training; the caller asked not to wait."""

    title = "Already training"


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived while a job ran (a BaseException, like KeyboardInterrupt,
    so no `except Exception` in a step swallows it)."""


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Job:
    """A running step: what it finds goes in `detail`, its run in `run_id`."""

    job_id: int
    step: str
    log_path: Path
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    refusals: list[str] = field(default_factory=list)  # files the step had to refuse
    # What to alert if the step fails, when it knows better than "job failed": (event
    # kind, subject, detail), e.g. the gates that refused a promotion.
    alert: meta_store.NewEvent | None = None

    def skip(self, reason: str) -> None:
        """End this job as skipped with `reason` (raises; the caller's block ends here)."""
        raise _Skip(reason)


def logs_dir(ws: Workspace) -> Path:
    return ws.root / "logs" / "jobs"


@contextmanager
def job(ws: Workspace, step: str, trigger: str,
        pipeline_id: int | None = None) -> Iterator[Job]:
    """Record one step: `running` now, and how it ended when the block exits.

    Errors propagate after being recorded; `Job.skip` ends the block quietly.
    """
    with ws.catalog.session() as con:
        job_id = automation_store.start_job(con, ws.project, step, trigger, os.getpid(),
                                            socket.gethostname(), pipeline_id)
        path = logs_dir(ws) / f"{job_id}.log"
        automation_store.set_log_path(con, job_id, str(path))
    current = Job(job_id, step, path)
    handler = _job_log_handler(path)
    log.addHandler(handler)
    status, error, interrupted = "succeeded", None, False
    try:
        log.info("job %s: %s (%s) started", job_id, step, trigger)
        yield current
        if current.refusals:
            status = PARTIAL
            error = f"{len(current.refusals)} refused: " + "; ".join(current.refusals)
    except _Skip as skipped:
        status, error = "skipped", skipped.reason
    except Interrupted:
        status, error = "failed", "interrupted by a signal before it finished"
        interrupted = True  # stopped on purpose: nobody needs an alert for it
        raise
    except MlyardError as exc:
        status, error = "failed", exc.msg
        raise
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        log.error("%s", traceback.format_exc())
        raise
    finally:
        log.info("job %s: %s%s", job_id, status, f": {error}" if error else "")
        log.removeHandler(handler)
        handler.close()
        with ws.catalog.session() as con:
            automation_store.finish_job(con, job_id, status, error,
                                        json.dumps(current.detail) if current.detail else None,
                                        current.run_id)
            if status == "failed" and not interrupted:
                meta_store.add_events(con, [current.alert or _failed_alert(
                    job_id, step, trigger, error)])


def _failed_alert(job_id: int, step: str, trigger: str, error: str | None
                  ) -> meta_store.NewEvent:
    return meta_store.NewEvent("alert.job", str(job_id), "mlyard jobs",
                               {"severity": "error", "step": step, "trigger": trigger,
                                "error": error})


def _job_log_handler(path: Path) -> logging.Handler:
    """A file handler for this thread's records only: a daemon runs jobs and watchers in
    several threads, and each job's log must hold its own lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


@contextmanager
def training_slot(ws: Workspace, wait: bool, who: str,
                  on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the project's training slot, so that whoever triggers a retrain (a schedule,
    a watcher, a person, a cron line) never trains the project twice at once.

    Raises:
        TrainingBusy: another process holds the slot and `wait` is False.
    """
    ws.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(ws.root / "train.lock"), thread_local=False)
    holder = ws.root / "train.holder.json"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        busy = f"project {ws.project} is already training ({_describe_holder(holder)})"
        if not wait:
            raise TrainingBusy(busy) from None
        if on_wait is not None:
            on_wait(f"waiting: {busy}")
        lock.acquire()
    try:
        holder.write_text(json.dumps({"pid": os.getpid(), "who": who, "since": time.time()}))
        yield
    finally:
        lock.release()


def _describe_holder(holder: Path) -> str:
    try:
        info = json.loads(holder.read_text())
        since = time.strftime("%H:%M:%S", time.localtime(info["since"]))
        return f"{info['who']}, pid {info['pid']}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def reconcile_dead(ws: Workspace) -> None:
    """Mark running jobs whose process on this host is gone as failed."""
    host = socket.gethostname()
    with ws.catalog.session() as con:
        for record in automation_store.running_jobs(con, ws.project):
            if record.host == host and record.pid is not None \
                    and not pid_alive(record.pid, record.started_at):
                error = f"its process (pid {record.pid}) ended before the job finished"
                automation_store.finish_job(con, record.job_id, "failed", error,
                                            record.detail, None)
                meta_store.add_events(con, [_failed_alert(record.job_id, record.step,
                                                          record.trigger, error)])


def list_jobs(ws: Workspace, limit: int = 50, status: str | None = None) -> list[JobRecord]:
    """Newest first."""
    reconcile_dead(ws)
    with ws.catalog.session() as con:
        return automation_store.list_jobs(con, ws.project, limit, status)


def jobs_of_process(ws: Workspace, pid: int, since: float) -> list[JobRecord]:
    """The steps process `pid` on this host recorded since `since`, oldest first: how a
    daemon's child ended, step by step."""
    with ws.catalog.session() as con:
        return automation_store.jobs_of_process(con, ws.project, pid, socket.gethostname(),
                                                since)


def get_job(ws: Workspace, job_id: int) -> JobRecord:
    reconcile_dead(ws)
    with ws.catalog.session() as con:
        record = automation_store.get_job(con, job_id)
    if record is None or record.project != ws.project:
        raise NotFound(f"job {job_id}: not found in project {ws.project}")
    return record


def job_log(record: JobRecord, limit: int = 200) -> list[str]:
    """The last `limit` lines of a job's log (empty when it wrote none)."""
    if not record.log_path:
        return []
    try:
        lines = Path(record.log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return lines[-limit:]
