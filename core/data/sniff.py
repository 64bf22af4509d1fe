"""Checks on CSV or Parquet bytes and structure before polars reads them.

polars is forgiving where mlyard must not be: it fills a short or cut-off row with nulls
and renames duplicate headers. One streaming pass with the csv module catches those,
plus encodings and binary files, and names the line where the problem is. A file
(ingest, `mlyard predict`, `mlyard init`) and a request body (the server's text/csv) go
through the same pass, so the same bytes get the same answer and the same words.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlyard.core.errors import IngestRefused

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
DATA_SUFFIXES = CSV_SUFFIXES | PARQUET_SUFFIXES

_MAGIC = {
    b"\x1f\x8b": "gzip-compressed",
    b"PK\x03\x04": "a zip archive",
    b"BZh": "bzip2-compressed",
    b"\xfd7zXZ": "xz-compressed",
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"PAR1": "a Parquet file",
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
}


@dataclass
class SniffResult:
    path: Path
    format: str  # "csv" | "parquet"
    columns: list[str]
    rows: int | None  # data rows (CSV only; Parquet reads it from metadata later)
    separator: str = ","
    warnings: list[str] = field(default_factory=list)
    index_column: str | None = None  # a pandas index (empty name, 0..n-1): dropped


@dataclass
class CsvShape:
    """What the checking pass learnt of CSV text: its columns (without a pandas index),
    data rows, and the index column to drop, if any."""

    columns: list[str]
    rows: int
    index_column: str | None = None

    @property
    def warnings(self) -> list[str]:
        if self.index_column is None:
            return []
        return [INDEX_NOTE]


INDEX_NOTE = ("the first column has no name and holds 0, 1, 2, ...: a row index "
              "(as pandas' to_csv writes), dropped")


class CsvProblem(Exception):
    """CSV bytes that cannot be read faithfully; `reason` says why, without the source."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff(path: Path) -> SniffResult:
    """Refuse files that cannot be read faithfully; report oddities that can."""
    if not path.is_file():
        raise IngestRefused(f"{path}: not found or not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise _refuse(path, "empty file (0 bytes)")
    with open(path, "rb") as handle:
        head = handle.read(8)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _sniff_parquet(path, size, head)
    if suffix not in CSV_SUFFIXES:
        raise _refuse(path, f"unsupported file type {suffix or '(no extension)'!r}; "
                            "expected .csv, .tsv or .parquet")
    return _sniff_csv(path, head, "\t" if suffix == ".tsv" else ",")


def _sniff_parquet(path: Path, size: int, head: bytes) -> SniffResult:
    if not head.startswith(b"PAR1"):
        raise _refuse(path, f"not a Parquet file (starts with {head[:4]!r}, expected b'PAR1')")
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 4))
        tail = handle.read(4)
    if size < 12 or tail != b"PAR1":
        raise _refuse(path, "truncated Parquet file: the footer is missing (copy interrupted?)")
    return SniffResult(path, "parquet", [], None)


def _sniff_csv(path: Path, head: bytes, separator: str) -> SniffResult:
    try:
        _check_head(head)
        with open(path, encoding="utf-8-sig", newline="") as handle:
            shape = _scan_rows(handle, separator)
    except UnicodeDecodeError:
        with open(path, "rb") as handle:
            sample = handle.read(1 << 20)
        raise _refuse(path, _describe_decode_error(sample, _first_bad_offset(path))) \
            from None
    except CsvProblem as problem:
        raise _refuse(path, problem.reason) from None
    # A UTF-8 byte-order mark and Windows (CRLF) line ends are valid CSV (Excel and
    # Python's csv module write them): read as-is, not worth a warning.
    return SniffResult(path, "csv", shape.columns, shape.rows, separator,
                       shape.warnings, shape.index_column)


def check_csv_body(body: bytes, separator: str = ",") -> CsvShape:
    """CSV bytes sent to the server checked as a file is; raises CsvProblem with the
    same reason a file with these bytes gets."""
    if not body:
        raise CsvProblem("empty file (0 bytes)")
    _check_head(body[:8])
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvProblem(_describe_decode_error(body[: 1 << 20], exc.start)) from None
    return _scan_rows(io.StringIO(text, newline=""), separator)


def _check_head(head: bytes) -> None:
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise CsvProblem(f"the bytes are {what}, not CSV text; decompress or convert "
                             "it first")
    # With a byte-order mark, or without one: ASCII text in UTF-16 has every other byte 0.
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or len(head) >= 4 and (
            head[1] == head[3] == 0 != head[0] or head[0] == head[2] == 0 != head[1]):
        raise CsvProblem("UTF-16 encoded; re-save it as UTF-8")


def _scan_rows(handle: IO[str], separator: str) -> CsvShape:
    try:
        return _rows_of(csv.reader(handle, delimiter=separator, strict=True))
    except csv.Error as exc:
        if "NUL" in str(exc):
            raise CsvProblem("contains NUL bytes: binary data, not CSV text") from None
        raise CsvProblem(f"not valid CSV: {exc}") from None


def _rows_of(reader: Iterator[list[str]]) -> CsvShape:
    lines = reader
    header = next(lines, None)
    if not header or header == [""]:
        raise CsvProblem("no header row (the first line is empty)")
    unnamed_first = _check_header(header)
    width = len(header)
    rows = 0
    for row in lines:
        if not row:
            continue
        if len(row) != width:
            line = getattr(reader, "line_num", rows + 2)
            at_end = next(lines, None) is None
            if at_end and len(row) < width:
                raise CsvProblem(f"cut off mid-row at line {line}: {len(row)} of {width} "
                                 "fields (incomplete copy?)")
            raise CsvProblem(f"line {line} has {len(row)} fields, the header has {width}")
        if unnamed_first and row[0].strip() != str(rows):
            raise CsvProblem("header field 1 is empty; every column needs a name")
        rows += 1
    if rows == 0:
        raise CsvProblem("has a header but no data rows")
    if unnamed_first:
        return CsvShape(header[1:], rows, header[0])
    return CsvShape(header, rows)


def _check_header(header: list[str]) -> bool:
    """Refuse empty and repeated names; True when only the first name is empty (a row
    index, if its values turn out to be 0, 1, 2, ...)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name.strip() and (position > 1 or len(header) == 1):
            raise CsvProblem(f"header field {position} is empty; every column needs a name")
        if name in seen:
            raise CsvProblem(f"duplicate column name {name!r} (columns {seen[name]} and "
                             f"{position})")
        seen[name] = position
    return not header[0].strip()


def _describe_decode_error(sample: bytes, offset: int) -> str:
    """Name the byte offset and guess the encoding, since latin-1 is the usual culprit."""
    if _decodes_as_latin1_text(sample):
        return (f"not UTF-8 (invalid byte at offset {offset}; looks like latin-1 or "
                "Windows-1252); re-save it as UTF-8")
    return f"not UTF-8 text (invalid byte at offset {offset}): binary data or another encoding"


def _decodes_as_latin1_text(sample: bytes) -> bool:
    text = sample.decode("latin-1")
    return sum(ch.isprintable() or ch in "\r\n\t" for ch in text) / max(1, len(text)) > 0.95


def _first_bad_offset(path: Path) -> int:
    offset = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and len(chunk) == 1 << 20:
                    offset += exc.start
                    handle.seek(offset)
                    continue
                return offset + exc.start
            offset += len(chunk)
    return offset


def _refuse(path: Path, reason: str) -> IngestRefused:
    return IngestRefused(f"{path}: {reason}")
