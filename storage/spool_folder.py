"""Loads what this process sealed into the spool soon after, many segments at a time.

A run's end is sealed into the spool rather than given a unit of work of its own: every
unit of work loads the spool before anything else, so the run reads as ended at once,
and a unit costs DuckDB about the same for one run as for a hundred. This thread then
loads a burst of ended runs in one unit, `FOLD_DELAY` after the burst began, so the
catalog file is current without waiting for the next reader; at exit it tries once more.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from mlyard.storage.catalog import Catalog

FOLD_DELAY = 0.2  # seconds a burst may gather before it is loaded

log = logging.getLogger("mlyard.spool")


class _Folder:
    def __init__(self) -> None:
        self._pending: dict[str, Catalog] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlyard-spool-folder",
                                        daemon=True)
        self._thread.start()

    def soon(self, catalog: Catalog) -> None:
        with self._guard:
            self._pending[str(catalog.path)] = catalog
        self._wake.set()

    def now(self) -> list[Catalog]:
        """Load each pending catalog's spool; return those whose lock was busy."""
        with self._guard:
            catalogs, self._pending = list(self._pending.values()), {}
        busy = []
        for catalog in catalogs:
            try:
                with catalog.try_session() as con:
                    if con is None:
                        busy.append(catalog)
            except Exception as exc:  # the segments stay sealed for the next unit
                log.warning("%s: loading the spool failed (%s); the next unit of work "
                            "will", catalog.path, exc)
        return busy

    def close(self) -> None:
        """Stop the thread, then load what is left. A daemon thread still inside DuckDB
        when the interpreter finalises aborts the process."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self.now()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._stop.wait(FOLD_DELAY)  # let the burst gather: one unit loads all of it
            self._wake.clear()
            if not self._stop.is_set():
                for catalog in self.now():  # busy now: try again shortly
                    self.soon(catalog)


_folder: tuple[int, _Folder] | None = None
_folder_guard = threading.Lock()


def _fold_at_exit() -> None:
    if _folder is not None and _folder[0] == os.getpid():
        _folder[1].close()


# Registered on import, before any run's exit hook: handlers run last-registered first,
# so the runs a script left open are ended before this loads them.
atexit.register(_fold_at_exit)


def fold_soon(catalog: Catalog) -> None:
    """Load the spool of `catalog` into it shortly (the folder is made again after a fork)."""
    global _folder
    with _folder_guard:
        if _folder is None or _folder[0] != os.getpid():
            _folder = (os.getpid(), _Folder())
        folder = _folder[1]
    folder.soon(catalog)

