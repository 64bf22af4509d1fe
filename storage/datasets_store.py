"""SQL for datasets, their schema contracts and their versions."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from mlyard.storage.errors import NotFound

Connection = duckdb.DuckDBPyConnection

_VERSION_COLUMNS = (
    "dataset, seq, source_hash, source_path, snapshot_hash, rows, schema, profile, warnings, "
    "created_at"
)


@dataclass
class VersionRecord:
    dataset: str
    seq: int
    source_hash: str
    source_path: str
    snapshot_hash: str
    rows: int
    schema: str  # JSON: column -> contract type
    profile: str  # JSON: column -> stats
    warnings: str  # JSON: list of strings
    created_at: float

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


def version_by_source(con: Connection, dataset: str, source_hash: str) -> VersionRecord | None:
    row = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset = ? AND source_hash = ?",
        [dataset, source_hash],
    ).fetchone()
    return None if row is None else VersionRecord(*row)


def add_version(con: Connection, record: VersionRecord) -> VersionRecord:
    """Insert with the next sequence number, unless the same source is already a version."""
    existing = version_by_source(con, record.dataset, record.source_hash)
    if existing is not None:
        return existing
    row = con.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM dataset_versions WHERE dataset = ?",
        [record.dataset],
    ).fetchone()
    record.seq = int(row[0]) if row else 1
    con.execute(
        f"INSERT INTO dataset_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [record.dataset, record.seq, record.source_hash, record.source_path,
         record.snapshot_hash, record.rows, record.schema, record.profile, record.warnings,
         record.created_at],
    )
    return record


def list_versions(con: Connection, dataset: str | None) -> list[VersionRecord]:
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE ? IS NULL OR dataset = ? "
        "ORDER BY dataset, seq",
        [dataset, dataset],
    ).fetchall()
    return [VersionRecord(*row) for row in rows]


def get_version(con: Connection, dataset: str, seq: int) -> VersionRecord:
    row = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset = ? AND seq = ?",
        [dataset, seq],
    ).fetchone()
    if row is None:
        raise NotFound(f"dataset {dataset!r} has no version v{seq}")
    return VersionRecord(*row)
