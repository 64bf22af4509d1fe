"""A run's metric points and output lines, buffered and flushed by the shared writer.

Logging must cost microseconds, and a flush must never wait on the catalog lock (see
`mlyard.storage.buffered_writer`). Readers therefore see what was logged up to the last
flush (about a second). Each flush also beats the run's heartbeat, so a run whose
process died is noticed.

The run's start (its row, params and tags) waits for the run's first unit of work: a
flush, a param or artifact it records. A unit of work costs DuckDB milliseconds of
attaching, committing and checkpointing whatever it writes, so a run that ends within
`START_DELAY` never has one of its own: its start goes with its end into the spool.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import pyarrow as pa

from mlyard.storage.buffered_writer import BufferedWriter
from mlyard.storage.catalog import Catalog
from mlyard.storage.engine import Connection
from mlyard.storage.runs_store import (
    LOG_SCHEMA,
    METRIC_SCHEMA,
    RunRecord,
    insert_run,
    touch_heartbeat,
)

Point = tuple[str, float, int, float]  # key, value, step, timestamp
Line = tuple[int, float, str, str]  # seq, timestamp, stream, text
START_DELAY = 0.1  # seconds before a run not yet stored is flushed, start and all


class MetricBuffer(BufferedWriter):
    """Collects one run's points and lines and flushes them."""

    def __init__(
        self,
        catalog: Catalog,
        run_id: str,
        flush_interval: float = 1.0,
        max_points: int = 200_000,
        heartbeat_interval: float = 5.0,
        start: RunRecord | None = None,
    ) -> None:
        super().__init__(
            catalog, f"mlyard-flush-{run_id[:8]}",
            {"metrics": partial(_table, run_id, METRIC_SCHEMA),
             "logs": partial(_table, run_id, LOG_SCHEMA)},
            flush_interval=flush_interval, max_rows=max_points, keepalive=heartbeat_interval,
            first_flush=None if start is None else min(START_DELAY, flush_interval))
        self.run_id = run_id
        self._next_line = 0
        self._start = start
        self._flushed_start: RunRecord | None = None

    @contextmanager
    def unit(self, timeout: float | None = None) -> Iterator[Connection]:
        """A unit of work about this run; the first one also stores the run's start."""
        start = None
        try:
            with self.catalog.session(timeout) as con:
                start = self._write_start(con)
                yield con
        except BaseException:
            self._restore(start)
            raise

    def take_start(self) -> RunRecord | None:
        """The run's start if no unit of work stored it, for the caller to store (at the
        run's end, once the flusher has stopped)."""
        start, self._start = self._start, None
        return start

    def add(self, point: Point) -> None:
        self.add_row("metrics", point)

    def extend(self, points: list[Point]) -> None:
        self.add_rows("metrics", points)

    def add_lines(self, stream: str, lines: list[str]) -> None:
        """Output lines, numbered here so their order survives spooling."""
        now = time.time()
        with self._guard:
            first, self._next_line = self._next_line, self._next_line + len(lines)
        self.add_rows("logs", [(first + i, now, stream, text) for i, text in enumerate(lines)])

    def store(self, batches: dict[str, pa.Table], now: float) -> bool:
        self._flushed_start = None
        try:
            stored = super().store(batches, now)
        except BaseException:
            self._restore(self._flushed_start)
            raise
        if not stored:
            self._restore(self._flushed_start)
        return stored

    def after_write(self, con: Connection, now: float) -> None:
        self._flushed_start = self._write_start(con)
        touch_heartbeat(con, self.run_id, now)

    def _write_start(self, con: Connection) -> RunRecord | None:
        """Store the start if no unit did yet; return it, to be put back if this unit
        fails. Units of one catalog take turns, so only one of them takes it."""
        start, self._start = self._start, None
        if start is not None:
            try:
                insert_run(con, start)
            except BaseException:
                self._start = start  # the caller never got it to put back
                raise
        return start

    def _restore(self, start: RunRecord | None) -> None:
        if start is not None:
            self._start = start


def _table(run_id: str, schema: pa.Schema, rows: Sequence[tuple[object, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array([run_id] * len(rows), pa.string())]
    arrays += [pa.array(column, field.type) for column, field in zip(columns, list(schema)[1:],
                                                                      strict=True)]
    return pa.table(arrays, schema=schema)
