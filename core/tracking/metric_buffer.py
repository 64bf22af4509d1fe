"""In-memory buffer for a run's metric points and output lines, flushed in batches by a
background thread.

Logging must cost microseconds, and a flush must never wait on the catalog lock: when
the lock is busy each batch is written to a spool segment, and whoever next holds the
lock loads it. Readers therefore see what was logged up to the last flush (about a
second).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pyarrow as pa

from mlyard.storage import spool
from mlyard.storage.catalog import Catalog
from mlyard.storage.errors import MlyardError
from mlyard.storage.runs_store import (
    LOG_SCHEMA,
    METRIC_SCHEMA,
    insert_logs,
    insert_metrics,
    touch_heartbeat,
)

Point = tuple[str, float, int, float]  # key, value, step, timestamp
Line = tuple[int, float, str, str]  # seq, timestamp, stream, text
Batches = dict[str, pa.Table]  # spool kind ("metrics", "logs") -> rows

_LOADERS = {"metrics": insert_metrics, "logs": insert_logs}


class MetricBuffer:
    """Collects one run's points and lines and flushes them."""

    def __init__(
        self,
        catalog: Catalog,
        run_id: str,
        flush_interval: float = 1.0,
        max_points: int = 200_000,
        heartbeat_interval: float = 5.0,
    ) -> None:
        self.catalog = catalog
        self.run_id = run_id
        self.flush_interval = flush_interval
        self.max_points = max_points
        self.heartbeat_interval = heartbeat_interval
        self.spooled_segments = 0
        self._points: list[Point] = []
        self._lines: list[Line] = []
        self._next_line = 0
        self._guard = threading.Lock()
        self._flush_guard = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_heartbeat = 0.0
        self._thread = threading.Thread(target=self._loop, name=f"mlyard-flush-{run_id[:8]}")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def add(self, point: Point) -> None:
        with self._guard:
            self._points.append(point)
            full = len(self._points) >= self.max_points
        if full:
            self._wake.set()

    def extend(self, points: list[Point]) -> None:
        with self._guard:
            self._points.extend(points)
            full = len(self._points) >= self.max_points
        if full:
            self._wake.set()

    def add_lines(self, stream: str, lines: list[str]) -> None:
        """Output lines, numbered here so their order survives spooling."""
        now = time.time()
        with self._guard:
            for text in lines:
                self._lines.append((self._next_line, now, stream, text))
                self._next_line += 1

    def flush(self) -> None:
        """Write what is buffered now: into the catalog if free, else into the spool."""
        with self._flush_guard:
            points, lines = self._take()
            now = time.time()
            batches = self._batches(points, lines)
            if self._write_to_catalog(batches, now):
                return
            try:
                for kind, batch in batches.items():
                    self.spool(kind, batch)
            except BaseException:
                with self._guard:
                    self._points[:0] = points
                    self._lines[:0] = lines
                raise

    def stop(self) -> None:
        """Stop the background flusher; what is still buffered stays for `drain`."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def drain(self) -> Batches:
        """Take everything buffered as batches by kind (empty when nothing is left)."""
        return self._batches(*self._take())

    def spool(self, kind: str, batch: pa.Table) -> None:
        """Keep a batch that could not reach the catalog, for the next session to load."""
        spool.write_segment(self.catalog.spool_dir, kind, batch)
        self.spooled_segments += 1

    def _take(self) -> tuple[list[Point], list[Line]]:
        with self._guard:
            points, self._points = self._points, []
            lines, self._lines = self._lines, []
        return points, lines

    def _batches(self, points: list[Point], lines: list[Line]) -> Batches:
        batches = {}
        if points:
            batches["metrics"] = _table(self.run_id, points, METRIC_SCHEMA)
        if lines:
            batches["logs"] = _table(self.run_id, lines, LOG_SCHEMA)
        return batches

    def _write_to_catalog(self, batches: Batches, now: float) -> bool:
        try:
            with self.catalog.try_session() as con:
                if con is None:
                    return False
                write(con, batches)
                touch_heartbeat(con, self.run_id, now)
        except MlyardError:
            # The catalog could not take the batch (for example it could not be opened);
            # the spool keeps it until a later session can.
            return False
        self._last_heartbeat = now
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._guard:
                pending = bool(self._points or self._lines)
            if pending or time.time() - self._last_heartbeat >= self.heartbeat_interval:
                try:
                    self.flush()
                except OSError:
                    # The rows went back into the buffer; the run's end writes them
                    # again and reports the error to the caller if it persists.
                    continue


def write(con: object, batches: Batches) -> None:
    """Insert batches inside the caller's unit of work."""
    for kind, batch in batches.items():
        _LOADERS[kind](con, batch)  # type: ignore[arg-type]


def _table(run_id: str, rows: Sequence[tuple[object, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array([run_id] * len(rows), pa.string())]
    arrays += [pa.array(column, field.type) for column, field in zip(columns, list(schema)[1:],
                                                                      strict=True)]
    return pa.table(arrays, schema=schema)
