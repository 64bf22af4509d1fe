"""Checks on an input file's bytes and structure before polars reads it.

polars is forgiving where mlyard must not be: it fills a short or cut-off row with nulls
and renames duplicate headers. One streaming pass with the csv module catches those,
plus encodings and binary files, and names the line where the problem is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from mlyard.core.errors import IngestRefused

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}

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
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise _refuse(path, f"the bytes are {what}, not CSV text; "
                                "decompress or convert it first")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _refuse(path, "UTF-16 encoded; re-save it as UTF-8")
    try:
        columns, rows = _scan_rows(path, separator)
    except UnicodeDecodeError as exc:
        raise _refuse(path, _describe_decode_error(path, exc)) from None
    except csv.Error as exc:
        if "NUL" in str(exc):
            raise _refuse(path, "contains NUL bytes: binary data, not CSV text") from None
        raise _refuse(path, f"not valid CSV: {exc}") from None
    # A UTF-8 byte-order mark and Windows (CRLF) line ends are valid CSV (Excel and
    # Python's csv module write them): read as-is, not worth a warning.
    return SniffResult(path, "csv", columns, rows, separator)


def _scan_rows(path: Path, separator: str) -> tuple[list[str], int]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=separator, strict=True)
        header = next(reader, None)
        if not header or header == [""]:
            raise _refuse(path, "no header row (the first line is empty)")
        _check_header(path, header)
        width = len(header)
        rows = 0
        for row in reader:
            if not row:
                continue
            rows += 1
            if len(row) != width:
                line = reader.line_num
                at_end = next(reader, None) is None
                if at_end and len(row) < width:
                    raise _refuse(path, f"cut off mid-row at line {line}: {len(row)} of "
                                        f"{width} fields (incomplete copy?)")
                raise _refuse(path, f"line {line} has {len(row)} fields, the header has {width}")
        if rows == 0:
            raise _refuse(path, "has a header but no data rows")
    return header, rows


def _check_header(path: Path, header: list[str]) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise _refuse(path, f"header field {position} is empty; every column needs a name")
        if name in seen:
            raise _refuse(path, f"duplicate column name {name!r} (columns {seen[name]} "
                                f"and {position})")
        seen[name] = position


def _describe_decode_error(path: Path, exc: UnicodeDecodeError) -> str:
    """Name the byte offset and guess the encoding, since latin-1 is the usual culprit."""
    with open(path, "rb") as handle:
        sample = handle.read(1 << 20)
    offset = _first_bad_offset(path)
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
