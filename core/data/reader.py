"""Lazy polars scans of input files, so a file larger than memory still ingests."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator

import polars as pl

from mlyard.core.data.sniff import CsvProblem, SniffResult, check_csv_body
from mlyard.core.errors import IngestRefused

# Rows per batch when converting a file: large enough to amortise per-batch work,
# small enough that memory stays flat (measured in bench/bench_ingest.py).
BATCH_ROWS = 100_000


def scan_as_text(sniffed: SniffResult) -> pl.LazyFrame:
    """Every column as text, exactly as written; typing is the contract's job."""
    if sniffed.format == "parquet":
        frame = pl.scan_parquet(sniffed.path, glob=False)
        return frame.select(pl.all().cast(pl.String))
    frame = pl.scan_csv(
        sniffed.path,
        glob=False,  # a file named `*.csv` or `sales[2024].csv` is that file, not a pattern
        separator=sniffed.separator,
        infer_schema=False,
        encoding="utf8",
        raise_if_empty=True,
    )
    return frame if sniffed.index_column is None else frame.drop(sniffed.index_column)


def read_csv_body(body: bytes) -> tuple[pl.DataFrame, list[str]]:
    """A request's CSV body as text columns, checked as a file with these bytes is
    (core/data/sniff.py), and the notes a file would get; raises IngestRefused naming
    "body"."""
    try:
        shape = check_csv_body(body)
    except CsvProblem as problem:
        raise IngestRefused(f"body: {problem.reason}") from None
    frame = pl.read_csv(io.BytesIO(body.removeprefix(codecs.BOM_UTF8)), infer_schema=False,
                        raise_if_empty=True)
    if shape.index_column is not None:
        frame = frame.drop(shape.index_column)
    return frame, shape.warnings


def read_batches(sniffed: SniffResult, rows_per_batch: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
    """The file as text-typed batches; a read failure part-way names the file."""
    return _batches(sniffed, scan_as_text(sniffed), rows_per_batch)


def read_typed_batches(sniffed: SniffResult,
                       rows_per_batch: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
    """Batches with Parquet columns in their own types (CSV columns are text)."""
    frame = pl.scan_parquet(sniffed.path, glob=False) if sniffed.format == "parquet" \
        else scan_as_text(sniffed)
    return _batches(sniffed, frame, rows_per_batch)


def _batches(sniffed: SniffResult, frame: pl.LazyFrame,
             rows_per_batch: int) -> Iterator[pl.DataFrame]:
    batches = frame.collect_batches(chunk_size=rows_per_batch)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except pl.exceptions.PolarsError as exc:
            raise IngestRefused(f"{sniffed.path}: cannot be read: {_first_line(exc)}") from None
        yield batch


def columns_of(sniffed: SniffResult) -> list[str]:
    """The file's column names (CSV from the sniffed header, Parquet from its schema)."""
    if sniffed.format == "csv":
        return list(sniffed.columns)
    try:
        return list(pl.read_parquet_schema(sniffed.path))
    except Exception as exc:  # polars raises several unrelated types for broken files
        raise IngestRefused(f"{sniffed.path}: not a readable Parquet file: {exc}") from None


def collect(frame: pl.LazyFrame, sniffed: SniffResult) -> pl.DataFrame:
    """Run a query with the streaming engine; a read failure names the file."""
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise IngestRefused(f"{sniffed.path}: cannot be read: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
