"""What the Automation screen shows: the daemon, watched folders and their newest files,
schedules with their next fire times, and the job history; and running a schedule now
without waiting for it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlyard.core.automation import jobs, schedules
from mlyard.core.automation.daemon import DaemonStatus, daemon_status
from mlyard.core.automation.pipeline import watched_folders
from mlyard.core.data import versions
from mlyard.core.data.scaffold import data_files
from mlyard.core.processes import mlyard_command
from mlyard.core.workspace import Workspace
from mlyard.storage.automation_store import JobRecord


@dataclass(frozen=True)
class WatchedFile:
    path: Path
    modified: float
    version: str | None  # the dataset version it became, if ingested


@dataclass(frozen=True)
class AutomationOverview:
    daemon: DaemonStatus
    folders: list[Path]
    files: list[WatchedFile]  # newest first
    schedules: list[schedules.Schedule]
    jobs: list[JobRecord]  # newest first


def overview(ws: Workspace, files_limit: int = 20, jobs_limit: int = 100) -> AutomationOverview:
    """Everything the Automation screen shows, in one call."""
    folders = watched_folders(ws)
    ingested = {Path(v.source_path): v.ref for v in versions.list_versions(ws)}
    found = sorted((f for folder in folders if folder.is_dir() for f in data_files(folder)),
                   key=lambda f: f.stat().st_mtime, reverse=True)[:files_limit]
    files = [WatchedFile(f, f.stat().st_mtime, ingested.get(f.resolve())) for f in found]
    return AutomationOverview(daemon_status(ws), folders, files, schedules.list_schedules(ws),
                              jobs.list_jobs(ws, jobs_limit))


def run_schedule_in_background(ws: Workspace, name: str) -> int:
    """Start `mlyard schedule run-now NAME` as its own process; return its pid.

    Its jobs appear in the history as it goes; it keeps running if the caller exits.
    """
    ws.check_writable(f"run schedule {name}")
    schedules.get_schedule(ws, name)  # a clear NotFound before anything starts
    child = subprocess.Popen(
        mlyard_command("-C", str(ws.project_dir), "--workspace", str(ws.root), "schedule",
                       "run-now", name, "--trigger", "manual"),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    return child.pid
