"""Processes mlyard starts and watches: is a recorded pid still alive, and the command line
that runs mlyard itself in a child process."""

from __future__ import annotations

import os
import sys


def mlyard_command(*args: str) -> list[str]:
    """`python -m mlyard ARGS` with this interpreter: the same installed mlyard as the
    parent, whether or not the `mlyard` script is on PATH (a venv that is not activated)."""
    return [sys.executable, "-m", "mlyard", *args]


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
