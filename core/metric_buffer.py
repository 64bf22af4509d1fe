"""In-memory buffer for metric points, flushed in batches by a background thread.

Logging a point must cost microseconds, and a flush must never wait on the catalog lock:
when the lock is busy the batch is written to a spool segment, and whoever next holds
the lock loads it. Readers therefore see points up to the last flush (about a second).
"""

from __future__ import annotations

import threading
import time

import pyarrow as pa

from storage import spool
from storage.catalog import Catalog
from storage.errors import MlyardError
from storage.runs_store import METRIC_SCHEMA, insert_metrics, touch_heartbeat

Point = tuple[str, float, int, float]  # key, value, step, timestamp


class MetricBuffer:
    """Collects (key, value, step, ts) points for one run and flushes them."""

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

    def flush(self) -> None:
        """Write buffered points now: into the catalog if free, else into the spool."""
        with self._flush_guard:
            with self._guard:
                points, self._points = self._points, []
            now = time.time()
            batch = _to_table(self.run_id, points) if points else None
            if self._write_to_catalog(batch, now):
                return
            if batch is None:
                return
            try:
                self.spool(batch)
            except BaseException:
                with self._guard:
                    self._points[:0] = points
                raise

    def stop(self) -> None:
        """Stop the background flusher; points still buffered stay for `drain`."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def drain(self) -> pa.Table | None:
        """Take every buffered point as one batch (None when empty)."""
        with self._guard:
            points, self._points = self._points, []
        return _to_table(self.run_id, points) if points else None

    def spool(self, batch: pa.Table) -> None:
        """Keep a batch that could not reach the catalog, for the next session to load."""
        spool.write_segment(self.catalog.spool_dir, "metrics", batch)
        self.spooled_segments += 1

    def _write_to_catalog(self, batch: pa.Table | None, now: float) -> bool:
        try:
            with self.catalog.try_session() as con:
                if con is None:
                    return False
                if batch is not None:
                    insert_metrics(con, batch)
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
                pending = bool(self._points)
            if pending or time.time() - self._last_heartbeat >= self.heartbeat_interval:
                try:
                    self.flush()
                except OSError:
                    # The points went back into the buffer; the run's end writes them
                    # again and reports the error to the caller if it persists.
                    continue


def _to_table(run_id: str, points: list[Point]) -> pa.Table:
    keys, values, steps, stamps = zip(*points, strict=True)
    return pa.table(
        [
            pa.array([run_id] * len(points), pa.string()),
            pa.array(keys, pa.string()),
            pa.array(values, pa.float64()),
            pa.array(steps, pa.int64()),
            pa.array(stamps, pa.float64()),
        ],
        schema=METRIC_SCHEMA,
    )
