"""`mlyard sync REMOTE`: bring another workspace's runs, models and dataset versions here
(or send this one's there), by content, so that a second sync moves nothing.

Order makes a sync safe to interrupt: the plan is made from both sides' catalogs; then,
for each batch of runs (ROWS_PER_BATCH rows at most, a run never split), the missing
objects go over first (each checked against its hash and renamed into place) and the rows
last, in one transaction on the receiving side. A sync killed midway leaves objects
nothing names yet (the next sync finds them there and does not send them again) and a
catalog holding whole batches only.

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
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlyard.core.errors import UsageError
from mlyard.core.sync.peer import LocalPeer, Peer, SyncRefused
from mlyard.core.sync.wire import SshPeer
from mlyard.core.workspace import CONFIG_NAME, Workspace, open_workspace

KINDS = ("runs", "models", "datasets")
# Rows (params, metric points, log lines, ...) per transaction on the receiving side, at
# most: what bounds a sync's memory (~100 MB of rows in flight), and large enough that a
# batch's fixed cost (a unit of work on each side) is small.
ROWS_PER_BATCH = 200_000

# (bytes sent so far, bytes known to send so far: it grows batch by batch)
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class AliasOutcome:
    """An alias `--aliases` tried to move on the receiving side, and why it did not."""

    alias: str
    version: str | None  # model/N there, None when the run has no version there
    moved: bool
    why: list[str]  # the failed gates (or what is missing) when it did not move


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
    aliases: list[AliasOutcome] = field(default_factory=list)
    dry_run: bool = False


def connect(ws: Workspace, remote: str, remote_command: str = "mlyard") -> Peer:
    """REMOTE as a peer: `ssh://[user@]host[:port]/path` or a project folder here."""
    if remote.startswith("ssh://"):
        parts = urlsplit(remote)
        if not parts.hostname or not parts.path.strip("/"):
            raise UsageError(f"remote {remote!r}: expected ssh://[user@]host[:port]/path/to/"
                             "project (use /~/churn for a folder in the home directory)")
        if parts.hostname.startswith("-") or (parts.username or "").startswith("-"):
            # ssh would read it as an option (`-oProxyCommand=...` runs a command).
            raise UsageError(f"remote {remote!r}: a host or user cannot start with '-'")
        host = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        path = parts.path[1:] if parts.path.startswith("/~") else parts.path
        return SshPeer(remote, host, parts.port, path, remote_command)
    if re.match(r"^[a-z][a-z0-9+.-]*://", remote):
        raise UsageError(f"remote {remote!r}: expected a project folder or ssh://host/path")
    folder = Path(remote).expanduser()
    if not folder.is_dir():
        raise UsageError(f"remote {remote!r}: no such folder (expected a project folder "
                         "or ssh://host/path)")
    other = open_workspace(folder, register=False, stranger=True)
    if other.root.resolve() == ws.root.resolve():
        raise UsageError(f"remote {remote!r} is this project's own workspace")
    return LocalPeer(other, str(folder.resolve()))


def copy_config_command(remote: str) -> str:
    """The command that copies REMOTE's mlyard.toml here. Sync never writes a config it
    was sent: a remote is a stranger, and a config names commands that alerts run."""
    if remote.startswith("ssh://"):
        parts = urlsplit(remote)
        host = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        path = (parts.path[1:] if parts.path.startswith("/~") else parts.path).rstrip("/")
        port = f"-P {parts.port} " if parts.port else ""
        return f"scp {port}{shlex.quote(f'{host}:{path}/{CONFIG_NAME}')} ."
    source = Path(remote).expanduser() / CONFIG_NAME
    return f"cp {shlex.quote(str(source))} ."


def sync(ws: Workspace, remote: Peer, push: bool = False,
         kinds: tuple[str, ...] = KINDS, aliases: bool = False, dry_run: bool = False,
         on_progress: ProgressCallback | None = None) -> SyncResult:
    """Bring `remote`'s runs, model versions and dataset versions here (`push`: send
    this workspace's there); `kinds` narrows what goes (model versions bring their runs).

    One sync into a workspace at a time: a second, started while the first runs, would
    find the first one's runs arriving between its look and its write, so it is refused
    with one line instead.
    """
    here = LocalPeer(ws, str(ws.project_dir))
    destination = remote if push else here
    if isinstance(destination, LocalPeer):  # over ssh, the box's agent claims its own
        destination.claim()
    try:
        return _sync(here, remote, push, kinds, aliases, dry_run, on_progress)
    finally:
        here.close()


def _sync(here: LocalPeer, remote: Peer, push: bool, kinds: tuple[str, ...], aliases: bool,
          dry_run: bool, on_progress: ProgressCallback | None) -> SyncResult:
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
    sent = 0
    run_rows = {run_id: int(count) for run_id, *_, count in have["runs"]}
    for rows in _batches(source, run_ids, run_rows, dataset_keys, model_runs):
        sizes = _missing_objects(source, destination, rows)
        result.objects += len(sizes)
        result.bytes += sum(sizes.values())
        if dry_run:
            result.model_versions += [[f"{v['model']}/{v['version']}", ""]
                                      for v in rows["model_versions"]]
            new = [v for v in rows["dataset_versions"]
                   if (v["dataset"], v["source_hash"]) not in known]
            known |= {(v["dataset"], v["source_hash"]) for v in new}
            result.dataset_versions += [f"{v['dataset']}:v{v['seq']}" for v in new]
            continue
        sent = _copy_objects(source, destination, sizes, sent, result.bytes, on_progress)
        if rows["runs"] or rows["model_versions"] or rows["dataset_versions"]:
            batch = {run["run_id"] for run in rows["runs"]}
            applied = destination.apply(rows, [r for r in replace if r in batch],
                                        source.location, str(theirs.get("workspace_id", "")))
            result.model_versions += applied["model_versions"]
            result.dataset_versions += applied["dataset_versions"]
    if aliases and not dry_run:
        result.aliases = _move_aliases(have, want, destination, source.location)
    return result


def _batches(source: Peer, run_ids: list[str], run_rows: dict[str, int],
             dataset_keys: list[list[Any]], model_runs: list[str]
             ) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The rows to send, in batches of about ROWS_PER_BATCH rows (a run is never split);
    the last batch carries the dataset versions asked for and the model versions."""
    batches: list[list[str]] = [[]]
    rows = 0
    for run_id in run_ids:
        if batches[-1] and rows + run_rows[run_id] > ROWS_PER_BATCH:
            batches.append([])
            rows = 0
        batches[-1].append(run_id)
        rows += run_rows[run_id]
    for index, batch in enumerate(batches):
        last = index == len(batches) - 1
        yield source.export(batch, dataset_keys if last else [], model_runs if last else [])


def _missing_objects(source: Peer, destination: Peer,
                     rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """The objects the rows name that the destination lacks, with their sizes."""
    digests = sorted({r["object_hash"] for r in rows["artifacts"]}
                     | {r["snapshot_hash"] for r in rows["dataset_versions"]}
                     | {r[c] for r in rows["model_versions"] for c in ("model_hash",
                                                                      "card_hash")})
    missing = destination.missing(digests) if digests else []
    return source.sizes(missing) if missing else {}


def _runs_to_send(have: dict[str, Any], want: dict[str, Any], kinds: tuple[str, ...],
                  result: SyncResult) -> tuple[list[str], list[str]]:
    """The runs the destination lacks or holds an older copy of; refuse a conflict."""
    ours = {run_id: (fingerprint, mirrored) for run_id, _, fingerprint, mirrored, _
            in want["runs"]}
    wanted = {run_id for run_id, *_ in have["model_versions"]} if "models" in kinds else set()
    conflicts = []
    for run_id, _, fingerprint, mirrored, _ in have["runs"]:
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


def _copy_objects(source: Peer, destination: Peer, sizes: dict[str, int], sent: int,
                  total: int, on_progress: ProgressCallback | None) -> int:
    """Send each object; return the bytes sent so far in this sync."""

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
    return sent


def _move_aliases(have: dict[str, Any], want: dict[str, Any], destination: Peer,
                  origin: str) -> list[AliasOutcome]:
    moves = []
    for alias, run_id in sorted(have["aliases"].items()):
        if want["aliases"].get(alias) == run_id:
            continue
        said = destination.move_alias(alias, run_id, f"mlyard sync from {origin}")
        moves.append(AliasOutcome(str(said.get("alias", alias)),
                                  None if said.get("version") is None else str(said["version"]),
                                  bool(said.get("moved")),
                                  [str(why) for why in said.get("why") or []]))
    return moves

