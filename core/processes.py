"""Processes mlyard starts and watches: is a recorded pid still alive, and the command line
that runs mlyard itself in a child process."""

from __future__ import annotations

import os
import sys


def mlyard_command(*args: str) -> list[str]:
    """`python -m mlyard ARGS` with this interpreter: the same installed mlyard as the
    parent, whether or not the `mlyard` script is on PATH (a venv that is not activated)."""
    return [sys.executable, "-m", "mlyard", *args]


def pid_alive(pid: int, since: float | None = None) -> bool:
    """Whether process `pid` is still the one that was running at time `since`.

    A pid is reused once its process ends: a live process with that pid that started
    after `since` (the run's or job's start) is another program, so the recorded one is
    gone.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if _is_zombie(pid):
        return False
    started = process_started_at(pid)
    return since is None or started is None or started <= since + START_TOLERANCE


START_TOLERANCE = 2.0  # seconds: clock ticks and boot-time rounding


def process_started_at(pid: int) -> float | None:
    """When process `pid` started (Unix time), from /proc; None where /proc is absent."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            ticks = int(handle.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime"))
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
