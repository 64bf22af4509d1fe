"""SQL for datasets, their schema contracts and their versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlyard.storage.engine import Connection
from mlyard.storage.errors import NotFound
from mlyard.storage.profiles import Profile, decode_profile, encode_profile

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
    profile: Profile  # column -> its profile
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


def versions_by_source(con: Connection, dataset: str, source_hashes: list[str]
                       ) -> dict[str, list[VersionRecord]]:
    """Every version made from each of these bytes, newest first (one per contract they
    passed); a hash with none is absent."""
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset = ? "
        "AND list_contains(?, source_hash) ORDER BY seq DESC", [dataset, source_hashes],
    ).fetchall()
    found: dict[str, list[VersionRecord]] = {}
    for row in rows:
        record = _record(row)
        found.setdefault(record.source_hash, []).append(record)
    return found


def versions_by_snapshot(con: Connection, dataset: str, snapshot_hashes: list[str]
                         ) -> dict[str, VersionRecord]:
    """The first version holding each of these cleaned snapshots, if any does."""
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset = ? "
        "AND list_contains(?, snapshot_hash) ORDER BY seq DESC", [dataset, snapshot_hashes],
    ).fetchall()
    return {record.snapshot_hash: record for record in map(_record, rows)}


def newest_by_source_path(con: Connection, paths: list[str]) -> dict[str, tuple[str, float]]:
    """For each of these source paths ever ingested: its newest version's ref and when
    it was made."""
    rows = con.execute(
        "SELECT source_path, arg_max(dataset || ':v' || seq, seq), max(created_at) "
        "FROM dataset_versions WHERE list_contains(?, source_path) GROUP BY source_path",
        [paths]).fetchall()
    return {path: (ref, created) for path, ref, created in rows}


def add_versions(con: Connection, records: list[VersionRecord]) -> list[VersionRecord]:
    """Insert with the next sequence numbers, in order; a record whose source already
    passed the same contract (another process was quicker) is that version instead."""
    if not records:
        return []
    dataset = records[0].dataset
    known = versions_by_source(con, dataset, [r.source_hash for r in records])
    row = con.execute("SELECT coalesce(max(seq), 0) FROM dataset_versions WHERE dataset = ?",
                      [dataset]).fetchone()
    seq = int(row[0]) if row else 0
    added: list[VersionRecord] = []
    fresh: list[VersionRecord] = []
    for record in records:
        existing = next((v for v in known.get(record.source_hash, [])
                         if v.contract_hash == record.contract_hash), None)
        if existing is None:
            seq += 1
            record.seq = seq
            known.setdefault(record.source_hash, []).insert(0, record)
            fresh.append(record)
        added.append(existing or record)
    if fresh:
        con.execute(
            f"INSERT INTO dataset_versions ({_VERSION_COLUMNS}) SELECT unnest(?::VARCHAR[]), "
            "unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), "
            "unnest(?::VARCHAR[])",
            [[r.dataset for r in fresh], [r.seq for r in fresh],
             [r.source_hash for r in fresh], [r.source_path for r in fresh],
             [r.snapshot_hash for r in fresh], [r.rows for r in fresh],
             [json.dumps(r.schema) for r in fresh], [encode_profile(r.profile) for r in fresh],
             [json.dumps(r.warnings) for r in fresh], [r.created_at for r in fresh],
             [r.contract_hash for r in fresh]])
    return added


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
                         json.loads(schema), decode_profile(profile), json.loads(warnings),
                         created_at, contract_hash)
