"""Sealed segment files for writers that must never wait on the catalog lock.

A segment is an Arrow IPC file written under a temporary name and renamed when complete,
so a reader only ever sees whole segments. Ingestion records the segment's name in the
same transaction as its rows, which makes it idempotent: after a crash between commit
and unlink the file is recognised and removed without loading it twice.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

SEALED_SUFFIX = ".arrow"
PENDING_SUFFIX = ".partial"

# Each kind of segment names the table its rows go to; the table's columns must match.
SEGMENT_TABLES = {"metrics": "metrics", "logs": "run_logs", "predictions": "predictions",
                  "runs": "runs", "events": "events"}


def write_segment(spool_dir: Path, kind: str, table: pa.Table) -> Path:
    """Write `table` as a sealed segment of `kind`; return its final path."""
    if kind not in SEGMENT_TABLES:
        raise ValueError(f"unknown spool segment kind {kind!r}")
    spool_dir.mkdir(parents=True, exist_ok=True)
    name = f"{kind}-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
    pending = spool_dir / (name + PENDING_SUFFIX)
    with pa.OSFile(str(pending), "wb") as sink:
        with ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    with open(pending, "rb") as handle:
        os.fsync(handle.fileno())
    final = spool_dir / (name + SEALED_SUFFIX)
    os.replace(pending, final)
    return final


def sealed_segments(spool_dir: Path) -> list[Path]:
    """Sealed segments, oldest first; partial ones from a crashed writer are skipped."""
    try:
        entries = [e for e in os.scandir(spool_dir) if e.name.endswith(SEALED_SUFFIX)]
    except FileNotFoundError:
        return []
    return sorted((Path(e.path) for e in entries), key=lambda p: p.name)


def read_segment(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return ipc.open_file(source).read_all()


def segment_kind(path: Path) -> str:
    return path.name.split("-", 1)[0]


def quarantine(path: Path, reason: str) -> Path:
    """Move an unreadable segment to `bad/` beside the spool, with a `.reason.json`."""
    bad = path.parent / "bad"
    bad.mkdir(exist_ok=True)
    target = bad / path.name
    os.replace(path, target)
    (bad / (path.name + ".reason.json")).write_text(
        json.dumps({"segment": path.name, "reason": reason, "moved_at": time.time()}))
    return target
