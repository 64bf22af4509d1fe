"""The one buffered writer behind every high-rate stream (a run's metric points and log
lines, a server's predictions).

Adding a row costs a list append; a background thread flushes about once a second, and
soon after the first row that arrives after a quiet second (a lone request is in the
catalog by the time the script's next command reads it, not a second later). A flush
never waits on the catalog lock: when the lock is busy (or the catalog cannot take
the batch) each batch becomes a spool segment that whoever next holds the lock loads.
A flush that fails outright (a full disk, a read-only workspace, any error at all) puts
its rows back and the thread retries with backoff; it never drops rows silently and
never dies. Only past `max_pending` rows does it drop the oldest, and counts them, so
the owner can say so (a run's end, a server's /health and /metrics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from mlyard.storage import spool
from mlyard.storage.catalog import Catalog, insert_batch
from mlyard.storage.engine import Connection
from mlyard.storage.errors import MlyardError

Batches = dict[str, pa.Table]  # spool kind -> rows
TableMaker = Callable[[Sequence[Any]], pa.Table]
MAX_BACKOFF = 30.0  # seconds between retries while writes keep failing
# After a quiet spell, how long the first row waits for its companions (a request's
# shadow scores, the next lines of a burst) before they are written together.
GATHER = 0.1

log = logging.getLogger("mlyard.writer")


class BufferedWriter:
    """Rows by spool kind, flushed together by one background thread.

    Args:
        tables: for each kind this writer takes, how its buffered rows become a table
            with the columns of that kind's catalog table.
        keepalive: also open a unit of work this often when nothing is buffered, so
            `after_write` runs (a run's heartbeat); None for no keepalive.
        max_pending: rows kept while writes fail; past it the oldest are dropped and
            counted in `dropped`.
        first_flush: seconds before the first flush, when it should come sooner than
            `flush_interval`.
    """

    def __init__(self, catalog: Catalog, name: str, tables: Mapping[str, TableMaker],
                 flush_interval: float = 1.0, max_rows: int = 200_000,
                 keepalive: float | None = None, max_pending: int = 5_000_000,
                 first_flush: float | None = None) -> None:
        self.catalog = catalog
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.keepalive = keepalive
        self.max_pending = max_pending
        self.spooled_segments = 0
        self.dropped = 0  # rows given up after `max_pending` (never silently: counted)
        self.failures = 0  # flushes that failed in a row; 0 once one succeeds
        self.last_error: str | None = None  # why the last failed flush failed
        self._tables = dict(tables)
        self._rows: dict[str, list[Any]] = {kind: [] for kind in tables}
        self._guard = threading.Lock()
        self._flush_guard = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_write = 0.0
        self._last_flush = 0.0  # time.monotonic() of the last flush that had rows
        self._first_flush = first_flush
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written anywhere."""
        with self._guard:
            return sum(len(rows) for rows in self._rows.values())

    def add_row(self, kind: str, row: Any) -> None:
        with self._guard:
            buffered = self._rows[kind]
            first = not buffered
            buffered.append(row)
            full = len(buffered) >= self.max_rows
        if full or (first and self._quiet()):
            self._wake.set()

    def add_rows(self, kind: str, rows: Sequence[Any]) -> None:
        with self._guard:
            buffered = self._rows[kind]
            first = not buffered
            buffered.extend(rows)
            full = len(buffered) >= self.max_rows
        if full or (first and self._quiet()):
            self._wake.set()

    def _quiet(self) -> bool:
        """Nothing was flushed for a whole interval: under a steady stream this is never
        true, so the once-a-second batching is what it was."""
        return time.monotonic() - self._last_flush >= self.flush_interval

    def after_write(self, con: Connection, now: float) -> None:
        """Called inside every unit of work that wrote to the catalog."""

    def store(self, batches: Batches, now: float) -> bool:
        """Write `batches` where they belong; False when that place is busy now (the
        batches then go to the spool). Writers of files override this."""
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

    def flush(self) -> None:
        """Write what is buffered now: where it belongs if free, else into the spool.

        Raises what the write raised, after putting the rows back for the next try.
        """
        with self._flush_guard:
            taken = self._take()
            try:
                batches = self._batches(taken)
                if not self.store(batches, time.time()):
                    for kind, batch in batches.items():
                        self.spool(kind, batch)
            except BaseException as exc:
                self._put_back(taken)
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                raise
            self.failures = 0
            self.last_error = None

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
                buffered = self._rows[kind]
                buffered[:0] = rows
                over = len(buffered) - self.max_pending
                if over > 0:
                    del buffered[:over]
                    self.dropped += over

    def _batches(self, taken: dict[str, list[Any]]) -> Batches:
        return {kind: self._tables[kind](rows) for kind, rows in taken.items() if rows}

    def _loop(self) -> None:
        first = self._first_flush
        while not self._stop.is_set():
            delay = min(MAX_BACKOFF, self.flush_interval * 2 ** min(self.failures, 5))
            if first is not None:
                delay, first = first, None
            if self._wake.wait(delay) and self.pending < self.max_rows:
                self._stop.wait(GATHER)  # woken by a first row after quiet: gather a little
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.pending:  # an idle tick writes nothing: the quiet spell goes on
                self._last_flush = time.monotonic()
            try:
                self.flush()
            except Exception as exc:  # kept for the next try; this thread must not die
                log.warning("%s: writing %d buffered rows failed (%s); retrying",
                            self._thread.name, self.pending, exc)


def write_batches(con: Connection, batches: Batches) -> None:
    """Insert batches inside the caller's unit of work."""
    for kind, batch in batches.items():
        insert_batch(con, kind, batch)
