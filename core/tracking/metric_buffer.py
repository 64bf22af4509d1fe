"""A run's metric points and output lines, buffered and flushed by the shared writer.

Logging must cost microseconds, and a flush must never wait on the catalog lock (see
`mlyard.storage.buffered_writer`). Readers therefore see what was logged up to the last
flush (about a second). Each flush also beats the run's heartbeat, so a run whose
process died is noticed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import pyarrow as pa

from mlyard.storage.buffered_writer import BufferedWriter
from mlyard.storage.catalog import Catalog, Connection
from mlyard.storage.runs_store import LOG_SCHEMA, METRIC_SCHEMA, touch_heartbeat

Point = tuple[str, float, int, float]  # key, value, step, timestamp
Line = tuple[int, float, str, str]  # seq, timestamp, stream, text


class MetricBuffer(BufferedWriter):
    """Collects one run's points and lines and flushes them."""

    def __init__(
        self,
        catalog: Catalog,
        run_id: str,
        flush_interval: float = 1.0,
        max_points: int = 200_000,
        heartbeat_interval: float = 5.0,
    ) -> None:
        super().__init__(
            catalog, f"mlyard-flush-{run_id[:8]}",
            {"metrics": partial(_table, run_id, METRIC_SCHEMA),
             "logs": partial(_table, run_id, LOG_SCHEMA)},
            flush_interval=flush_interval, max_rows=max_points, keepalive=heartbeat_interval)
        self.run_id = run_id
        self._next_line = 0

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

    def after_write(self, con: Connection, now: float) -> None:
        touch_heartbeat(con, self.run_id, now)


def _table(run_id: str, schema: pa.Schema, rows: Sequence[tuple[object, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array([run_id] * len(rows), pa.string())]
    arrays += [pa.array(column, field.type) for column, field in zip(columns, list(schema)[1:],
                                                                      strict=True)]
    return pa.table(arrays, schema=schema)
