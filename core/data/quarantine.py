"""Files refused at ingest, each kept as a copy with the reason it was refused.

An entry is resolved once a file from the same source path has since become a dataset
version (the file was fixed, or the contract was): it stays listed as resolved until
`clear_resolved` removes the copy. The user's own file is never touched here; only the
copies in the workspace are.
"""

from __future__ import annotations

import calendar
import glob
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from mlyard.core.workspace import Workspace
from mlyard.storage import datasets_store
from mlyard.storage.datasets_store import VersionRecord
from mlyard.storage.regular_files import regular

REASON_SUFFIX = ".reason.json"


@dataclass
class QuarantinedFile:
    path: Path  # the copy in quarantine
    source: str  # where it came from
    reason: str
    refused_at: str
    resolved_by: str | None = None  # the version that later came from the same source

    @property
    def resolved(self) -> bool:
        return self.resolved_by is not None


def quarantine_file(ws: Workspace, path: Path, source_hash: str, reason: str) -> Path:
    """Copy the refused file and its reason into quarantine; the source is left alone."""
    folder = ws.quarantine_dir
    folder.mkdir(parents=True, exist_ok=True)
    earlier = sorted(folder.glob(f"*-{source_hash[:12]}-{glob.escape(path.name)}"))
    earlier = [p for p in earlier if not p.name.endswith(REASON_SUFFIX)]
    if earlier:  # the same bad bytes again (a watcher restarting): one copy is enough
        return earlier[0]
    now = time.time()
    target = folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}-" \
                      f"{source_hash[:12]}-{path.name}"
    shutil.copyfile(path, target)
    _reason_file(target).write_text(json.dumps({
        "source": str(path), "blake3": source_hash, "reason": reason,
        "refused_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "refused_ts": now,
    }, indent=2) + "\n", encoding="utf-8")
    return target


@dataclass(frozen=True)
class DatasetsView:
    """The Datasets screen's two tabs: every version, and the files refused."""

    versions: list[VersionRecord]
    quarantined: list[QuarantinedFile]


def datasets_view(ws: Workspace) -> DatasetsView:
    with ws.catalog.session() as con:
        versions = datasets_store.list_versions(con, None)
    return DatasetsView(versions, list_quarantined(ws))


def list_quarantined(ws: Workspace) -> list[QuarantinedFile]:
    """Newest first, each marked resolved when its source has been ingested since; a
    reason file that cannot be read is shown as such, not skipped."""
    folder = ws.quarantine_dir
    if not folder.is_dir():
        return []
    found: list[tuple[QuarantinedFile, float]] = []
    for reason_file in regular(sorted(folder.glob(f"*{REASON_SUFFIX}"), reverse=True)):
        try:
            record = json.loads(reason_file.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            record = {"reason": f"unreadable reason file {reason_file.name}"}
        entry = QuarantinedFile(_copy_of(reason_file), str(record.get("source", "?")),
                                str(record.get("reason", "?")),
                                str(record.get("refused_at", "?")))
        found.append((entry, _refused_ts(record)))
    if found:
        with ws.catalog.session() as con:
            newest = datasets_store.newest_by_source_path(
                con, sorted({entry.source for entry, _ in found}))
        for entry, refused in found:
            ref, created = newest.get(entry.source, (None, 0.0))
            if ref is not None and created > refused:
                entry.resolved_by = ref
    return [entry for entry, _ in found]


def clear_resolved(ws: Workspace) -> list[QuarantinedFile]:
    """Remove the copies of resolved entries (and their reasons); return them."""
    cleared = [entry for entry in list_quarantined(ws) if entry.resolved]
    for entry in cleared:
        entry.path.unlink(missing_ok=True)
        _reason_file(entry.path).unlink(missing_ok=True)
    return cleared


def _copy_of(reason_file: Path) -> Path:
    return reason_file.with_name(reason_file.name[: -len(REASON_SUFFIX)])


def _reason_file(copy: Path) -> Path:
    return copy.with_name(copy.name + REASON_SUFFIX)


def _refused_ts(record: dict[str, object]) -> float:
    """When the file was refused, as a timestamp (older entries hold only the text)."""
    stamp = record.get("refused_ts")
    if isinstance(stamp, (int, float)):
        return float(stamp)
    try:
        return float(calendar.timegm(time.strptime(str(record.get("refused_at")),
                                                   "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return float("inf")  # unknown: never taken as resolved
