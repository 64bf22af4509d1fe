"""This process's in-memory DuckDB: the one engine every catalog unit of work and every
read of the prediction files runs on."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import duckdb

# DuckDB keeps pages it read as cache up to its memory limit (by default most of RAM), so
# one checkpoint over a large prediction log left a serving process holding ~750 MB.
# The catalog's queries are small; capping the cache keeps every process lean, and a
# temp directory lets the rare big query spill instead of failing.
ENGINE_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "memory_limit": "64MB",
    "temp_directory": str(Path(tempfile.gettempdir()) / f"mlyard-duckdb-{os.getuid()}"),
}

# The one name for a DuckDB connection, for every signature in storage and core.
Connection = duckdb.DuckDBPyConnection

_engine: tuple[int, duckdb.DuckDBPyConnection] | None = None
_engine_guard = threading.Lock()


def _close_before_fork() -> None:
    """A child forked while DuckDB's worker threads live hangs in its first connect (they
    do not cross the fork, the state they hold does): so the engine is closed before a
    fork, when no other thread is opening it, and each side opens its own when next
    needed. The engine holds nothing that lasts: every unit of work attaches the file."""
    global _engine
    if _engine_guard.acquire(blocking=False):
        try:
            if _engine is not None and _engine[0] == os.getpid():
                _engine[1].close()
                _engine = None
        finally:
            _engine_guard.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_before_fork)


def engine_cursor() -> duckdb.DuckDBPyConnection:
    """A new cursor on this process's in-memory DuckDB (made again after a fork)."""
    global _engine
    with _engine_guard:
        if _engine is None or _engine[0] != os.getpid():
            _engine = (os.getpid(), duckdb.connect(":memory:", config=ENGINE_CONFIG))
        return _engine[1].cursor()
