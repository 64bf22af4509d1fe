"""`mlyard doctor`'s look at the object store against the catalog.

Hashing each object finds one changed on disk; only the catalog's rows find one that is
gone, and which runs, models and dataset versions need it. Objects no row names (a run
killed before its rows were written, a refused sync) take space for nothing: listed
with their size, removed by --repair once old enough that no live process can be about
to name them. Entries that are not objects (a folder, a FIFO) are named, never opened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mlyard.core.errors import MlyardError
from mlyard.core.humanize import size as human_size
from mlyard.core.workspace import Workspace
from mlyard.storage import catalog_check
from mlyard.storage.objects import hash_file
from mlyard.storage.regular_files import SET_ASIDE, is_regular, kind_of


@dataclass
class StoreScan:
    sizes: dict[str, int] = field(default_factory=dict)  # digest -> bytes, for each object
    changed: list[str] = field(default_factory=list)  # digests whose bytes do not match
    odd: list[str] = field(default_factory=list)  # entries that are not objects, described
    mtimes: dict[str, float] = field(default_factory=dict)


def scan(root: Path) -> StoreScan:
    found = StoreScan()
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        if folder.name in ("tmp", SET_ASIDE):
            continue  # temporary files (the leftovers check); entries set aside earlier
        if len(folder.name) != 2 or not folder.is_dir() or folder.is_symlink():
            found.odd.append(f"{folder.name} ({kind_of(folder)})")
            continue
        for path in sorted(folder.iterdir()):
            digest = folder.name + path.name
            if not is_regular(path):
                found.odd.append(f"{digest[:12]} ({kind_of(path)})")
                continue
            stat = path.stat()
            found.sizes[digest], found.mtimes[digest] = stat.st_size, stat.st_mtime
            if hash_file(path) != digest:
                found.changed.append(digest)
    return found


def check(ws: Workspace, repair: bool, min_age: float, repaired: list[str]
          ) -> tuple[bool, str]:
    """(ok, detail) for the objects check; with `repair`, unnamed objects older than
    `min_age` seconds are removed (and said in `repaired`)."""
    stored = scan(ws.objects.root)
    try:
        named = catalog_check.object_references(ws.catalog)
    except MlyardError:
        named = None  # the catalog check says why
    problems = []
    if named is not None:
        missing = sorted(set(named) - set(stored.sizes))
        if missing:
            needs = ", ".join(named[missing[0]][:3])
            problems.append(f"{len(missing)} objects the catalog names are missing (first: "
                            f"{missing[0][:12]}, needed by {needs}); what needs them fails "
                            "until they are restored from a backup or the bundle they came "
                            "from, everything else works")
    if stored.changed:
        problems.append(f"{len(stored.changed)} of {len(stored.sizes)} objects do not match "
                        f"their hash (first: {stored.changed[0][:12]}); restore them from a "
                        "backup or the bundle they came from")
    if stored.odd:
        problems.append(f"{len(stored.odd)} entries in objects/ are not objects (first: "
                        f"{stored.odd[0]}); never read, left alone")
    unnamed = [] if named is None else sorted(set(stored.sizes) - set(named))
    note = ""
    if unnamed and repair:
        old = [d for d in unnamed if time.time() - stored.mtimes[d] >= min_age]
        for digest in old:
            ws.objects.path_for(digest).unlink(missing_ok=True)
        if old:
            repaired.append(f"removed {len(old)} objects no catalog row names "
                            f"({human_size(sum(stored.sizes[d] for d in old))})")
    elif unnamed:
        note = (f"; {len(unnamed)} objects no catalog row names "
                f"({human_size(sum(stored.sizes[d] for d in unnamed))}): `mlyard doctor "
                "--repair` removes them")
    if problems:
        return False, "; ".join(problems) + note
    checked = "every object the catalog names is there" if named is not None else ""
    return True, f"{len(stored.sizes)} objects match their hashes" + (
        f"; {checked}" if checked else "") + note
