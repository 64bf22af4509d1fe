"""The data pipeline: check a file, clean it, and store it as a dataset version.

The heavy work (hashing, validating, writing the Parquet snapshot) runs without the
catalog lock; only recording the version takes a short unit of work. A refused file is
copied to quarantine with its reason and nothing is added to the catalog. The source file
is only ever read.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from mlyard.core.config import ColumnContract
from mlyard.core.data.contract import (
    ContractChecker,
    contract_from_json,
    contract_hash,
    contract_to_json,
)
from mlyard.core.data.inference import infer
from mlyard.core.data.profile import profile_parquet
from mlyard.core.data.quality import MIN_ROWS_FOR_CONSTANT
from mlyard.core.data.reader import columns_of, read_batches
from mlyard.core.data.sniff import SniffResult, sniff
from mlyard.core.errors import IngestRefused
from mlyard.core.workspace import Workspace
from mlyard.storage import datasets_store, meta_store
from mlyard.storage.datasets_store import VersionRecord
from mlyard.storage.objects import hash_file


@dataclass
class IngestResult:
    path: Path
    version: VersionRecord
    created: bool  # False when these bytes already passed the contract in force
    warnings: list[str] = field(default_factory=list)
    rechecked: bool = False  # an existing version re-checked against a changed contract


def ingest_file(ws: Workspace, path: Path) -> IngestResult:
    """Ingest one CSV or Parquet file as a version of the project's dataset.

    The same bytes under the same contract are the same version. After a contract
    change they are checked again: a version whose cleaned data is unchanged records the
    new contract, one that cleans differently becomes a new version.

    Raises:
        IngestRefused: the file does not meet the contract or cannot be read; a copy and
            a `.reason.json` are in the quarantine folder and the catalog is unchanged.
    """
    path = path.resolve()
    if not path.is_file():
        raise IngestRefused(f"{path}: not found or not a regular file")
    dataset = ws.config.dataset_name
    source_hash = hash_file(path)
    with ws.catalog.session() as con:
        earlier = datasets_store.versions_by_source(con, dataset, source_hash)
        stored = datasets_store.stored_contract(con, dataset)
    contract = _contract_in_force(ws, stored)
    if contract is not None:
        checked = contract_hash(contract, ws.config.data)
        same = next((v for v in earlier if v.contract_hash == checked), None)
        if same is not None:
            return IngestResult(path, same, created=False,
                                warnings=["same bytes as an existing version; nothing new "
                                          "stored"])
    try:
        return _ingest_new(ws, path, dataset, source_hash, contract, earlier)
    except IngestRefused as refusal:
        copy = _quarantine(ws, path, source_hash, refusal.msg)
        with ws.catalog.session() as con:
            meta_store.add_event(con, "alert.quality", path.name, "mlyard ingest", {
                "severity": "error", "current": path.name, "findings": [refusal.msg],
                "quarantined": str(copy)})
        raise


def _ingest_new(ws: Workspace, path: Path, dataset: str, source_hash: str,
                contract: dict[str, ColumnContract] | None,
                earlier: list[VersionRecord]) -> IngestResult:
    sniffed = sniff(path)
    inferred = contract is None
    if contract is None:
        contract = infer([sniffed], ws.config.data.target, detect_roles=False).contract
    checker = ContractChecker(contract, ws.config.data, ws.config.train.task, sniffed,
                              columns_of(sniffed))
    snapshot, rows, repeats, found = _write_snapshot(ws, sniffed, checker)
    warnings = sniffed.warnings + found
    checked = contract_hash(contract, ws.config.data)
    types = {name: column.type for name, column in contract.items()}
    unchanged = next((v for v in earlier if v.snapshot_hash == snapshot and v.schema == types),
                     None)
    if unchanged is not None:
        with ws.catalog.session() as con:
            datasets_store.set_contract_hash(con, dataset, unchanged.seq, checked)
            meta_store.add_event(con, "dataset.rechecked", unchanged.ref, None,
                                 {"source": str(path), "contract": checked})
        unchanged.contract_hash = checked
        return IngestResult(path, unchanged, created=False, rechecked=True, warnings=warnings)
    if repeats:
        warnings.append(f"{repeats} rows repeated an {ws.config.data.id_column!r} seen earlier "
                        "in the file; kept the last row for each id")
    profile = profile_parquet(ws.objects.path_for(snapshot), types)
    for name, levels in checker.new_levels.items():
        profile[name]["new_levels"] = dict(sorted(levels.items(), key=lambda kv: -kv[1]))
    warnings += _constant_columns(profile, rows)
    record = VersionRecord(
        dataset=dataset, seq=0, source_hash=source_hash, source_path=str(path),
        snapshot_hash=snapshot, rows=rows, schema=dict(types),
        profile=profile, warnings=list(warnings),
        created_at=time.time(), contract_hash=checked,
    )
    contract_json = contract_to_json(contract) if inferred else None
    with ws.catalog.session() as con:
        datasets_store.ensure_dataset(con, dataset, contract_json, record.created_at)
        record = datasets_store.add_version(con, record)
        meta_store.add_event(con, "dataset.version", record.ref, None,
                             {"source": str(path), "rows": rows, "warnings": warnings})
        if warnings:  # accepted, but worth a look: the same alerts as served traffic
            meta_store.add_event(con, "alert.quality", record.ref, "mlyard ingest",
                                 {"severity": "warning", "current": record.ref,
                                  "findings": warnings})
    return IngestResult(path, record, created=True, warnings=warnings)


def _constant_columns(profile: dict[str, dict[str, object]], rows: int) -> list[str]:
    """Columns with one value in every row: usually a broken export, never a feature."""
    if rows < MIN_ROWS_FOR_CONSTANT:
        return []
    return [f"column {name!r} has the same value in all {rows:,} rows" for name, entry in
            profile.items() if entry.get("distinct") == 1 and entry.get("nulls") == 0]


def _contract_in_force(ws: Workspace, stored: str | None) -> dict[str, ColumnContract] | None:
    """The config's contract if it has one, else the stored one; None before the first
    file (whose contract is then inferred from it)."""
    if ws.config.data.columns:
        return dict(ws.config.data.columns)
    return contract_from_json(stored) if stored is not None else None


def _write_snapshot(ws: Workspace, sniffed: SniffResult,
                    checker: ContractChecker) -> tuple[str, int, int, list[str]]:
    """Check and convert the file batch by batch into a Parquet object.

    Returns the object's hash, its row count, how many rows were dropped as repeats of
    an id, and the checker's warnings. Batches keep memory flat; a whole-file
    `sink_parquet` grows with the file.
    """
    tmp = ws.objects.new_temp(".parquet")
    try:
        writer: pq.ParquetWriter | None = None
        try:
            for batch in read_batches(sniffed):
                typed = checker.check(batch)
                if typed is None:  # refused; read on so the refusal names every problem
                    continue
                table = typed.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        warnings = checker.finish()  # raises naming every problem the file has
        if writer is None:
            raise IngestRefused(f"{sniffed.path}: has no data rows")
        rows, repeats = _dedupe(ws, tmp, checker.rows)
        return ws.objects.adopt(tmp), rows, repeats, warnings
    finally:
        tmp.unlink(missing_ok=True)


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


def _quarantine(ws: Workspace, path: Path, source_hash: str, reason: str) -> Path:
    """Copy the refused file and its reason into quarantine; the source is left alone."""
    folder = ws.quarantine_dir
    folder.mkdir(parents=True, exist_ok=True)
    earlier = sorted(folder.glob(f"*-{source_hash[:12]}-{glob.escape(path.name)}"))
    earlier = [p for p in earlier if not p.name.endswith(".reason.json")]
    if earlier:  # the same bad bytes again (a watcher restarting): one copy is enough
        return earlier[0]
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = folder / f"{stamp}-{source_hash[:12]}-{path.name}"
    shutil.copyfile(path, target)
    reason_file = target.with_name(target.name + ".reason.json")
    reason_file.write_text(json.dumps({
        "source": str(path), "blake3": source_hash, "reason": reason,
        "refused_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n", encoding="utf-8")
    return target
