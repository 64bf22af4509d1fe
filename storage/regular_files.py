"""Only regular files are read from the workspace's folders.

Opening a FIFO blocks until something writes to it, so one named like a spool segment or
a log file once hung every command; a directory or a link named like a file fails or
leads elsewhere. Listings of the spool, the logs and the quarantine pass through
`regular`, which moves anything else aside (to `set-aside/` beside it, with a reason
file), says so on stderr and raises an `alert.workspace` (an event left in the spool,
which the next unit of work loads), so the rest is read as usual.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from mlyard.storage import meta_store, spool

log = logging.getLogger("mlyard.storage")

SET_ASIDE = "set-aside"


def is_regular(path: Path) -> bool:
    """A regular file, not a link to one (checked without opening it)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def kind_of(path: Path) -> str:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "gone"
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISLNK, "a link"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def regular(paths: Iterable[Path]) -> list[Path]:
    """The regular files among `paths`; every other entry is moved aside."""
    kept = []
    for path in paths:
        if is_regular(path):
            kept.append(path)
        elif path.exists() or path.is_symlink():
            set_aside(path, f"{kind_of(path)}, not a regular file; mlyard never reads one")
    return kept


def set_aside(path: Path, reason: str, folder: Path | None = None) -> Path | None:
    """Move `path` to `folder` (default: `set-aside/` beside it) with a `.reason.json`;
    None when it cannot be moved (it is then skipped, and said again next time)."""
    folder = folder or path.parent / SET_ASIDE
    target = folder / f"{int(time.time())}-{path.name}"
    try:
        folder.mkdir(exist_ok=True)
        os.replace(path, target)
        (folder / (target.name + ".reason.json")).write_text(json.dumps(
            {"was": str(path), "reason": reason, "moved_at": time.time()}))
    except OSError as exc:
        log.error("%s: %s; skipped (could not move it aside: %s)", path, reason, exc)
        return None
    log.error("%s: %s; moved to %s", path, reason, target)
    _alert(path, target, reason)
    return target


def _alert(path: Path, target: Path, reason: str) -> None:
    """An `alert.workspace` event, through the spool of the workspace `path` is in."""
    workspace = next((p for p in path.parents if (p / "catalog.duckdb").is_file()), None)
    if workspace is None:
        return
    try:
        spool.write_segment(workspace / "spool", "events", meta_store.event_segment(
            "alert.workspace", path.name, "mlyard",
            {"severity": "error", "was": str(path), "moved_to": str(target),
             "reason": reason}))
    except OSError as exc:  # a full disk: the stderr line above still says it
        log.error("%s: could not raise its alert (%s)", path, exc)
