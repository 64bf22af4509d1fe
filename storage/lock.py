"""One exclusive lock per catalog, shared by threads and processes.

DuckDB lets one process at a time hold a database file, so every unit of work takes this
lock first. A `filelock` lock on a sidecar file covers other processes; a threading lock
covers threads of this process, because two threads' flocks on separate descriptors
would otherwise both have to go through the kernel for every attempt.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from mlyard.storage.errors import StoreLocked

DEFAULT_TIMEOUT_S = 30.0

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def default_timeout() -> float:
    """The bounded wait for the catalog lock; `MLYARD_LOCK_TIMEOUT` overrides it."""
    raw = os.environ.get("MLYARD_LOCK_TIMEOUT")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StoreLocked(
            f"MLYARD_LOCK_TIMEOUT={raw!r}: expected a number of seconds"
        ) from None


def _thread_lock(key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


class CatalogLock:
    """Exclusive access to one catalog file, with a bounded wait."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self._thread_lock = _thread_lock(str(lock_path.resolve()))
        self._file_lock = FileLock(str(lock_path), thread_local=False)

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock; raise StoreLocked after `timeout` seconds of waiting."""
        wait = default_timeout() if timeout is None else timeout
        if not self._thread_lock.acquire(timeout=wait):
            raise self._busy(wait)
        try:
            try:
                self._file_lock.acquire(timeout=wait, poll_interval=0.005)
            except Timeout:
                raise self._busy(wait) from None
            try:
                yield
            finally:
                self._file_lock.release()
        finally:
            self._thread_lock.release()

    @contextmanager
    def try_hold(self) -> Iterator[bool]:
        """Take the lock only if it is free right now; yield whether it was taken."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            try:
                self._file_lock.acquire(timeout=0)
            except Timeout:
                yield False
                return
            try:
                yield True
            finally:
                self._file_lock.release()
        finally:
            self._thread_lock.release()

    def _busy(self, wait: float) -> StoreLocked:
        return StoreLocked(
            f"{self.lock_path.parent}: catalog still locked by another mlyard process after "
            f"{wait:g}s; retry, or raise MLYARD_LOCK_TIMEOUT"
        )
