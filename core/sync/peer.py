"""One side of a sync: a workspace on this machine, answering in plain JSON-able values.

`mlyard sync` talks to both sides through the same small set of calls, so a project
folder here and one behind `ssh` (where `mlyard sync-agent` runs these same calls on the
other machine) behave alike. Everything a call returns is plain data: lists, dicts,
strings and numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from mlyard.core.automation import promotion
from mlyard.core.errors import MlyardError
from mlyard.core.models import registry
from mlyard.core.models.trial import Candidate, check_loads, spec_of
from mlyard.core.tracking import artifacts
from mlyard.core.tracking.provenance import SYNCED_ID_TAG, SYNCED_TAG
from mlyard.core.workspace import Workspace
from mlyard.storage import meta_store, sync_store
from mlyard.storage.errors import CatalogError
from mlyard.storage.objects import hash_file

PROTOCOL = 2  # 2: workspaces say who they are; `apply` records it
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class SyncRefused(MlyardError):
    title = "Sync refused"


class Peer(Protocol):
    """The calls a sync makes of either side."""

    location: str

    def describe(self) -> dict[str, Any]: ...
    def inventory(self) -> dict[str, Any]: ...
    def export(self, run_ids: list[str], dataset_keys: list[list[Any]],
               model_run_ids: list[str]) -> dict[str, list[dict[str, Any]]]: ...
    def missing(self, hashes: list[str]) -> list[str]: ...
    def sizes(self, hashes: list[str]) -> dict[str, int]: ...
    def read_object(self, digest: str) -> tuple[int, Iterator[bytes]]: ...
    def write_object(self, digest: str, size: int, chunks: Iterable[bytes]) -> None: ...
    def apply(self, rows: dict[str, list[dict[str, Any]]], replace: list[str],
              origin: str, origin_id: str) -> dict[str, Any]: ...
    def move_alias(self, alias: str, run_id: str, reason: str) -> dict[str, Any]: ...
    def close(self) -> None: ...


def _digest(text: str) -> str:
    """An object's name as the other side sent it: 64 hex digits, or refused."""
    if not isinstance(text, str) or not _DIGEST.match(text):
        raise SyncRefused(f"{str(text)[:80]!r} is not an object hash (64 hex digits)")
    return text


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


class LocalPeer:
    """A workspace this process opens itself."""

    def __init__(self, ws: Workspace, location: str) -> None:
        self.ws = ws
        self.location = location
        self._receiving: FileLock | None = None

    def claim(self) -> None:
        """Hold this workspace for one incoming sync until `close`: a second, started
        meanwhile, would see the first one's runs arrive between its look and its write
        (it once failed with a misleading "not a copy"), so it is refused with one line.
        Taken by the syncer for a workspace here, and by the agent at the first write of
        a push over ssh."""
        if self._receiving is not None:
            return
        self.ws.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.ws.root / "sync.lock"), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise SyncRefused(f"another `mlyard sync` into {self.location} is running; run "
                              "this one again when it ends") from None
        self._receiving = lock

    def describe(self) -> dict[str, Any]:
        with self.ws.catalog.session() as con:
            identity = meta_store.workspace_id(con)
        return {"protocol": PROTOCOL, "project": self.ws.project, "workspace_id": identity,
                "model": registry.model_name(self.ws), "target": self.ws.config.data.target}

    def inventory(self) -> dict[str, Any]:
        with self.ws.catalog.session() as con:
            return {
                "runs": [[e.run_id, e.status, e.fingerprint, e.mirrored_from, e.rows]
                         for e in sync_store.run_entries(con, SYNCED_TAG, SYNCED_ID_TAG)],
                "model_versions": [[row["run_id"], row["version"], row["model_hash"],
                                    row["card_hash"]]
                                   for row in sync_store.model_entries(
                                       con, registry.model_name(self.ws))],
                "dataset_versions": [[row["dataset"], row["seq"], row["source_hash"],
                                      row["snapshot_hash"]]
                                     for row in sync_store.dataset_entries(con)],
                "aliases": sync_store.aliases(con, registry.model_name(self.ws)),
            }

    def export(self, run_ids: list[str], dataset_keys: list[list[Any]],
               model_run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        with self.ws.catalog.session() as con:
            rows = sync_store.export_rows(con, run_ids, [(str(d), int(s))
                                                         for d, s in dataset_keys],
                                          model_run_ids)
        carried: dict[str, list[dict[str, Any]]] = json.loads(json.dumps(rows, default=str))
        return carried  # as the wire would carry it, so both kinds of peer agree

    def missing(self, hashes: list[str]) -> list[str]:
        return [digest for digest in map(_digest, hashes)
                if not self.ws.objects.path_for(digest).exists()]

    def sizes(self, hashes: list[str]) -> dict[str, int]:
        """Each object's size (read_object checks its content)."""
        found = {}
        for digest in map(_digest, hashes):
            path = self.ws.objects.path_for(digest)
            if not path.is_file():
                raise SyncRefused(f"{self.location}: object {digest[:12]} is missing from its "
                                  "store (`mlyard doctor` there says more)")
            found[digest] = path.stat().st_size
        return found

    def read_object(self, digest: str) -> tuple[int, Iterator[bytes]]:
        """The object's size and its bytes (checked against its hash first)."""
        path = self.ws.objects.open_verified(_digest(digest))
        return path.stat().st_size, _chunks(path)

    def write_object(self, digest: str, size: int, chunks: Iterable[bytes]) -> None:
        """Store an object that arrives in chunks; its bytes must hash to its name."""
        self.claim()
        _digest(digest)
        tmp = self.ws.objects.new_temp()
        try:
            written = 0
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
            if written != size or hash_file(tmp) != digest:
                raise SyncRefused(f"object {digest[:12]} arrived damaged ({written:,} of "
                                  f"{size:,} bytes, or a different hash); nothing was added")
            self.ws.objects.adopt(tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def apply(self, rows: dict[str, list[dict[str, Any]]], replace: list[str],
              origin: str, origin_id: str) -> dict[str, Any]:
        """Add another workspace's rows in one transaction, after the checks an import
        makes: every object they name is here, each model predicts this project's target
        and loads in a child process."""
        self.claim()
        named = [r["object_hash"] for r in rows["artifacts"]]
        named += [r["snapshot_hash"] for r in rows["dataset_versions"]]
        named += [r[c] for r in rows["model_versions"] for c in ("model_hash", "card_hash")]
        absent = self.missing(sorted(set(named)))
        if absent:
            raise SyncRefused(f"{self.location}: object {absent[0][:12]} is named by the "
                              "rows but has not arrived; nothing was added")
        target = self.ws.config.data.target
        for version in rows["model_versions"]:
            label = f"{origin}: model {version['model']}/{version['version']}"
            candidate = Candidate(self.ws.objects.open_verified(version["model_hash"]), label,
                                  self.ws.objects.read_bytes(version["card_hash"]))
            theirs = spec_of(candidate).target
            if target and theirs != target:
                raise SyncRefused(f"{label} predicts {theirs!r}, this project predicts "
                                  f"{target!r} ([data] target); nothing was added")
            check_loads(self.ws, candidate)
        try:
            with self.ws.catalog.session() as con:
                summary = sync_store.apply(con, rows, replace, registry.model_name(self.ws),
                                           self.ws.project,
                                           {SYNCED_TAG: origin, SYNCED_ID_TAG: origin_id},
                                           (SYNCED_TAG, SYNCED_ID_TAG),
                                           {"model_hash": artifacts.MODEL,
                                            "card_hash": artifacts.MODEL_CARD})
                if summary["runs"] or summary["dataset_versions"]:
                    meta_store.add_event(con, "sync.applied", origin, None, {
                        "runs": len(summary["runs"]), "replaced": len(replace),
                        "model_versions": summary["model_versions"],
                        "dataset_versions": summary["dataset_versions"]})
        except CatalogError as exc:
            raise SyncRefused(f"{self.location}: {exc}; nothing was added") from None
        return summary

    def move_alias(self, alias: str, run_id: str, reason: str) -> dict[str, Any]:
        """Point `alias` at the version of `run_id` here, only if that version passes
        this side's gates; say what happened either way (`why` it did not move)."""
        ref = self._version_of(run_id)
        if ref is None:
            return {"alias": alias, "version": None, "moved": False,
                    "why": [f"run {run_id[:8]} is not a model version here (sync --models)"]}
        if alias == "champion":  # promote judges the gates in the same unit as the move
            try:
                results = promotion.promote(self.ws, ref, reason).results
            except promotion.GatesFailed as failed:
                results = failed.results
        else:
            results = promotion.check(self.ws, ref).results
        why = [f"gate {r.gate} failed ({r.detail})" for r in results if not r.passed]
        if alias != "champion" and not why:
            registry.set_alias(self.ws, alias, ref, reason)
        version = registry.resolve(self.ws, ref)
        return {"alias": alias, "version": f"{version.model}/{version.version}",
                "moved": not why, "why": why}

    def _version_of(self, run_id: str) -> str | None:
        with self.ws.catalog.session() as con:
            for row in sync_store.model_entries(con, registry.model_name(self.ws)):
                if row["run_id"] == run_id:
                    return str(row["version"])
        return None

    def close(self) -> None:
        """Let the next sync in (every call opened and closed the catalog)."""
        if self._receiving is not None:
            self._receiving.release()
            self._receiving = None

