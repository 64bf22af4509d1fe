"""`mlyard sync REMOTE`: bring another workspace's runs, models and dataset versions here
(or send this one's there), by content, so that a second sync moves nothing.

Order makes a sync safe to interrupt: the plan is made from both sides' catalogs, the
missing objects go over first (each checked against its hash and renamed into place),
and the rows last, in one transaction on the receiving side. A sync killed before that
transaction leaves objects nothing names yet (the next sync finds them there and does not
send them again) and a catalog as it was.

A run keeps its id on both sides; the receiving side tags its copy with where it came
from (`mlyard.synced_from`), and such a copy is the sender's to update: a run that was
still training when it came over is brought up to date by the next sync. A run with the
same id and different content that is not such a copy is a conflict, refused by name.
Model and dataset versions are numbered by the receiving side (in the sender's order, so
a one-way flow keeps the numbers); aliases move only with `aliases=True`, and then only
through the receiving side's gates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlyard.core.errors import UsageError
from mlyard.core.sync.peer import LocalPeer, Peer, SyncRefused
from mlyard.core.sync.wire import SshPeer
from mlyard.core.workspace import Workspace, open_workspace

KINDS = ("runs", "models", "datasets")

# (bytes sent so far, bytes to send in all)
ProgressCallback = Callable[[int, int], None]


@dataclass
class SyncResult:
    """What a sync did (or, with dry_run, would do)."""

    source: str
    destination: str
    new_runs: list[str] = field(default_factory=list)
    updated_runs: list[str] = field(default_factory=list)
    model_versions: list[list[str]] = field(default_factory=list)  # [theirs, ours]
    dataset_versions: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    aliases: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False


def connect(ws: Workspace, remote: str, remote_command: str = "mlyard") -> Peer:
    """REMOTE as a peer: `ssh://[user@]host[:port]/path` or a project folder here."""
    if remote.startswith("ssh://"):
        parts = urlsplit(remote)
        if not parts.hostname or not parts.path.strip("/"):
            raise UsageError(f"remote {remote!r}: expected ssh://[user@]host[:port]/path/to/"
                             "project (use /~/churn for a folder in the home directory)")
        host = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        path = parts.path[1:] if parts.path.startswith("/~") else parts.path
        return SshPeer(remote, host, parts.port, path, remote_command)
    if re.match(r"^[a-z][a-z0-9+.-]*://", remote):
        raise UsageError(f"remote {remote!r}: expected a project folder or ssh://host/path")
    folder = Path(remote).expanduser()
    if not folder.is_dir():
        raise UsageError(f"remote {remote!r}: no such folder (expected a project folder "
                         "or ssh://host/path)")
    other = open_workspace(folder, register=False)
    if other.root.resolve() == ws.root.resolve():
        raise UsageError(f"remote {remote!r} is this project's own workspace")
    return LocalPeer(other, str(folder.resolve()))


def sync(ws: Workspace, remote: Peer, push: bool = False,
         kinds: tuple[str, ...] = KINDS, aliases: bool = False, dry_run: bool = False,
         on_progress: ProgressCallback | None = None) -> SyncResult:
    """Bring `remote`'s runs, model versions and dataset versions here (`push`: send
    this workspace's there); `kinds` narrows what goes (model versions bring their runs)."""
    here = LocalPeer(ws, str(ws.project_dir))
    source, destination = (here, remote) if push else (remote, here)
    theirs, ours = source.describe(), destination.describe()
    if theirs["target"] and ours["target"] and theirs["target"] != ours["target"]:
        raise SyncRefused(f"{source.location} predicts {theirs['target']!r} and "
                          f"{destination.location} predicts {ours['target']!r} ([data] "
                          "target): not the same project; nothing was synced")
    have, want = source.inventory(), destination.inventory()
    result = SyncResult(source.location, destination.location, dry_run=dry_run)
    run_ids, replace = _runs_to_send(have, want, kinds, result)
    held = {run_id for run_id, *_ in want["model_versions"]}
    model_runs = [run_id for run_id, *_ in have["model_versions"]
                  if run_id not in held and "models" in kinds]
    known = {(name, source_hash) for name, _, source_hash, _ in want["dataset_versions"]}
    dataset_keys = [[name, seq] for name, seq, source_hash, _ in have["dataset_versions"]
                    if "datasets" in kinds and (name, source_hash) not in known]
    rows = source.export(run_ids, dataset_keys, model_runs)
    result.model_versions = [[f"{v['model']}/{v['version']}", ""] for v in rows["model_versions"]]
    result.dataset_versions = [f"{v['dataset']}:v{v['seq']}" for v in rows["dataset_versions"]
                               if (v["dataset"], v["source_hash"]) not in known]
    digests = sorted({r["object_hash"] for r in rows["artifacts"]}
                     | {r["snapshot_hash"] for r in rows["dataset_versions"]}
                     | {r[c] for r in rows["model_versions"] for c in ("model_hash",
                                                                      "card_hash")})
    missing = destination.missing(digests) if digests else []
    sizes = source.sizes(missing) if missing else {}
    result.objects, result.bytes = len(missing), sum(sizes.values())
    if dry_run:
        return result
    _copy_objects(source, destination, sizes, on_progress)
    if rows["runs"] or rows["model_versions"] or rows["dataset_versions"]:
        applied = destination.apply(rows, replace, source.location)
        result.model_versions = applied["model_versions"]
        result.dataset_versions = applied["dataset_versions"]
    if aliases:
        result.aliases = _move_aliases(have, want, destination, source.location)
    return result


def _runs_to_send(have: dict[str, Any], want: dict[str, Any], kinds: tuple[str, ...],
                  result: SyncResult) -> tuple[list[str], list[str]]:
    """The runs the destination lacks or holds an older copy of; refuse a conflict."""
    ours = {run_id: (fingerprint, mirrored) for run_id, _, fingerprint, mirrored
            in want["runs"]}
    wanted = {run_id for run_id, *_ in have["model_versions"]} if "models" in kinds else set()
    conflicts = []
    for run_id, _, fingerprint, mirrored in have["runs"]:
        if "runs" not in kinds and run_id not in wanted:
            continue
        if run_id not in ours:
            result.new_runs.append(run_id)
        elif ours[run_id][0] == fingerprint or mirrored:
            continue  # the same, or theirs is a copy of ours: ours is the one to keep
        elif ours[run_id][1]:
            result.updated_runs.append(run_id)
        else:
            conflicts.append(run_id)
    if conflicts:
        raise SyncRefused(
            f"run {conflicts[0]} is on both sides with different content and neither is a "
            f"copy of the other{f' (and {len(conflicts) - 1} more)' if len(conflicts) > 1 else ''}"
            "; nothing was synced")
    return result.new_runs + result.updated_runs, list(result.updated_runs)


def _copy_objects(source: Peer, destination: Peer, sizes: dict[str, int],
                  on_progress: ProgressCallback | None) -> None:
    total, sent = sum(sizes.values()), 0

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal sent
        for chunk in chunks:
            sent += len(chunk)
            if on_progress is not None:
                on_progress(sent, total)
            yield chunk

    for digest in sizes:
        size, chunks = source.read_object(digest)
        destination.write_object(digest, size, counted(chunks))


def _move_aliases(have: dict[str, Any], want: dict[str, Any], destination: Peer,
                  origin: str) -> list[dict[str, Any]]:
    moves = []
    for alias, run_id in sorted(have["aliases"].items()):
        if want["aliases"].get(alias) == run_id:
            continue
        moves.append(destination.move_alias(alias, run_id, f"mlyard sync from {origin}"))
    return moves

