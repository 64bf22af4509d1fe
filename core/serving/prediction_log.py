"""The prediction log: every scored request, written for monitoring without slowing
scoring. One record per request holds all its rows, so logging cost follows requests,
not rows.

A request appends to memory and returns; the shared buffered writer
(`mlyard.storage.buffered_writer`) writes a Parquet file about once a second into
`.mlyard/logs/predictions/` (`mlyard.storage.prediction_files`), never into the catalog,
so no amount of traffic can make the catalog too large to checkpoint. A failed write
keeps the rows and retries; rows past the cap are dropped and counted, and /health and
/metrics say so. Today's flushes are merged a few hundred at a time, old days compacted
into one file and removed after `[serve] keep_predictions`. A shadow's records
(`mlyard.storage.shadow_files`) are written the same way, by the shadow's own process,
into `.mlyard/logs/shadow/`; the server's log keeps that folder as long.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import accumulate, chain
from operator import itemgetter

import numpy as np
import polars as pl
import pyarrow as pa

from mlyard.storage import prediction_files, shadow_files
from mlyard.storage.buffered_writer import Batches, BufferedWriter
from mlyard.storage.catalog import Catalog
from mlyard.storage.prediction_files import PREDICTION_SCHEMA

# A request's typed feature rows: a frame (columnar, so a busy server holds arrays rather
# than one dict per row), or for a small request its rows as JSON already (building a
# frame per request took half its time; encoding at flush time held the GIL for tens of
# milliseconds once a second).
Inputs = pl.DataFrame | str
ARROW_NOW = 4096  # characters of a request's JSON past which it is converted when logged
GATHER_EVERY = 60.0  # seconds between looks at how many files today's log has
# A request's values of each key column the log keeps (the id, then segment columns), one
# text or None per row: a tuple or list, or for a large request an Arrow array (made
# where it was scored, or in `add`).
Keys = tuple[Sequence[str | None] | pa.Array, ...]
KEYS_NOW = 32  # rows past which a request's keys are converted when logged
# One scored request: request id, timestamp, model, version, rows, its inputs, its
# outputs as JSON (encoded with the response: at flush time a second's worth of requests
# would hold the GIL for milliseconds), and its keys. Buffered, the inputs are Arrow
# (see `add`).
Prediction = tuple[str, float, str, int, int, Inputs | pa.Array, str, Keys]
# One request as a shadow saw it, in the columns of `shadow_files.SHADOW_SCHEMA`.
ShadowRecord = tuple[str, float, str, int, int, int, str | None, str, str | None, float,
                     float, str | None]


class PredictionLog(BufferedWriter):
    """`keys`: the columns kept beside each row, in each request's `Keys` order
    (`mlyard.core.config.logged_keys`)."""

    def __init__(self, catalog: Catalog, flush_interval: float = 1.0,
                 enabled: bool = True, keep_seconds: float | None = None,
                 housekeeping_interval: float | None = 3600.0,
                 keys: tuple[str, ...] = ()) -> None:
        self.schema = prediction_files.log_schema(keys)
        super().__init__(catalog, "mlyard-prediction-log",
                         {"predictions": self._table, "shadow": _shadow_table},
                         flush_interval=flush_interval, max_pending=1_000_000)
        self.enabled = enabled
        self.root = catalog.predictions_dir
        self.shadow_root = catalog.shadow_dir
        self.keep_seconds = keep_seconds
        self.housekeeping_interval = housekeeping_interval
        self._next_housekeeping = 0.0
        self._next_gathering = 0.0
        # pyarrow's first conversion of Python values imports ~170 ms of modules; done now,
        # not in the first flush, where it held the GIL while requests waited.
        pa.array([], pa.string())
        if enabled and hasattr(pa, "jemalloc_memory_pool"):
            # The server allocates a request's JSON in Arrow about a thousand times a
            # second and frees a second's worth at once. pyarrow's default pool (mimalloc)
            # then stalled 100-row requests: p99 13 ms against 1.4 ms with jemalloc
            # (bench/bench_serve.py), which serves the same sizes again from what it kept.
            try:
                pa.set_memory_pool(pa.jemalloc_memory_pool())
            except NotImplementedError:  # a pyarrow built without it
                pass

    def add(self, rows: list[Prediction]) -> None:
        if self.enabled:
            # A large request's JSON becomes Arrow now, a few microseconds each, rather
            # than all of a second's requests at flush time: that conversion holds the GIL,
            # and for 100-row requests (~28 MB a second) it stalled every request ~30 ms a
            # second. A few rows' JSON is cheaper converted in bulk.
            # Likewise a large request's keys: ~10 µs for 100 ids now, against a
            # flush that held the GIL ~3 ms for a second of 100-row requests.
            self.add_rows("predictions", [
                (*row[:5], _arrow_text(row[5])
                 if isinstance(row[5], str) and len(row[5]) > ARROW_NOW else row[5], row[6],
                 row[7] if row[4] <= KEYS_NOW else tuple(
                     values if isinstance(values, pa.Array) else pa.array(values, pa.string())
                     for values in row[7]))
                for row in rows])

    def add_shadow(self, record: ShadowRecord) -> None:
        """A shadow's record, kept whatever `enabled` says (the shadow's process logs
        nothing else)."""
        self.add_row("shadow", record)

    def store(self, batches: Batches, now: float) -> bool:
        if "predictions" in batches:
            prediction_files.write(self.root, batches["predictions"], schema=self.schema)
        if "shadow" in batches:
            shadow_files.write(self.shadow_root, batches["shadow"])
        if self.housekeeping_interval is not None and now >= self._next_housekeeping:
            self._next_housekeeping = now + self.housekeeping_interval
            self.housekeeping(now)
        if self.housekeeping_interval is not None and now >= self._next_gathering:
            self._next_gathering = now + GATHER_EVERY
            self.gather(now)
        return True

    def gather(self, now: float) -> None:
        """Merge today's many flushes into one file (`prediction_files.gather`)."""
        today = prediction_files.day_of(now)
        for root in (self.root, self.shadow_root):
            for model in prediction_files.models(root):
                prediction_files.gather(root, model, today)

    def housekeeping(self, now: float) -> None:
        """Compact finished days into one file each; drop days past the retention."""
        today = prediction_files.day_of(now)
        for root in (self.root, self.shadow_root):
            for model in prediction_files.models(root):
                prediction_files.compact(root, model, before_day=today)
                if self.keep_seconds is not None:
                    prediction_files.drop_before(
                        root, model, prediction_files.day_of(now - self.keep_seconds))

    def _table(self, rows: Sequence[Prediction]) -> pa.Table:
        request_ids, stamps, models, versions, counts, inputs, outputs, keys = zip(
            *rows, strict=True)
        return pa.table([
            pa.array(request_ids, pa.string()), pa.array(stamps, pa.float64()),
            pa.array(models, pa.string()), pa.array(versions, pa.int32()),
            pa.array(counts, pa.int32()),
            _inputs_column(inputs),
            pa.array(outputs, pa.string()),
            *(_key_column([request[at] for request in keys], counts)
              for at in range(len(self.schema) - len(PREDICTION_SCHEMA))),
        ], schema=self.schema).combine_chunks()  # one piece: compression then sees
        # repeats across requests (written a request per chunk, each chunk was compressed
        # alone: 100 identical 4 MB bodies took 47 MB instead of 7)


def _arrow_text(text: str) -> pa.Array:
    """One string as an Arrow array, from its UTF-8 bytes and two offsets: ~5 µs for a
    100-row request's JSON, where `pa.array([text])` took ~30 µs (it validates the
    text Python has already checked)."""
    data = text.encode()
    offsets = struct.pack("<ii", 0, len(data))  # a body is capped far below 2 GiB
    return pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)])


def _shadow_table(records: Sequence[ShadowRecord]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(shadow_files.SHADOW_SCHEMA.names, record, strict=True))
         for record in records], schema=shadow_files.SHADOW_SCHEMA)


def _key_column(values: Sequence[Sequence[str | None] | pa.Array], counts: Sequence[int]
                ) -> pa.ChunkedArray | pa.Array:
    """One key's values as a list per request: runs of requests' values flattened into
    one chunk (a few rows each), each converted request its own."""
    if max(counts) == 1:  # one-row requests, the busiest traffic: no Python loop (the
        # flush holds the GIL, which every request in flight waits for)
        return pa.ListArray.from_arrays(
            pa.array(np.arange(len(values) + 1, dtype=np.int32)),
            pa.array(list(map(itemgetter(0), values)), pa.string()))
    chunks: list[pa.Array] = []
    run: list[Sequence[str | None]] = []

    def close_run() -> None:
        offsets = pa.array(list(accumulate((len(items) for items in run), initial=0)),
                           pa.int32())
        chunks.append(pa.ListArray.from_arrays(offsets, pa.array(
            list(chain.from_iterable(run)), pa.string())))
        run.clear()

    for items in values:
        if isinstance(items, pa.Array):
            if run:
                close_run()
            chunks.append(pa.ListArray.from_arrays(pa.array([0, len(items)], pa.int32()),
                                                   items))
        else:
            run.append(items)
    if run:
        close_run()
    return pa.chunked_array(chunks, pa.list_(pa.string()))


def _inputs_column(inputs: Sequence[Inputs | pa.Array]) -> pa.ChunkedArray:
    """Each request's rows as a JSON array of objects (what drift and feedback read back):
    runs of small requests' text in one chunk each, the rest as converted when logged."""
    chunks: list[pa.Array] = []
    texts: list[str] = []
    for item in inputs:
        if isinstance(item, str):
            texts.append(item)
            continue
        if texts:
            chunks.append(pa.array(texts, pa.string()))
            texts = []
        chunks.append(pa.array([item.write_json()], pa.string())
                      if isinstance(item, pl.DataFrame) else item)
    if texts:
        chunks.append(pa.array(texts, pa.string()))
    return pa.chunked_array(chunks, pa.string())
