"""Served predictions as append-only Parquet files, one folder per model and day:

    .mlyard/logs/predictions/model=churn/date=2026-12-01/<time>-<id>.parquet

They never go into the catalog: a stream that grows with traffic made the catalog too
large to checkpoint under the engine's memory cap, and then every process failed. A file
appears whole (written under a temporary name, then renamed), so readers list the
folders and read with DuckDB's `read_parquet` without taking the catalog lock.
Compaction merges a finished day's files into one; retention removes whole days.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from mlyard.storage.engine import engine_unit
from mlyard.storage.regular_files import regular

SUFFIX = ".parquet"
PENDING = ".partial"
MANIFEST = "compacting.json"  # present only while a day is being compacted
LOCK = "compacting.lock"  # in a model's folder while one of its days is merged
MERGED = "compacted"  # the end of a merged file's name
GATHER_AT = 256  # a day's flushes merged into one file once there are this many

MERGE_BATCH_ROWS = 20_000  # rows in memory at a time while a day is compacted
PREDICTION_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", pa.float64()),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("rows", pa.int32()),
        # JSON arrays, one element per scored row, as text: parsing them on the serving
        # hot path would cost more than the scoring
        ("inputs", pa.string()),
        ("outputs", pa.string()),
    ]
)
# Then a column per key the server keeps (`key_column`): one text per scored row, so
# feedback joins labels by id and breaks figures down by segment without decoding the
# rows' JSON (1,000,000 logged rows took 2.4 s to decode, bench/bench_segments.py).
KEY_PREFIX = "key:"


def key_column(name: str) -> str:
    return KEY_PREFIX + name


def log_schema(keys: Sequence[str]) -> pa.Schema:
    """The log's columns for a server keeping `keys` (the id, then segment columns)."""
    schema = PREDICTION_SCHEMA
    for name in keys:
        schema = schema.append(pa.field(key_column(name), pa.list_(pa.string())))
    return schema


def model_dir(root: Path, model: str) -> Path:
    return root / f"model={quote(model, safe='')}"


SECONDS_PER_DAY = 86_400


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def write(root: Path, batch: pa.Table, name: str | None = None,
          schema: pa.Schema = PREDICTION_SCHEMA) -> list[Path]:
    """Write logged requests, one file per model and day; return the files written.
    With `name`, each file is called that (rewriting the same batch replaces it). Any
    log of `schema` with `model` and `ts` columns is kept the same way (a shadow's)."""
    # Grouped by Arrow, not row by row in Python: a second of a busy server's requests
    # took 6 ms of a loop holding the GIL, which every request in flight then waited for.
    days = pc.floor(pc.divide(batch.column("ts"), float(SECONDS_PER_DAY)))
    keys = pa.table({"model": batch.column("model"), "day": days})
    written = []
    groups = keys.group_by(["model", "day"]).aggregate([]).to_pylist()
    for group in groups:
        model, day = group["model"], group["day"]
        # Almost always one model and one day: the batch as it is, not a copy of it.
        rows = batch if len(groups) == 1 else batch.filter(
            pc.and_(pc.equal(batch.column("model"), model), pc.equal(days, day)))
        written.append(write_whole(model_dir(root, model) /
                                   f"date={day_of(day * SECONDS_PER_DAY)}",
                                   rows.cast(schema), name))
    return written


def write_whole(folder: Path, table: pa.Table, name: str | None = None) -> Path:
    """`table` as one Parquet file in `folder` that readers see whole or not at all
    (written under a temporary name, flushed to disk, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
    pending = folder / (name + PENDING)
    pq.write_table(table, pending, compression="zstd")
    with open(pending, "rb") as handle:
        os.fsync(handle.fileno())
    final = folder / (name + SUFFIX)
    os.replace(pending, final)
    return final


def day_dirs(root: Path, model: str) -> list[Path]:
    """The model's day folders, oldest first."""
    folder = model_dir(root, model)
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if d.is_dir() and d.name.startswith("date="))


def files(root: Path, model: str, since: float = 0.0) -> list[str]:
    """Every whole file of `model` that may hold requests at or after `since`."""
    first_day = f"date={day_of(since)}" if since > 0 else ""
    found: list[str] = []
    for day in day_dirs(root, model):
        if day.name >= first_day:
            found += [str(p) for p in regular(sorted(day.glob("*" + SUFFIX)))
                      if p.name not in _being_replaced(day)]
    return found


def _being_replaced(day: Path) -> set[str]:
    """Files a compaction has already merged, when its merged file is in place."""
    manifest = day / MANIFEST
    try:
        plan = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return set()
    return set(plan["sources"]) if (day / plan["merged"]).exists() else set()


def read(root: Path, model: str, since: float = 0.0, until: float | None = None,
         max_rows: int | None = None) -> list[tuple[Any, ...]]:
    """Requests to `model` logged in [since, until) as (ts, version, inputs, outputs),
    oldest first; with `max_rows`, only the newest requests holding about that many rows.

    Read file by file, newest first, with pyarrow (not under the engine's small memory
    cap), so a window of millions of rows costs what the rows asked for, no more.
    """
    until = until or time.time() + 1
    tables, held = [], 0
    for path in reversed(files(root, model, since)):
        table = pq.read_table(path, columns=["ts", "version", "rows", "inputs", "outputs"],
                              filters=[("ts", ">=", since), ("ts", "<", until)])
        if max_rows is not None and held + sum(table.column("rows").to_pylist()) > max_rows:
            table = table.sort_by([("ts", "descending")])
            totals = accumulate(table.column("rows").to_pylist(), initial=held)
            keep = next((i for i, total in enumerate(list(totals)[1:]) if total > max_rows),
                        table.num_rows)
            tables.append(table.slice(0, keep))
            break
        tables.append(table)
        held += sum(table.column("rows").to_pylist())
    if not tables:
        return []
    merged = pa.concat_tables(tables).sort_by("ts")
    return list(zip(*(merged.column(c).to_pylist()
                      for c in ("ts", "version", "inputs", "outputs")), strict=True))


def read_keyed(root: Path, model: str, id_column: str, keys: Sequence[str]
               ) -> tuple[pa.Table | None, pa.Table | None]:
    """Every request logged for `model`, for joining labels by `id_column`: (ts,
    version, outputs and the key columns among `id_column` and `keys`) from files that
    kept the id beside the rows, and (ts, version, inputs, outputs) from files that did
    not (written before mlyard kept keys, or by a server without an id column)."""
    keyed, unkeyed = [], []
    plain = ["ts", "version", "inputs", "outputs"]
    for path in files(root, model, 0.0):
        # ParquetFile, not read_table: that loads pyarrow.dataset and pandas (0.3 s).
        file = pq.ParquetFile(path)
        names = set(file.schema_arrow.names)
        if key_column(id_column) not in names:
            unkeyed.append(file.read(columns=plain))
            continue
        kept = [key_column(name) for name in dict.fromkeys([id_column, *keys])
                if key_column(name) in names]
        table = file.read(columns=["ts", "version", "outputs", *kept])
        without = pc.is_null(table.column(key_column(id_column)))
        if pc.any(without).as_py():  # a compacted day that began before keys were kept
            unkeyed.append(file.read(columns=plain).filter(without))
            table = table.filter(pc.invert(without))
        keyed.append(table)
    return _together(keyed), _together(unkeyed)


def _together(tables: list[pa.Table]) -> pa.Table | None:
    """Files of servers keeping different segments as one table: a key one did not keep
    is null there."""
    return pa.concat_tables(tables, promote_options="default") if tables else None


def recent(root: Path, model: str, limit: int) -> list[tuple[str, float, int, int, str, str]]:
    """The newest logged requests, newest first: (request id, ts, version, rows, inputs,
    outputs), for core/serving/supervisor.py's LoggedRequest."""
    paths = files(root, model)
    if not paths:
        return []
    with engine_unit() as cursor:
        found = cursor.execute(
            "SELECT request_id, ts, version, rows, inputs, outputs FROM read_parquet(?) "
            "ORDER BY ts DESC LIMIT ?", [paths[-200:], limit]).fetchall()
    return [(str(a), float(b), int(c), int(d), str(e), str(f)) for a, b, c, d, e, f in found]


def count_rows(root: Path, model: str) -> int:
    """Rows scored, over every logged request (from the files' footers and one column)."""
    paths = files(root, model)
    if not paths:
        return 0
    with engine_unit() as cursor:
        row = cursor.execute("SELECT coalesce(sum(rows), 0) FROM read_parquet(?)",
                             [paths]).fetchone()
    return int(row[0]) if row else 0


def compact(root: Path, model: str, before_day: str) -> int:
    """Merge each day before `before_day` that has several files into one file; return
    how many days were compacted."""
    return sum(_replace(day, regular(sorted(day.glob("*" + SUFFIX))), at_least=2)
               for day in day_dirs(root, model) if day.name < f"date={before_day}")


def gather(root: Path, model: str, day: str) -> bool:
    """Merge the day's flushes so far (not what was merged before) into one file once
    there are GATHER_AT of them. A server flushing once a second writes 3,600 files an
    hour, and every reader opens each; `compact` merges the whole day once it is over."""
    folder = model_dir(root, model) / f"date={day}"
    if not folder.is_dir():
        return False
    flushes = [path for path in regular(sorted(folder.glob("*" + SUFFIX)))
               if not path.stem.endswith(MERGED)]
    return _replace(folder, flushes, at_least=GATHER_AT)


def _replace(day: Path, sources: list[Path], at_least: int) -> bool:
    """`sources` merged into one file, when there are `at_least` of them. Safe to
    interrupt: a manifest names the merged file and its sources, and the next call (or a
    reader) finishes or undoes it. One process at a time (two servers of one model):
    another that finds the day locked leaves it."""
    try:
        with FileLock(day.parent / LOCK, timeout=0):  # the model's folder: days stay clean
            _finish_interrupted(day)
            sources = [path for path in sources if path.exists()]
            if len(sources) < at_least:
                return False
            merged_name = f"{time.time_ns():020d}-{MERGED}"
            (day / MANIFEST).write_text(json.dumps({"merged": merged_name + SUFFIX,
                                                    "sources": [p.name for p in sources]}))
            _merge(sources, day, merged_name)
            for path in sources:
                path.unlink(missing_ok=True)
            (day / MANIFEST).unlink()
            return True
    except Timeout:
        return False


def _merge(sources: list[Path], day: Path, name: str) -> Path:
    """The sources as one file, in their order (time order: each is a flush, named by
    when it was written), streamed a batch at a time under the first one's schema. Read
    whole, one day of 2.65 M logged rows held 2.15 GB in the server that compacted it."""
    pending, final = day / (name + PENDING), day / (name + SUFFIX)
    # Every source's columns: servers keeping different keys may have written the day.
    schema = pa.unify_schemas([pq.read_schema(source) for source in sources],
                              promote_options="permissive")
    with pq.ParquetWriter(pending, schema, compression="zstd") as writer:
        for source in sources:
            for batch in pq.ParquetFile(source).iter_batches(batch_size=MERGE_BATCH_ROWS):
                writer.write_batch(batch if batch.schema == schema else _conformed(batch,
                                                                                  schema))
    with open(pending, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(pending, final)
    return final


def _conformed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` in `schema`'s columns and types, nulls for the columns it lacks."""
    return pa.RecordBatch.from_arrays(
        [batch.column(field.name).cast(field.type) if field.name in batch.schema.names
         else pa.nulls(batch.num_rows, field.type) for field in schema], schema=schema)


def _finish_interrupted(day: Path) -> None:
    manifest = day / MANIFEST
    if not manifest.exists():
        return
    try:
        plan = json.loads(manifest.read_text())
    except ValueError:
        manifest.unlink()
        return
    if (day / plan["merged"]).exists():  # merged and renamed: the sources are redundant
        for name in plan["sources"]:
            (day / name).unlink(missing_ok=True)
    # Only the merge's own unfinished file: a server's flush may be being written.
    (day / (plan["merged"].removesuffix(SUFFIX) + PENDING)).unlink(missing_ok=True)
    manifest.unlink()


def drop_before(root: Path, model: str, first_kept_day: str) -> int:
    """Remove whole days before `first_kept_day` (retention); return how many."""
    dropped = 0
    for day in day_dirs(root, model):
        if day.name < f"date={first_kept_day}":
            for path in day.iterdir():
                path.unlink()
            day.rmdir()
            dropped += 1
    return dropped


def models(root: Path) -> list[str]:
    """Every model with logged predictions."""
    if not root.is_dir():
        return []
    return sorted(unquote(d.name.removeprefix("model=")) for d in root.iterdir()
                  if d.is_dir() and d.name.startswith("model="))
