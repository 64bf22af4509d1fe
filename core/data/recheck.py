"""`mlyard data recheck`: stored versions checked against the contract in force.

A contract edited after ingest must take effect: a version whose source file is still
where it was is ingested again (the same bytes clean the same or become a new version);
one whose source is gone is checked from its stored snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mlyard.core.data.contract import ContractChecker, contract_hash
from mlyard.core.data.ingest import ingest_file
from mlyard.core.data.reader import read_typed_batches
from mlyard.core.data.sniff import SniffResult
from mlyard.core.data.versions import current_contract, list_versions
from mlyard.core.errors import IngestRefused
from mlyard.core.workspace import Workspace
from mlyard.storage import datasets_store
from mlyard.storage.datasets_store import VersionRecord
from mlyard.storage.objects import hash_file


@dataclass
class Recheck:
    version: str
    outcome: str  # current | rechecked | new version | refused
    detail: str = ""


def recheck_versions(ws: Workspace) -> list[Recheck]:
    """Every version of the project's dataset against the contract in force."""
    contract = current_contract(ws)
    checked = contract_hash(contract, ws.config.data)
    results = []
    for version in list_versions(ws, ws.config.dataset_name):
        if version.contract_hash == checked:
            results.append(Recheck(version.ref, "current"))
            continue
        source = Path(version.source_path)
        if source.is_file() and hash_file(source) == version.source_hash:
            results.append(_reingest(ws, version, source))
        else:
            results.append(_check_snapshot(ws, version, checked))
    return results


def _reingest(ws: Workspace, version: VersionRecord, source: Path) -> Recheck:
    try:
        result = ingest_file(ws, source)
    except IngestRefused as refusal:
        return Recheck(version.ref, "refused", refusal.msg)
    if result.created:
        return Recheck(version.ref, "new version",
                       f"{source} cleans differently now: {result.version.ref}")
    return Recheck(version.ref, "rechecked", f"from {source}: the cleaned data is the same")


def _check_snapshot(ws: Workspace, version: VersionRecord, checked: str) -> Recheck:
    """Without the source file, the stored (already typed) snapshot is what is checked."""
    path = ws.objects.path_for(version.snapshot_hash)
    sniffed = SniffResult(path, "parquet", [], version.rows)
    types = dict(pl.read_parquet_schema(path))
    try:
        checker = ContractChecker(current_contract(ws), ws.config.data, ws.config.train.task,
                                  sniffed, list(types), types)
        for batch in read_typed_batches(sniffed):
            checker.check(batch)
        checker.finish()
    except IngestRefused as refusal:
        return Recheck(version.ref, "refused",
                       refusal.msg.replace(str(path), f"{version.ref} (stored snapshot)"))
    with ws.catalog.session() as con:
        datasets_store.set_contract_hash(con, version.dataset, version.seq, checked)
    return Recheck(version.ref, "rechecked", "from its stored snapshot (the source file is "
                   "gone or changed)")
