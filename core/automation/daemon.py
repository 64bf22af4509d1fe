"""`mlyard daemon` (watchers and schedules together) and `mlyard watch` (watchers only).

Both deliver alerts while they run (core/alerts/delivery.py's courier).

One daemon per project (a lock file says so). Pipelines after new data and scheduled
pipelines run as child `mlyard` processes: a crash in training cannot take the daemon
down, and on SIGTERM each child is asked to stop, marks its job failed, and exits. The
daemon writes a heartbeat with its next fire times and last files to the catalog, which
`mlyard status` and the TUI read.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from filelock import FileLock, Timeout

from mlyard.core.alerts.delivery import Courier
from mlyard.core.automation import jobs, schedules
from mlyard.core.automation.pipeline import watched_folders
from mlyard.core.automation.watcher import Debouncer, FolderWatcher, SeenFile
from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.processes import mlyard_command, pid_alive
from mlyard.core.workspace import Workspace
from mlyard.storage import automation_store
from mlyard.storage.automation_store import DaemonRecord, ScheduleRecord

log = logging.getLogger("mlyard.daemon")

HEARTBEAT_SECONDS = 2.0
STOP_GRACE_SECONDS = 30.0  # how long a child gets to mark its job after SIGTERM


class DaemonChild(msgspec.Struct):
    pid: int
    trigger: str


class DaemonDetail(msgspec.Struct, kw_only=True):
    """What a daemon says of itself in each heartbeat, for `mlyard status` and the
    Automation screen in other processes (a daemon of an earlier version may say less)."""

    watch: list[str] = []  # folders
    polling: bool = False
    on_new_data: str = "ingest"
    recent_files: list[SeenFile] = []
    schedules: dict[str, float | None] = {}  # schedule -> next fire (None: paused)
    children: list[DaemonChild] = []


@dataclass(frozen=True)
class DaemonStatus:
    running: bool
    record: DaemonRecord | None
    detail: DaemonDetail


class Daemon:
    """Watchers, the debounced pipeline after new data, and the scheduler, in one process."""

    def __init__(self, ws: Workspace, watch: bool = True, schedule: bool = True,
                 polling: bool = False) -> None:
        self.ws = ws
        self.watch = watch
        self.schedule = schedule
        self.polling = polling
        self.started_at = time.time()
        self._stop = threading.Event()
        self._children: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
        self._children_guard = threading.Lock()
        self._lock = FileLock(str(ws.root / "daemon.lock"), thread_local=False)
        self._watcher: FolderWatcher | None = None
        self._debouncer: Debouncer | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._known: dict[str, ScheduleRecord] = {}
        self._courier = Courier(ws)

    def run(self) -> None:
        """Run until SIGTERM or SIGINT (or `stop()`), then shut down cleanly."""
        self._acquire()
        try:
            self._install_signals()
            jobs.reconcile_dead(self.ws)
            self._start_watcher()
            self._start_scheduler()
            self._courier.start()
            self._write_status()
            log.info("daemon for %s started (pid %d)", self.ws.project, os.getpid())
            while not self._stop.wait(HEARTBEAT_SECONDS):
                self._tick()
        finally:
            self._shutdown()

    def stop(self) -> None:
        self._stop.set()

    def _acquire(self) -> None:
        self.ws.root.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            current = daemon_status(self.ws)
            pid = current.record.pid if current.record else "?"
            raise UsageError(f"a daemon already runs for project {self.ws.project} "
                             f"(pid {pid}); stop it first") from None

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop.set())

    def _start_watcher(self) -> None:
        folders = watched_folders(self.ws) if self.watch else []
        if not folders:
            return
        until = self.ws.config.automation.on_new_data
        watcher = FolderWatcher(self.ws, folders, polling=self.polling)
        if until != "ingest":
            debouncer = Debouncer(
                self.ws.config.automation.debounce_seconds,
                lambda: self._run_child(["pipeline", "run", until, "--no-ingest",
                                         "--trigger", "watch"], "watch"),
                hold=watcher.busy)
            watcher.on_new_versions = lambda _: debouncer.poke()
            debouncer.start()
            self._debouncer = debouncer
        watcher.start()
        self._watcher = watcher

    def _start_scheduler(self) -> None:
        if not self.schedule:
            return
        automation = self.ws.config.automation
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": max(1, int(automation.misfire_grace_seconds))})
        self._scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self._scheduler.start()
        self._refresh_schedules()

    def _refresh_schedules(self) -> None:
        """Bring the scheduler in line with the catalog (another process may have added,
        paused or removed a schedule)."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        current = {s.name: s.record for s in schedules.list_schedules(self.ws)}
        for name in set(self._known) - set(current):
            scheduler.remove_job(name)
        for name, record in current.items():
            before = self._known.get(name)
            if before is None or (before.cron, before.every_seconds) != (record.cron,
                                                                          record.every_seconds):
                if before is not None:
                    scheduler.remove_job(name)
                start = dt.datetime.fromtimestamp(schedules.first_fire(record)).astimezone()
                scheduler.add_job(self._fire, schedules.trigger_for(record), args=[name],
                                  id=name, name=name, next_run_time=start)
            if record.paused and (before is None or not before.paused):
                scheduler.pause_job(name)
            elif not record.paused and before is not None and before.paused:
                scheduler.resume_job(name)
        self._known = current

    def _fire(self, name: str) -> None:
        schedules.record_fire(self.ws, name, time.time())
        self._run_child(["schedule", "run-now", name, "--trigger", "schedule"],
                        f"schedule:{name}")

    def _missed(self, event: JobExecutionEvent) -> None:
        late = time.time() - event.scheduled_run_time.timestamp()
        try:
            with jobs.job(self.ws, "pipeline", f"schedule:{event.job_id}") as current:
                current.skip(f"missed by {late:.0f}s while nothing was running, over the "
                             "misfire grace time ([automation] misfire_grace_seconds)")
        except MlyardError as exc:
            log.warning("could not record a missed schedule: %s", exc.msg)

    def _run_child(self, args: list[str], trigger: str) -> int:
        """Run `mlyard ARGS` for this project as a child process and wait for it."""
        if self._stop.is_set():
            return -1
        command = mlyard_command("-C", str(self.ws.project_dir), "--workspace",
                                 str(self.ws.root), *args)
        log.info("%s: %s", trigger, " ".join(args))
        started = time.time()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        with self._children_guard:
            self._children[child.pid] = (child, trigger)
        try:
            _, stderr = child.communicate()
        finally:
            with self._children_guard:
                self._children.pop(child.pid, None)
        failure_told = self._log_outcomes(trigger, child.pid, started)
        if child.returncode != 0 and not failure_told:
            log.warning("%s: exited %d: %s", trigger, child.returncode,
                        stderr.decode(errors="replace").strip()[-500:])
        return child.returncode

    def _log_outcomes(self, trigger: str, pid: int, started: float) -> bool:
        """One line per step the child recorded: how it ended (the version trained, the
        gates and the champion, or the reason it failed), so the daemon's log tells the
        story without `mlyard jobs show`. True when a failed step was told."""
        try:
            steps = jobs.jobs_of_process(self.ws, pid, started - 1.0)
        except MlyardError as exc:
            log.warning("%s: could not read how its steps ended: %s", trigger, exc.msg)
            return False
        for step in steps:
            level = logging.WARNING if step.status in ("failed", jobs.PARTIAL) else logging.INFO
            log.log(level, "%s: job %d %s %s%s", trigger, step.job_id, step.step, step.status,
                    f": {step.outcome}" if step.outcome else "")
        return any(step.status == "failed" for step in steps)

    def _tick(self) -> None:
        try:
            self._refresh_schedules()
            self._write_status()
        except MlyardError as exc:  # a busy catalog: try again on the next beat
            log.warning("heartbeat: %s", exc.msg)

    def _write_status(self, stopped: bool = False) -> None:
        watcher = self._watcher
        detail = DaemonDetail(
            watch=[str(f) for f in watcher.folders] if watcher else [],
            polling=self.polling, on_new_data=self.ws.config.automation.on_new_data,
            recent_files=list(watcher.recent) if watcher else [],
            schedules=self._next_fires(),
            children=[DaemonChild(pid, trigger)
                      for pid, (_, trigger) in list(self._children.items())])
        now = time.time()
        record = DaemonRecord(self.ws.project, os.getpid(), socket.gethostname(),
                              self.started_at, now, now if stopped else None,
                              msgspec.json.encode(detail).decode())
        with self.ws.catalog.session() as con:
            automation_store.write_daemon(con, record)

    def _next_fires(self) -> dict[str, float | None]:
        if self._scheduler is None:
            return {}
        fires: dict[str, float | None] = {}
        for scheduled in self._scheduler.get_jobs():
            upcoming = scheduled.next_run_time
            fires[scheduled.id] = upcoming.timestamp() if upcoming else None
        return fires

    def _shutdown(self) -> None:
        log.info("daemon stopping")
        if self._watcher is not None:
            self._watcher.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        with self._children_guard:
            children = [child for child, _ in self._children.values()]
        for child in children:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._debouncer is not None:
            self._debouncer.stop()
        self._courier.stop()
        try:
            jobs.reconcile_dead(self.ws)
            self._write_status(stopped=True)
        except MlyardError as exc:
            log.warning("could not record the stop: %s", exc.msg)
        if self._lock.is_locked:
            self._lock.release()
        log.info("daemon stopped")


def daemon_status(ws: Workspace) -> DaemonStatus:
    """The daemon's last heartbeat, and whether it is running now."""
    with ws.catalog.session() as con:
        record = automation_store.get_daemon(con, ws.project)
    if record is None:
        return DaemonStatus(False, None, DaemonDetail())
    # On this machine the process itself says: a heartbeat can be late while trainings
    # keep the catalog busy (tens of seconds on two busy cores). Elsewhere (a shared
    # filesystem) only the heartbeat can.
    if record.host == socket.gethostname():
        alive = pid_alive(record.pid, record.started_at)
    else:
        alive = time.time() - record.heartbeat < 5 * HEARTBEAT_SECONDS
    running = record.stopped_at is None and alive
    return DaemonStatus(running, record, msgspec.json.decode(record.status, type=DaemonDetail))


def setup_logging(ws: Workspace, verbose: bool = False) -> Path:
    """Log to a rotating file in the workspace and to stderr."""
    path = ws.root / "logs" / "daemon.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("mlyard")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    to_file = logging.handlers.RotatingFileHandler(path, maxBytes=5 * 2**20, backupCount=3,
                                                   encoding="utf-8")
    to_stderr = logging.StreamHandler()
    for handler in (to_file, to_stderr):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return path
