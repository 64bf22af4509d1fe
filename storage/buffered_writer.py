"""The one buffered writer behind every high-rate stream (a run's metric points and log
lines, a server's predictions).

Adding a row costs a list append; a background thread flushes about once a second. A
flush never waits on the catalog lock: when the lock is busy (or the catalog cannot take
the batch) each batch becomes a spool segment that whoever next holds the lock loads.
A flush whose spool write fails too puts its rows back, so the next flush (or the
owner's final drain) tries them again instead of dropping them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from mlyard.storage import spool
from mlyard.storage.catalog import Catalog, Connection, insert_batch
from mlyard.storage.errors import MlyardError

Batches = dict[str, pa.Table]  # spool kind -> rows
TableMaker = Callable[[Sequence[Any]], pa.Table]


class BufferedWriter:
    """Rows by spool kind, flushed together by one background thread.

    Args:
        tables: for each kind this writer takes, how its buffered rows become a table
            with the columns of that kind's catalog table.
        keepalive: also open a unit of work this often when nothing is buffered, so
            `after_write` runs (a run's heartbeat); None for no keepalive.
    """

    def __init__(self, catalog: Catalog, name: str, tables: Mapping[str, TableMaker],
                 flush_interval: float = 1.0, max_rows: int = 200_000,
                 keepalive: float | None = None) -> None:
        self.catalog = catalog
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.keepalive = keepalive
        self.spooled_segments = 0
        self._tables = dict(tables)
        self._rows: dict[str, list[Any]] = {kind: [] for kind in tables}
        self._guard = threading.Lock()
        self._flush_guard = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_write = 0.0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add_row(self, kind: str, row: Any) -> None:
        with self._guard:
            buffered = self._rows[kind]
            buffered.append(row)
            full = len(buffered) >= self.max_rows
        if full:
            self._wake.set()

    def add_rows(self, kind: str, rows: Sequence[Any]) -> None:
        with self._guard:
            buffered = self._rows[kind]
            buffered.extend(rows)
            full = len(buffered) >= self.max_rows
        if full:
            self._wake.set()

    def after_write(self, con: Connection, now: float) -> None:
        """Called inside every unit of work that wrote to the catalog."""

    def flush(self) -> None:
        """Write what is buffered now: into the catalog if free, else into the spool."""
        with self._flush_guard:
            taken = self._take()
            batches = self._batches(taken)
            if self._write_to_catalog(batches, time.time()):
                return
            try:
                for kind, batch in batches.items():
                    self.spool(kind, batch)
            except BaseException:
                self._put_back(taken)
                raise

    def stop(self) -> None:
        """Stop the background flusher; what is still buffered stays for `drain`."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self.stop()
        self.flush()

    def drain(self) -> Batches:
        """Take everything buffered as batches by kind (empty when nothing is left)."""
        return self._batches(self._take())

    def spool(self, kind: str, batch: pa.Table) -> None:
        """Keep a batch that could not reach the catalog, for the next session to load."""
        spool.write_segment(self.catalog.spool_dir, kind, batch)
        self.spooled_segments += 1

    def _take(self) -> dict[str, list[Any]]:
        with self._guard:
            taken, self._rows = self._rows, {kind: [] for kind in self._tables}
        return taken

    def _put_back(self, taken: dict[str, list[Any]]) -> None:
        with self._guard:
            for kind, rows in taken.items():
                self._rows[kind][:0] = rows

    def _batches(self, taken: dict[str, list[Any]]) -> Batches:
        return {kind: self._tables[kind](rows) for kind, rows in taken.items() if rows}

    def _write_to_catalog(self, batches: Batches, now: float) -> bool:
        if not batches and (self.keepalive is None or now - self._last_write < self.keepalive):
            return True
        try:
            with self.catalog.try_session() as con:
                if con is None:
                    return False
                write_batches(con, batches)
                self.after_write(con, now)
        except MlyardError:
            # The catalog could not take the batch (for example it could not be opened);
            # the spool keeps it until a later session can.
            return False
        self._last_write = now
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except OSError:
                continue  # the rows went back into the buffer; the next flush retries


def write_batches(con: Connection, batches: Batches) -> None:
    """Insert batches inside the caller's unit of work."""
    for kind, batch in batches.items():
        insert_batch(con, kind, batch)
