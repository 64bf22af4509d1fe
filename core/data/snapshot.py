"""A file's checked rows stored as a Parquet object: converted batch by batch, with the
last row of each id kept, and named by its content hash."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import NamedTuple

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from mlyard.core.data.contract import ContractChecker
from mlyard.core.data.reader import read_batches
from mlyard.core.data.sniff import SniffResult
from mlyard.core.errors import IngestRefused
from mlyard.core.workspace import Workspace


class Snapshot(NamedTuple):
    """A file's cleaned rows as stored: the object, its rows, the rows dropped as repeats
    of an id, the check's warnings, and the rows themselves when the file was one batch
    (then deduplicated and profiled in memory rather than read back)."""

    digest: str
    rows: int
    repeats: int
    warnings: list[str]
    held: pl.DataFrame | None


def write_snapshot(ws: Workspace, sniffed: SniffResult, checker: ContractChecker
                    ) -> Snapshot:
    """Check and convert the file batch by batch into a Parquet object. Batches keep
    memory flat; a whole-file `sink_parquet` grows with the file."""
    tmp: Path | None = None  # made once a second batch shows the file is not one
    try:
        writer: pq.ParquetWriter | None = None
        held: pl.DataFrame | None = None  # the first batch, while it may be the only one
        try:
            for batch in read_batches(sniffed):
                typed = checker.check(batch)
                if typed is None:  # refused; read on so the refusal names every problem
                    continue
                if held is None and writer is None:
                    held = typed
                    continue
                tmp = tmp or ws.objects.new_temp(".parquet")
                for part in (held, typed):
                    if part is not None:
                        writer = _write(tmp, writer, part)
                held = None
            warnings = checker.finish()  # raises naming every problem the file has
            if writer is None and held is None:
                raise IngestRefused(f"{sniffed.path}: has no data rows")
        finally:
            if writer is not None:
                writer.close()
        if held is not None:
            return store_held(ws, held, warnings)
        assert tmp is not None  # more than one batch was written
        rows, repeats = _dedupe(ws, tmp, checker.rows)
        return Snapshot(ws.objects.adopt(tmp), rows, repeats, warnings, None)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def store_held(ws: Workspace, held: pl.DataFrame, warnings: list[str]) -> Snapshot:
    """The snapshot of a file that was one batch, from its checked rows in memory."""
    [stored] = store_all_held(ws, [(held, warnings)])
    if isinstance(stored, Exception):
        raise stored
    return stored


def store_all_held(ws: Workspace, files: list[tuple[pl.DataFrame, list[str]]]
                   ) -> list[Snapshot | Exception]:
    """`store_held` for several files, written from memory and made durable together
    (`ObjectStore.put_all`); a file that cannot be encoded gets its exception in its
    place."""
    encoded: list[tuple[bytes, pl.DataFrame, int, list[str]] | Exception] = []
    for held, warnings in files:
        try:
            deduped, repeats = _dedupe_rows(ws, held)
            encoded.append((_parquet_bytes(deduped, repeats > 0), deduped, repeats, warnings))
        except Exception as exc:
            encoded.append(exc)
    digests = iter(ws.objects.put_all([item[0] for item in encoded
                                       if not isinstance(item, Exception)]))
    return [item if isinstance(item, Exception) else
            Snapshot(next(digests), item[1].height, item[2], item[3], item[1])
            for item in encoded]


def _parquet_bytes(rows: pl.DataFrame, rewritten: bool) -> bytes:
    """The snapshot's bytes: as `_dedupe` rewrites a file when ids repeated, else as
    `_write` writes one batch (into memory: a file's own set-up took a third of it)."""
    if rewritten:
        buffer = io.BytesIO()
        rows.write_parquet(buffer, compression="zstd")
        return buffer.getvalue()
    sink = pa.BufferOutputStream()
    pq.write_table(rows.to_arrow(), sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def _write(path: Path, writer: pq.ParquetWriter | None, rows: pl.DataFrame
           ) -> pq.ParquetWriter:
    table = rows.to_arrow()
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema, compression="zstd")
    writer.write_table(table.cast(writer.schema))
    return writer


def _dedupe_rows(ws: Workspace, rows: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """`_dedupe` for rows in memory."""
    id_column = ws.config.data.id_column
    if not (ws.config.data.dedupe and id_column) or \
            rows.get_column(id_column).n_unique() == rows.height:
        return rows, 0
    unique = rows.unique(subset=[id_column], keep="last", maintain_order=True)
    return unique, rows.height - unique.height


def _dedupe(ws: Workspace, snapshot: Path, rows: int) -> tuple[int, int]:
    """Keep the last row of each id; rewrite the snapshot only when an id repeats."""
    id_column = ws.config.data.id_column
    if not (ws.config.data.dedupe and id_column):
        return rows, 0
    scan = pl.scan_parquet(snapshot, glob=False)
    unique = scan.select(pl.col(id_column).n_unique()).collect().item()
    if unique == rows:
        return rows, 0
    deduped = ws.objects.new_temp(".parquet")
    try:
        scan.unique(subset=[id_column], keep="last", maintain_order=True) \
            .sink_parquet(deduped, compression="zstd")
        os.replace(deduped, snapshot)
    finally:
        deduped.unlink(missing_ok=True)
    return unique, rows - unique
