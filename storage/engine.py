"""This process's in-memory DuckDB: the one engine every catalog unit of work and every
read of the prediction files runs on."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
_in_use = 0  # cursors handed out by engine_unit and not yet closed (under the guard)
_engine_guard = threading.Lock()


def _close_before_fork() -> None:
    """A child forked while DuckDB's worker threads live hangs in its first connect (they
    do not cross the fork, the state they hold does): so the engine is closed before a
    fork when no cursor of it is in use here (closing it would close theirs), and each
    side opens its own when next needed. The engine holds nothing that lasts: every
    unit of work attaches the file."""
    global _engine
    if _engine_guard.acquire(blocking=False):
        try:
            if _engine is not None and _engine[0] == os.getpid() and _in_use == 0:
                _engine[1].close()
                _engine = None
        finally:
            _engine_guard.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_before_fork)


@contextmanager
def engine_unit() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on this process's in-memory DuckDB (made again after a fork) for one piece
    of work, closed at its end."""
    global _engine, _in_use
    with _engine_guard:
        if _engine is None or _engine[0] != os.getpid():
            _engine, _in_use = (os.getpid(), duckdb.connect(":memory:", config=ENGINE_CONFIG)), 0
        cursor = _engine[1].cursor()
        _in_use += 1
    try:
        yield cursor
    finally:
        cursor.close()
        with _engine_guard:
            _in_use = max(0, _in_use - 1)
