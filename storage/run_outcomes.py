"""A few reserved bytes per running run, so that its outcome can be written even on a
full disk.

A run's final status goes to the catalog; when the disk is full neither the catalog's
log nor the spool can take it, and the run would later show only as `crashed`. At start
each run gets a small file with its blocks already allocated; overwriting allocated
blocks needs no free space, so the outcome (`failed` and why) is recorded there, and the
next unit of work that notices the run is gone applies it instead of `crashed`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SIZE = 4096  # one block: the status and the first few thousand characters of the reason


def reserve(folder: Path, run_id: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.outcome"
    with open(path, "wb") as handle:
        handle.write(b" " * SIZE)
        handle.flush()
        # Blocks allocated now, not at some later write-back (delayed allocation).
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(handle.fileno(), 0, SIZE)
        else:
            os.fsync(handle.fileno())


def record(folder: Path, run_id: str, status: str, error: str | None) -> bool:
    """Write the outcome into the run's reserved block; False when it has none."""
    data = json.dumps({"status": status, "error": (error or "")[: SIZE - 200]}).encode()
    try:
        with open(folder / f"{run_id}.outcome", "r+b") as handle:
            handle.write(data.ljust(SIZE))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        return False
    return True


def read(folder: Path, run_id: str) -> tuple[str, str | None] | None:
    """The recorded outcome, or None (none reserved, or reserved and never written)."""
    try:
        text = (folder / f"{run_id}.outcome").read_bytes().strip()
        outcome = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    if not isinstance(outcome, dict) or "status" not in outcome:
        return None
    return str(outcome["status"]), outcome.get("error") or None


def release(folder: Path, run_id: str) -> None:
    (folder / f"{run_id}.outcome").unlink(missing_ok=True)
