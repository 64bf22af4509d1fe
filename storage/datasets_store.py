"""SQL for datasets, their schema contracts and their versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from mlyard.storage.errors import NotFound

Connection = duckdb.DuckDBPyConnection

_VERSION_COLUMNS = (
    "dataset, seq, source_hash, source_path, snapshot_hash, rows, schema, profile, warnings, "
    "created_at, contract_hash"
)


@dataclass
class VersionRecord:
    dataset: str
    seq: int
    source_hash: str
    source_path: str
    snapshot_hash: str
    rows: int
    schema: dict[str, str]  # column -> contract type
    profile: dict[str, dict[str, Any]]  # column -> stats
    warnings: list[str]
    created_at: float
    contract_hash: str | None = None  # None: checked before mlyard recorded contracts

    @property
    def ref(self) -> str:
        return f"{self.dataset}:v{self.seq}"


def stored_contract(con: Connection, dataset: str) -> str | None:
    row = con.execute("SELECT contract FROM datasets WHERE name = ?", [dataset]).fetchone()
    return None if row is None else row[0]


def ensure_dataset(con: Connection, dataset: str, contract_json: str | None, ts: float) -> None:
    """Create the dataset if new; store `contract_json` only if none is stored yet."""
    con.execute(
        "INSERT INTO datasets VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
        "SET contract = coalesce(datasets.contract, excluded.contract)",
        [dataset, ts, contract_json],
    )


def versions_by_source(con: Connection, dataset: str, source_hash: str) -> list[VersionRecord]:
    """Every version made from these bytes, newest first (one per contract they passed)."""
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset = ? AND source_hash = ? "
        "ORDER BY seq DESC", [dataset, source_hash],
    ).fetchall()
    return [_record(row) for row in rows]


def add_version(con: Connection, record: VersionRecord) -> VersionRecord:
    """Insert with the next sequence number, unless the same source already passed the
    same contract (then that version)."""
    for existing in versions_by_source(con, record.dataset, record.source_hash):
        if existing.contract_hash == record.contract_hash:
            return existing
    row = con.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM dataset_versions WHERE dataset = ?",
        [record.dataset],
    ).fetchone()
    record.seq = int(row[0]) if row else 1
    profile = json.dumps(record.profile, default=str)
    record.profile = json.loads(profile)  # as every later read returns it (dates as text)
    con.execute(
        f"INSERT INTO dataset_versions ({_VERSION_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [record.dataset, record.seq, record.source_hash, record.source_path,
         record.snapshot_hash, record.rows, json.dumps(record.schema),
         profile, json.dumps(record.warnings), record.created_at, record.contract_hash],
    )
    return record


def set_contract_hash(con: Connection, dataset: str, seq: int, contract_hash: str) -> None:
    """Record that a version was re-checked against a changed contract and still holds."""
    con.execute("UPDATE dataset_versions SET contract_hash = ? WHERE dataset = ? AND seq = ?",
                [contract_hash, dataset, seq])


def list_versions(con: Connection, dataset: str | None) -> list[VersionRecord]:
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE ? IS NULL OR dataset = ? "
        "ORDER BY dataset, seq",
        [dataset, dataset],
    ).fetchall()
    return [_record(row) for row in rows]


def get_version(con: Connection, dataset: str, seq: int) -> VersionRecord:
    row = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset = ? AND seq = ?",
        [dataset, seq],
    ).fetchone()
    if row is None:
        raise NotFound(f"dataset {dataset!r} has no version v{seq}")
    return _record(row)


def _record(row: tuple[Any, ...]) -> VersionRecord:
    """A version with its JSON columns decoded once, here."""
    dataset, seq, source_hash, source_path, snapshot_hash, rows, schema, profile, warnings, \
        created_at, contract_hash = row
    return VersionRecord(dataset, seq, source_hash, source_path, snapshot_hash, rows,
                         json.loads(schema), json.loads(profile), json.loads(warnings),
                         created_at, contract_hash)
