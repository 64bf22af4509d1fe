"""`mlyard export` / `mlyard import`: a run or model version as one self-contained file.

A bundle is a gzipped tar with `manifest.json` (the catalog rows), `objects/<blake3>`
(model, card, artifacts, dataset snapshots) and `checksums.json` (blake3 of every other
member). Import refuses anything that is not exactly that: links, absolute or `..`
paths, unexpected names, a checksum or content hash that does not match, or a
truncated archive. Rows go into the catalog in one transaction, so nothing is ever
half-imported.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from mlyard.core.errors import MlyardError
from mlyard.core.models import registry
from mlyard.core.models.card import read_card
from mlyard.core.models.gates import IMPORTED_TAG, ORIGIN_TAG
from mlyard.core.models.trial import Candidate, check_loads
from mlyard.core.workspace import Workspace
from mlyard.storage import bundle_store, meta_store, runs_store
from mlyard.storage.objects import hash_file

FORMAT = "mlyard-bundle"
FORMAT_VERSION = 1
_OBJECT_NAME = re.compile(r"^objects/[0-9a-f]{64}$")
_MAX_MEMBERS = 100_000


class BundleRefused(MlyardError):
    title = "Bundle refused"


@dataclass(frozen=True)
class Exported:
    run_id: str
    objects: int  # files in the bundle beside its manifest


@dataclass
class ImportResult:
    run_id: str
    model_versions: list[str]
    dataset_versions: list[str]
    objects: int


def export_bundle(ws: Workspace, ref: str, target: Path) -> Exported:
    """Write RUN or MODEL (a model reference) to `target`."""
    run_id = registry.run_id_for(ws, ref)
    with ws.catalog.session() as con:
        rows = bundle_store.export_rows(con, run_id)
    hashes = sorted({r["object_hash"] for r in rows["artifacts"]}
                    | {v["snapshot_hash"] for v in rows["dataset_versions"]})
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "exported_at": time.time(),
                "project": ws.project, "run_id": run_id, "rows": rows, "objects": hashes}
    manifest_bytes = json.dumps(manifest, default=str, sort_keys=True).encode()
    checksums = {"manifest.json": blake3.blake3(manifest_bytes).hexdigest()}
    checksums.update({f"objects/{h}": h for h in hashes})
    tmp = target.with_name(target.name + ".partial")
    with tarfile.open(tmp, "w:gz") as archive:
        _add_bytes(archive, "manifest.json", manifest_bytes)
        for digest in hashes:
            archive.add(ws.objects.open_verified(digest), arcname=f"objects/{digest}",
                        recursive=False)
        _add_bytes(archive, "checksums.json", json.dumps(checksums, sort_keys=True).encode())
    tmp.replace(target)
    return Exported(run_id, len(hashes))


def import_bundle(ws: Workspace, source: Path) -> ImportResult:
    """Check every member of the bundle, then add its objects and rows to this workspace.

    Import only adds: rows must all belong to the bundle's one run (never to a run or
    version already here), every object a row names must be in the bundle, only members
    the manifest lists are unpacked, sizes are checked against `[bundles]` before any
    byte is written, and each model is first loaded in a child process.
    """
    limits = ws.config.bundles
    scratch_root = ws.objects.root / "tmp"  # on the store's disk: adopting is a rename
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        folder = Path(scratch)
        manifest, checksums = _extract_checked(source, folder, limits.max_member_mb * 2**20,
                                               limits.max_unpacked_mb * 2**20,
                                               limits.max_expansion)
        _check_objects(source, folder, manifest, checksums)
        _check_rows(source, manifest)
        for version in manifest["rows"]["model_versions"]:
            objects = folder / "objects"
            check_loads(ws, Candidate(objects / version["model_hash"],
                                      f"{source}: model {version['model']}/{version['version']}",
                                      (objects / version["card_hash"]).read_bytes()))
        origin = _adopt_rows(ws, source, folder, manifest)
        for digest in manifest["objects"]:
            tmp = ws.objects.new_temp()
            shutil.copyfile(folder / "objects" / digest, tmp)
            ws.objects.adopt(tmp)
        try:
            with ws.catalog.session() as con:
                summary = bundle_store.import_rows(con, manifest["rows"])
                # Its metrics are claims until scored here (see gates.IMPORTED_TAG).
                runs_store.set_tags(con, summary["run_id"], {IMPORTED_TAG: str(source),
                                                             ORIGIN_TAG: origin})
                meta_store.add_event(con, "bundle.imported", summary["run_id"], None,
                                     {"source": str(source)})
        except (KeyError, TypeError, IndexError) as exc:
            raise BundleRefused(f"{source}: manifest rows are malformed ({exc!r})") from None
    return ImportResult(summary["run_id"], summary["model_versions"],
                        summary["dataset_versions"], len(manifest["objects"]))


def _adopt_rows(ws: Workspace, source: Path, folder: Path, manifest: dict[str, Any]) -> str:
    """Rows from another project become this project's: its run and model versions are
    registered under this project's name. Return the project they came from.

    A model that predicts another column than this project's target is refused before
    anything is written: registered here, it would be scored against the wrong data.
    """
    origin = str(manifest.get("project") or "")
    rows = manifest["rows"]
    target = ws.config.data.target
    for version in rows.get("model_versions", []):
        label = f"{source}: model {version.get('model')}/{version.get('version')}"
        theirs = read_card((folder / "objects" / str(version.get("card_hash"))).read_bytes(),
                           label).spec.target
        if target and theirs != target:
            raise BundleRefused(f"{source}: model {version.get('model')}/"
                                f"{version.get('version')} predicts {theirs!r}, this project "
                                f"predicts {target!r} ([data] target); not imported")
    for run in rows["runs"]:
        run["project"] = ws.project
    for version in rows.get("model_versions", []):
        version["model"] = registry.model_name(ws)
    return origin


def _check_rows(source: Path, manifest: dict[str, Any]) -> None:
    """Every row belongs to the bundle's one run and names only objects it carries."""
    rows = manifest.get("rows")
    if not isinstance(rows, dict) or not isinstance(rows.get("runs"), list) \
            or len(rows["runs"]) != 1:
        raise BundleRefused(f"{source}: the manifest must hold exactly one run")
    run_id = rows["runs"][0].get("run_id")
    objects = set(manifest.get("objects", []))
    try:
        for table in (*bundle_store.RUN_TABLES, "model_versions"):
            for row in rows.get(table, []):
                if row.get("run_id") != run_id:
                    raise BundleRefused(
                        f"{source}: a row of {table} names run {str(row.get('run_id'))[:12]!r}"
                        f", not the bundle's run {str(run_id)[:12]!r}; import only adds")
        named = [(f"artifact {r.get('name')!r}", r.get("object_hash"))
                 for r in rows.get("artifacts", [])]
        named += [(f"dataset version {r.get('dataset')}:v{r.get('seq')}", r.get("snapshot_hash"))
                  for r in rows.get("dataset_versions", [])]
        named += [(f"model {r.get('model')}/{r.get('version')} {kind}", r.get(column))
                  for r in rows.get("model_versions", [])
                  for kind, column in (("text", "model_hash"), ("card", "card_hash"))]
    except AttributeError:
        raise BundleRefused(f"{source}: manifest rows are malformed") from None
    for what, digest in named:
        if digest not in objects:
            raise BundleRefused(f"{source}: {what} points at object {str(digest)[:12]!r}, "
                                "which the bundle does not hold")


def _extract_checked(source: Path, folder: Path, max_member: int, max_total: int,
                     max_expansion: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Unpack the manifest, check it, then unpack only the objects it lists; every size
    is checked against the limits from the tar headers before a byte is written."""
    try:
        with tarfile.open(source, "r:gz") as archive:
            members = archive.getmembers()
            if len(members) > _MAX_MEMBERS:
                raise BundleRefused(f"{source}: too many members ({len(members)})")
            by_name: dict[str, tarfile.TarInfo] = {}
            for member in members:
                _check_member(source, member)
                if member.size > max_member:
                    raise BundleRefused(
                        f"{source}: member {member.name!r} unpacks to {member.size:,} bytes, "
                        f"over the limit of {max_member:,} ([bundles] max_member_mb)")
                by_name[member.name] = member
            total = sum(m.size for m in members)
            if total > max_total:
                raise BundleRefused(f"{source}: unpacks to {total:,} bytes, over the limit of "
                                    f"{max_total:,} ([bundles] max_unpacked_mb)")
            packed = max(1, source.stat().st_size)
            if total > max_expansion * packed:
                raise BundleRefused(f"{source}: unpacks to {total / packed:,.0f} times its own "
                                    f"size ({total:,} bytes from {packed:,}), over the limit "
                                    f"of {max_expansion}x ([bundles] max_expansion)")
            if not {"manifest.json", "checksums.json"} <= set(by_name):
                raise BundleRefused(f"{source}: manifest.json or checksums.json is missing")
            for name in ("manifest.json", "checksums.json"):
                _unpack(source, archive, by_name[name], folder)
            checksums = _load_json(source, folder / "checksums.json")
            manifest_bytes = (folder / "manifest.json").read_bytes()
            if blake3.blake3(manifest_bytes).hexdigest() != checksums.get("manifest.json"):
                raise BundleRefused(f"{source}: manifest.json does not match its checksum "
                                    "(the bundle was changed or damaged)")
            manifest = _load_json(source, folder / "manifest.json")
            if manifest.get("format") != FORMAT or \
                    manifest.get("format_version") != FORMAT_VERSION:
                raise BundleRefused(f"{source}: not an mlyard bundle of format "
                                    f"{FORMAT_VERSION}")
            listed = {f"objects/{digest}" for digest in manifest.get("objects", [])}
            for name, member in by_name.items():
                if name in ("manifest.json", "checksums.json"):
                    continue
                if name not in listed:
                    raise BundleRefused(f"{source}: member {name!r} is not in the manifest")
                _unpack(source, archive, member, folder)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleRefused(f"{source}: not a readable bundle (truncated or not a .tar.gz: "
                            f"{exc})") from None
    return manifest, {str(k): str(v) for k, v in checksums.items()}


def _unpack(source: Path, archive: tarfile.TarFile, member: tarfile.TarInfo,
            folder: Path) -> None:
    """Copy one member, never more bytes than its header declared."""
    handle = archive.extractfile(member)
    if handle is None:
        raise BundleRefused(f"{source}: member {member.name!r} is not a file")
    target = folder / member.name
    target.parent.mkdir(parents=True, exist_ok=True)
    with handle, open(target, "wb") as out:
        left = member.size
        while left > 0:
            chunk = handle.read(min(left, 2**20))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)


def _check_member(source: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    if not member.isfile():
        raise BundleRefused(f"{source}: member {name!r} is a link or special file; "
                            "bundles hold regular files only")
    if name.startswith("/") or ".." in Path(name).parts or "\\" in name:
        raise BundleRefused(f"{source}: member {name!r} points outside the bundle")
    if name not in {"manifest.json", "checksums.json"} and not _OBJECT_NAME.match(name):
        raise BundleRefused(f"{source}: unexpected member {name!r}")


def _check_objects(source: Path, folder: Path, manifest: dict[str, Any],
                   checksums: dict[str, str]) -> None:
    for digest in manifest.get("objects", []):
        path = folder / "objects" / str(digest)
        if not path.is_file():
            raise BundleRefused(f"{source}: object {str(digest)[:12]} is missing")
        actual = hash_file(path)
        if actual != digest or checksums.get(f"objects/{digest}") != digest:
            raise BundleRefused(f"{source}: object {str(digest)[:12]} does not match its "
                                "hash (the bundle was changed or damaged)")


def _load_json(source: Path, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleRefused(f"{source}: {path.name} is not valid JSON ({exc})") from None
    except RecursionError:
        raise BundleRefused(f"{source}: {path.name} is nested too deeply to be a "
                            "manifest") from None
    if not isinstance(value, dict):
        raise BundleRefused(f"{source}: {path.name} is not a JSON object")
    return value


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))
