"""Reading dataset versions back: list, show, diff and load."""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from mlyard.core.config import ColumnContract
from mlyard.core.data.contract import contract_from_json
from mlyard.core.data.profile import ProfileDiff, Shift, diff_profiles
from mlyard.core.errors import UsageError
from mlyard.core.workspace import Workspace
from mlyard.storage import datasets_store
from mlyard.storage.datasets_store import VersionRecord as VersionRecord  # the UI shows these

_REF_RE = re.compile(r"^(?:(?P<dataset>[^:]+):)?v?(?P<seq>\d+)$")


@dataclass
class VersionDiff:
    old: VersionRecord
    new: VersionRecord
    changes: ProfileDiff


def parse_version_ref(ws: Workspace, ref: str) -> tuple[str, int]:
    """`v3`, `3` or `churn:v3`; the dataset defaults to the project's."""
    match = _REF_RE.match(ref.strip())
    if not match:
        raise UsageError(f"dataset version {ref!r}: expected v3, 3 or DATASET:v3")
    return match.group("dataset") or ws.config.dataset_name, int(match.group("seq"))


def list_versions(ws: Workspace, dataset: str | None = None) -> list[VersionRecord]:
    with ws.catalog.session() as con:
        return datasets_store.list_versions(con, dataset)


def get_version(ws: Workspace, ref: str) -> VersionRecord:
    dataset, seq = parse_version_ref(ws, ref)
    with ws.catalog.session() as con:
        return datasets_store.get_version(con, dataset, seq)


def diff_versions(ws: Workspace, old_ref: str, new_ref: str) -> VersionDiff:
    """Schema and profile differences from `old_ref` to `new_ref`."""
    old, new = get_version(ws, old_ref), get_version(ws, new_ref)
    return VersionDiff(old, new, diff_profiles(old.profile, new.profile,
                                               Shift(old.rows, new.rows)))


def load_version(ws: Workspace, ref: str) -> pl.DataFrame:
    """The cleaned rows of one version, read from its verified snapshot."""
    version = get_version(ws, ref)
    return pl.read_parquet(ws.objects.open_verified(version.snapshot_hash))


def select_versions(ws: Workspace, refs: list[str] | None = None,
                    window: int = 0) -> list[VersionRecord]:
    """The named versions, else the last `window` current versions (0: all) of the
    project's data: a version superseded by a later one of the same source bytes (a
    re-check after a contract edit) is left out, so no row counts twice."""
    if refs:
        return [get_version(ws, ref) for ref in refs]
    versions = list_versions(ws, ws.config.dataset_name)
    if not versions:
        raise UsageError(f"dataset {ws.config.dataset_name!r} has no versions; "
                         "run `mlyard ingest FILE` first")
    replaced = superseded(versions)
    current = [v for v in versions if v.ref not in replaced]
    return current[-window:] if window > 0 else current


def superseded(versions: list[VersionRecord]) -> dict[str, str]:
    """Version ref -> the later version of the same source bytes that replaces it."""
    newest: dict[str, VersionRecord] = {}
    for version in versions:  # oldest first: the last one seen of each source wins
        newest[version.source_hash] = version
    return {v.ref: newest[v.source_hash].ref for v in versions
            if newest[v.source_hash].seq != v.seq}


def read_versions(ws: Workspace, versions: list[VersionRecord]) -> pl.DataFrame:
    """The versions' rows stacked in order, each snapshot checked against its hash."""
    frames = [pl.read_parquet(ws.objects.open_verified(v.snapshot_hash)) for v in versions]
    return pl.concat(frames, how="vertical_relaxed")


def load_versions(ws: Workspace, refs: list[str] | None = None) -> pl.DataFrame:
    """Several versions stacked in order (default: every version of the project's dataset)."""
    return read_versions(ws, select_versions(ws, refs))


def current_contract(ws: Workspace) -> dict[str, ColumnContract]:
    """The contract in force: the config's columns, else the one stored at first ingest."""
    if ws.config.data.columns:
        return dict(ws.config.data.columns)
    with ws.catalog.session() as con:
        stored = datasets_store.stored_contract(con, ws.config.dataset_name)
    return contract_from_json(stored) if stored else {}
