"""`mlyard doctor` checks the object store against the catalog's rows: an object a row
names and that is gone is found and named with what needs it; a folder inside objects/
is named, not opened; unnamed objects are listed with their size and removed only by
--repair; and without --repair doctor changes nothing at all."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mlyard.core.models import registry
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, train_json


def doctor(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = mlyard("doctor", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def objects_finding(report: dict) -> dict:  # type: ignore[type-arg]
    [found] = [f for f in report["findings"] if f["check"] == "objects"]
    return found  # type: ignore[no-any-return]


def test_a_deleted_model_object_is_named_with_what_needs_it(churn: Path) -> None:
    train_json()
    ws = open_workspace(churn)
    version = registry.resolve(ws, "1")
    assert doctor()[0] == 0
    path = ws.objects.path_for(version.model_hash)
    os.chmod(path, 0o644)
    path.unlink()
    code, report = doctor()
    assert code == 1 and not report["healthy"]
    detail = objects_finding(report)["detail"]
    assert f"1 objects the catalog names are missing (first: {version.model_hash[:12]}" in detail
    assert "model churn/1" in detail and "model.txt" in detail
    assert "everything else works" in detail


def test_odd_entries_unnamed_objects_and_a_doctor_that_changes_nothing(churn: Path) -> None:
    ws = open_workspace(churn)
    (ws.objects.root / "ab" / ("cd" * 31)).mkdir(parents=True)  # a folder named like one
    stray = ws.objects.put_bytes(b"bytes no row names")
    spool = ws.catalog.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "metrics-00000000000000000001-bad.arrow").write_bytes(b"junk")
    before = sorted(p.relative_to(ws.root) for p in ws.root.rglob("*")
                    if "catalog" not in p.name)

    code, report = doctor()
    assert code == 1  # the odd folder and the bad segment
    detail = objects_finding(report)["detail"]
    assert "entries in objects/ are not objects (first: abcdcdcd" in detail
    assert "(a directory)" in detail
    assert "1 objects no catalog row names (18 B)" in detail
    after = sorted(p.relative_to(ws.root) for p in ws.root.rglob("*") if "catalog" not in p.name)
    assert after == before  # nothing moved, loaded or removed without --repair

    # --repair removes an unnamed object only once no live process can be about to name it.
    assert doctor("--repair")[0] == 1  # the folder stays: it is not doctor's to remove
    assert ws.objects.path_for(stray).exists()
    old = time.time() - 3600
    os.utime(ws.objects.path_for(stray), (old, old))
    code, report = doctor("--repair")
    assert any("removed 1 objects no catalog row names (18 B)" in line
               for line in report["repaired"])
    assert not ws.objects.path_for(stray).exists()
    assert mlyard("data", "list").exit_code == 0  # everything named is still there
