"""The data pipeline: check a file, clean it, and store it as a dataset version.

The heavy work (hashing, validating, writing the Parquet snapshot) runs without the
catalog lock; only recording the versions takes a short unit of work, one per batch of
files. A refused file is copied to quarantine with its reason and nothing is added to the
catalog. The source file is only ever read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import polars as pl

from mlyard.core.config import ColumnContract
from mlyard.core.data import small_files
from mlyard.core.data.contract import (
    ContractChecker,
    contract_from_json,
    contract_hash,
    contract_to_json,
)
from mlyard.core.data.inference import infer
from mlyard.core.data.profile import profile_frames, profile_parquet
from mlyard.core.data.quality import MIN_ROWS_FOR_CONSTANT
from mlyard.core.data.quarantine import quarantine_file
from mlyard.core.data.reader import columns_of
from mlyard.core.data.runs_ahead import RunsAhead
from mlyard.core.data.snapshot import Snapshot, store_all_held, write_snapshot
from mlyard.core.data.sniff import sniff
from mlyard.core.errors import IngestRefused
from mlyard.core.workspace import Workspace
from mlyard.storage import datasets_store, meta_store
from mlyard.storage.datasets_store import VersionRecord
from mlyard.storage.engine import Connection
from mlyard.storage.objects import hash_file
from mlyard.storage.profiles import Profile

BATCH_FILES = 100  # files whose versions one unit of work records ...
BATCH_SECONDS = 1.0  # ... or fewer, so that a slow stream of files still shows promptly
LOOKAHEAD_BYTES = 4 << 20  # files up to this size are checked beside the current one


@dataclass
class IngestResult:
    path: Path
    version: VersionRecord
    created: bool  # False when these bytes already passed the contract in force
    warnings: list[str] = field(default_factory=list)
    rechecked: bool = False  # an existing version re-checked against a changed contract


Outcome = IngestResult | IngestRefused
# A checked file: what the catalog is to record, and the contract inferred from it
# when there was none.
Checked = tuple[IngestResult, dict[str, ColumnContract] | None]


class FileOutcome(NamedTuple):
    """What became of one file."""

    path: Path
    outcome: Outcome


def ingest_file(ws: Workspace, path: Path) -> IngestResult:
    """Ingest one CSV or Parquet file as a version of the project's dataset.

    Raises:
        IngestRefused: the file does not meet the contract or cannot be read; a copy and
            a `.reason.json` are in the quarantine folder and the catalog is unchanged.
    """
    [(_, outcome)] = list(ingest_files(ws, [path]))
    if isinstance(outcome, IngestRefused):
        raise outcome
    return outcome


def ingest_files(ws: Workspace, paths: list[Path]) -> Iterator[FileOutcome]:
    """Ingest files in order, yielding each one's outcome once the catalog holds it.

    The same bytes under the same contract are the same version. After a contract
    change they are checked again: a version whose cleaned data is unchanged records the
    new contract, one that cleans differently becomes a new version. A refused file is
    copied to quarantine with its reason.

    Each file is hashed, checked, snapshotted and profiled on its own (the next few small
    ones on threads, while those before them are recorded); what the catalog learns of
    them is read in one unit of work and written in one per `BATCH_FILES` files: a unit
    costs DuckDB milliseconds however little it holds, which was most of the time a small
    file took.
    """
    dataset = ws.config.dataset_name
    resolved = [path.resolve() for path in paths]
    hashes: list[str | IngestRefused] = [
        hash_file(path) if path.is_file() else
        IngestRefused(f"{path}: not found or not a regular file") for path in resolved]
    known = [h for h in hashes if isinstance(h, str)]
    with ws.catalog.session() as con:
        earlier = datasets_store.versions_by_source(con, dataset, known) if known else {}
        stored = datasets_store.stored_contract(con, dataset)
    contract = _contract_in_force(ws, stored)

    def check(index: int) -> Checked:
        source_hash = hashes[index]
        assert isinstance(source_hash, str)
        return _check_and_store(ws, resolved[index], dataset, source_hash, contract,
                                earlier.get(source_hash, []))

    def check_run(run: list[int]) -> list[Checked | Exception]:
        if len(run) == 1:
            try:
                return [check(run[0])]
            except Exception as exc:  # raised at its turn
                return [exc]
        assert contract is not None  # runs are planned once a contract is in force
        found = [h for h in (hashes[i] for i in run) if isinstance(h, str)]
        assert len(found) == len(run)  # only readable files run early
        return _check_and_store_many(ws, [resolved[i] for i in run], dataset, found, contract,
                                     [earlier.get(h, []) for h in found])

    ahead = RunsAhead(check, check_run, workers=1 if len(paths) == 1 else None)
    try:
        if contract is not None:
            ahead.plan(_independent(resolved, hashes, earlier, contract_hash(
                contract, ws.config.data), 0), resolved)
        batch = _Batch(dataset)
        for index, (path, source_hash) in enumerate(zip(paths, hashes, strict=True)):
            if isinstance(source_hash, IngestRefused):
                batch.outcomes.append(FileOutcome(path, source_hash))
                continue
            if source_hash in batch.hashes:  # the same bytes twice in a burst: as one
                yield from batch.record(ws, earlier)  # after the other, once that one
                batch = _Batch(dataset)  # is stored
            if contract is not None:
                checked = contract_hash(contract, ws.config.data)
                same = next((v for v in earlier.get(source_hash, [])
                             if v.contract_hash == checked), None)
                if same is not None:
                    batch.outcomes.append(FileOutcome(path, IngestResult(
                        resolved[index], same, created=False,
                        warnings=["same bytes as an existing version; nothing new stored"])))
                    continue
            try:
                result, inferred = ahead.take(index)
            except IngestRefused as refusal:
                batch.refuse(path, refusal, quarantine_file(ws, resolved[index], source_hash,
                                                            refusal.msg))
            else:
                batch.add(path, source_hash, result)
                if inferred is not None:  # the first file of a dataset: its contract holds
                    contract, batch.contract_json = inferred, contract_to_json(inferred)
                    ahead.plan(_independent(resolved, hashes, earlier, contract_hash(
                        contract, ws.config.data), index + 1), resolved)
            if len(batch.outcomes) >= BATCH_FILES or batch.age() >= BATCH_SECONDS:
                yield from batch.record(ws, earlier)
                batch = _Batch(dataset)
        yield from batch.record(ws, earlier)
    finally:
        ahead.close()


def _independent(resolved: list[Path], hashes: list[str | IngestRefused],
                 earlier: dict[str, list[VersionRecord]], checked: str, first: int
                 ) -> list[int]:
    """The files from `first` on whose check depends on no other file of the burst: the
    first of their bytes, not already stored under this contract, and small enough that
    a few at once stay small in memory."""
    seen = {h for h in hashes[:first] if isinstance(h, str)}
    independent = []
    for index in range(first, len(hashes)):
        source_hash = hashes[index]
        if not isinstance(source_hash, str) or source_hash in seen:
            continue
        seen.add(source_hash)
        if any(v.contract_hash == checked for v in earlier.get(source_hash, [])):
            continue
        try:
            if resolved[index].stat().st_size <= LOOKAHEAD_BYTES:
                independent.append(index)
        except OSError:
            continue  # gone: its own turn says so
    return independent


class _Batch:
    """Outcomes waiting for the unit of work that records them."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.outcomes: list[FileOutcome] = []
        self.hashes: set[str] = set()
        self.contract_json: str | None = None  # inferred from this batch's first file
        self._events: list[meta_store.NewEvent] = []
        self._started = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self._started

    def add(self, path: Path, source_hash: str, result: IngestResult) -> None:
        self.outcomes.append(FileOutcome(path, result))
        self.hashes.add(source_hash)

    def refuse(self, path: Path, refusal: IngestRefused, copy: Path) -> None:
        self.outcomes.append(FileOutcome(path, refusal))
        self._events.append(meta_store.NewEvent("alert.refused", path.name, "mlyard ingest", {
            "severity": "error", "current": path.name, "findings": [refusal.msg],
            "quarantined": str(copy)}))

    def record(self, ws: Workspace, earlier: dict[str, list[VersionRecord]]
               ) -> Iterator[FileOutcome]:
        """Store the batch in one unit of work, then hand out its outcomes."""
        results = [o for _, o in self.outcomes if isinstance(o, IngestResult)]
        new = [r for r in results if r.created]
        events = list(self._events)
        if new or events or any(r.rechecked for r in results):
            with ws.catalog.session() as con:
                new, twins = _without_duplicates(con, self.dataset, new)
                if new:
                    datasets_store.ensure_dataset(con, self.dataset, self.contract_json,
                                                  new[0].version.created_at)
                    stored = datasets_store.add_versions(con, [r.version for r in new])
                    for result, version in zip(new, stored, strict=True):
                        result.version = version
                for twin in twins:
                    twin.settle()
                for result in results:
                    events += _events_of(result)
                    if result.rechecked:
                        datasets_store.set_contract_hash(con, self.dataset,
                                                         result.version.seq,
                                                         result.version.contract_hash or "")
                meta_store.add_events(con, events)
        for result in new:
            earlier.setdefault(result.version.source_hash, []).insert(0, result.version)
        yield from self.outcomes


def _without_duplicates(con: Connection, dataset: str,
                        new: list[IngestResult]) -> tuple[list[IngestResult], list[_Twin]]:
    """The results to store as versions, and those whose cleaned data is already a
    version's or another file's of this batch (the same rows under another name): those
    become that version, so no row is trained on twice."""
    held: dict[str, VersionRecord | IngestResult] = dict(datasets_store.versions_by_snapshot(
        con, dataset, [r.version.snapshot_hash for r in new]))
    kept, twins = [], []
    for result in new:
        same = held.setdefault(result.version.snapshot_hash, result)
        source = same.source_hash if isinstance(same, VersionRecord) else \
            same.version.source_hash
        if same is result or source == result.version.source_hash:  # or re-checked bytes
            kept.append(result)
        else:
            result.created = False
            twins.append(_Twin(result, same))
    return kept, twins


@dataclass
class _Twin:
    """A file whose cleaned rows are a version's already: reported as that version."""

    result: IngestResult
    original: VersionRecord | IngestResult

    def settle(self) -> None:
        version = self.original if isinstance(self.original, VersionRecord) else \
            self.original.version
        self.result.version = version
        self.result.warnings = [
            f"the same cleaned data as {version.ref} (from {Path(version.source_path).name}):"
            " a duplicate, not stored again, so its rows count once"]


def _events_of(result: IngestResult) -> list[meta_store.NewEvent]:
    version, path = result.version, str(result.path)
    if result.rechecked:
        return [meta_store.NewEvent("dataset.rechecked", version.ref, None,
                                    {"source": path, "contract": version.contract_hash})]
    if not result.created:
        return []
    events = [meta_store.NewEvent("dataset.version", version.ref, None, {
        "source": path, "rows": version.rows, "warnings": result.warnings})]
    if result.warnings:  # accepted, but worth a look: the same alerts as served traffic
        events.append(meta_store.NewEvent("alert.quality", version.ref, "mlyard ingest", {
            "severity": "warning", "current": version.ref, "findings": result.warnings}))
    return events


def _check_and_store(ws: Workspace, path: Path, dataset: str, source_hash: str,
                     contract: dict[str, ColumnContract] | None,
                     earlier: list[VersionRecord]) -> Checked:
    """Check the file and store its snapshot; return what the catalog is to record,
    and the contract inferred from it when there was none."""
    sniffed = sniff(path)
    inferred = None
    if contract is None:
        contract = inferred = infer([sniffed], ws.config.data.target,
                                    detect_roles=False).contract
    checker = ContractChecker(contract, ws.config.data, ws.config.train.task, sniffed,
                              columns_of(sniffed))
    snapshot = write_snapshot(ws, sniffed, checker)
    return _version_of(ws, path, dataset, source_hash, contract, earlier, checker, snapshot,
                       sniffed.warnings), inferred


def _check_and_store_many(ws: Workspace, paths: list[Path], dataset: str,
                          source_hashes: list[str], contract: dict[str, ColumnContract],
                          earlier: list[list[VersionRecord]]) -> list[Checked | Exception]:
    """`_check_and_store` for a run of small files, with those of one shape read, checked
    and profiled together (core/data/small_files.py); each file's outcome is its own:
    its result, or the exception its own check would raise."""
    outcomes: list[Checked | Exception | None] = [None] * len(paths)
    group = small_files.group(paths, ws.config.data, ws.config.train.task, contract)
    passed: list[tuple[int, ContractChecker, pl.DataFrame, list[str]]] = []
    for index, checked in group.checked.items():
        try:
            warnings = checked.checker.finish()  # raises naming every problem
        except IngestRefused as refusal:  # the file's own outcome, raised at its turn
            outcomes[index] = refusal
            continue
        assert checked.rows is not None  # a file without a problem has rows
        passed.append((index, checked.checker, checked.rows, warnings))
    stored: list[tuple[int, ContractChecker, Snapshot]] = []
    snapshots = store_all_held(ws, [(rows, warnings) for _, _, rows, warnings in passed])
    for (index, checker, _, _), snapshot in zip(passed, snapshots, strict=True):
        if isinstance(snapshot, Exception):
            outcomes[index] = snapshot
        else:
            stored.append((index, checker, snapshot))
    types = {name: column.type for name, column in contract.items()}
    held = [snapshot.held for _, _, snapshot in stored if snapshot.held is not None]
    profiles = profile_frames(held, types) if held else []
    for (index, checker, snapshot), profile in zip(stored, profiles, strict=True):
        outcomes[index] = _version_of(ws, paths[index], dataset, source_hashes[index],
                                      contract, earlier[index], checker, snapshot,
                                      group.sniffed[index].warnings, profile), None
    for index, outcome in enumerate(outcomes):
        if outcome is None:  # not of the group's shape, or the group could not be read
            try:
                outcomes[index] = _check_and_store(ws, paths[index], dataset,
                                                   source_hashes[index], contract,
                                                   earlier[index])
            except Exception as exc:
                outcomes[index] = exc
    return [outcome for outcome in outcomes if outcome is not None]


def _version_of(ws: Workspace, path: Path, dataset: str, source_hash: str,
                contract: dict[str, ColumnContract], earlier: list[VersionRecord],
                checker: ContractChecker, snapshot: Snapshot, sniff_warnings: list[str],
                profile: Profile | None = None) -> IngestResult:
    """The version a checked and stored file becomes (or the one it re-checks)."""
    warnings = sniff_warnings + snapshot.warnings
    checked = contract_hash(contract, ws.config.data)
    types = {name: column.type for name, column in contract.items()}
    unchanged = next((v for v in earlier if v.snapshot_hash == snapshot.digest and
                      v.schema == types), None)
    if unchanged is not None:
        rechecked = replace(unchanged, contract_hash=checked)
        return IngestResult(path, rechecked, created=False, rechecked=True, warnings=warnings)
    if snapshot.repeats:
        warnings.append(f"{snapshot.repeats} rows repeated an {ws.config.data.id_column!r} "
                        "seen earlier in the file; kept the last row for each id")
    if profile is None:
        profile = profile_parquet(ws.objects.path_for(snapshot.digest), types, snapshot.held)
    for name, levels in checker.new_levels.items():
        profile[name].new_levels = dict(sorted(levels.items(), key=lambda kv: -kv[1]))
    warnings += _constant_columns(profile, snapshot.rows)
    record = VersionRecord(
        dataset=dataset, seq=0, source_hash=source_hash, source_path=str(path),
        snapshot_hash=snapshot.digest, rows=snapshot.rows, schema=dict(types),
        profile=profile, warnings=list(warnings),
        created_at=time.time(), contract_hash=checked,
    )
    return IngestResult(path, record, created=True, warnings=warnings)


def _constant_columns(profile: Profile, rows: int) -> list[str]:
    """Columns with one value in every row: usually a broken export, never a feature."""
    if rows < MIN_ROWS_FOR_CONSTANT:
        return []
    return [f"column {name!r} has the same value in all {rows:,} rows" for name, entry in
            profile.items() if entry.distinct == 1 and entry.nulls == 0]


def _contract_in_force(ws: Workspace, stored: str | None) -> dict[str, ColumnContract] | None:
    """The config's contract if it has one, else the stored one; None before the first
    file (whose contract is then inferred from it)."""
    if ws.config.data.columns:
        return dict(ws.config.data.columns)
    return contract_from_json(stored) if stored is not None else None
