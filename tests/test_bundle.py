"""`mlyard export` / `mlyard import`: a colleague gets identical results, and a damaged,
tampered or malicious bundle is refused with nothing half-imported."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mlyard.core.data import versions as data
from mlyard.core.models.loading import load_model
from mlyard.core.tracking import run_queries as runs
from mlyard.core.workspace import open_workspace
from tests.conftest import SAMPLE_CHURN, mlyard, sample_project, train_json


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:  # type: ignore[type-arg]
    project = sample_project(tmp_path, "churn")
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    trained = train_json()
    bundle = tmp_path / "churn-model.tar.gz"
    result = mlyard("export", "churn/1", "-o", str(bundle))
    assert result.exit_code == 0, result.stderr
    colleague = tmp_path / "colleague"
    colleague.mkdir()
    shutil.copy(SAMPLE_CHURN / "mlyard.toml", colleague / "mlyard.toml")
    monkeypatch.chdir(colleague)
    return bundle, trained


def test_round_trip_gives_identical_results(exported: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    bundle, trained = exported
    result = mlyard("import", str(bundle), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run_id"] == trained["run_id"]
    assert summary["model_versions"] == ["churn/1"]
    assert summary["dataset_versions"] == ["churn:v1", "churn:v2"]
    ws = open_workspace()
    detail = runs.show_run(ws, trained["run_id"])
    assert {k[len("holdout."):]: v for k, v in detail.run.metrics.items()
            if k.startswith("holdout.")} == trained["metrics"]
    assert detail.metric_points["valid.auc"] > 0
    assert runs.log_tail(ws, trained["run_id"], 1)[0].line.startswith("best iteration")
    model = load_model(ws, "churn/1")
    assert model.version.model_hash == trained["model_blake3"]
    frame = data.load_versions(ws)
    assert frame.height == 7200
    assert np.isfinite(model.predict(frame)).all()
    reproduced = mlyard("reproduce", trained["run_id"], "--json")
    assert reproduced.exit_code == 0 and json.loads(reproduced.stdout)["identical"]
    again = mlyard("import", str(bundle))
    assert again.exit_code == 1 and "already in this workspace" in again.stderr


def _write(target: Path, content: bytes) -> Path:
    target.write_bytes(content)
    return target


def _rewrite(bundle: Path, target: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Copy a bundle member by member, letting `change` alter or add members."""
    with tarfile.open(bundle, "r:gz") as source, tarfile.open(target, "w:gz") as out:
        for member in source.getmembers():
            content = source.extractfile(member).read()  # type: ignore[union-attr]
            for info, payload in change(member, content):
                out.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return target


def _same(member: tarfile.TarInfo, content: bytes):  # type: ignore[no-untyped-def]
    yield member, content


def _flip_object_byte(member: tarfile.TarInfo, content: bytes):  # type: ignore[no-untyped-def]
    if member.name.startswith("objects/") and b"tree" in content:
        content = content.replace(b"tree", b"TREE", 1)
    yield member, content


def _edit_manifest(member: tarfile.TarInfo, content: bytes):  # type: ignore[no-untyped-def]
    if member.name == "manifest.json":
        content = content.replace(b'"finished"', b'"crashed"')
        member.size = len(content)
    yield member, content


def _add_member(name: str, link: bool = False):  # type: ignore[no-untyped-def]
    def change(member: tarfile.TarInfo, content: bytes):  # type: ignore[no-untyped-def]
        yield member, content
        if member.name == "manifest.json":
            extra = tarfile.TarInfo(name)
            if link:
                extra.type = tarfile.SYMTYPE
                extra.linkname = "/etc/passwd"
                yield extra, None
            else:
                extra.size = 4
                yield extra, b"evil"
    return change


@pytest.mark.parametrize(("label", "make", "expected"), [
    ("truncated", lambda b, t: _write(t, b.read_bytes()[: b.stat().st_size // 2]),
     "not a readable bundle"),
    ("not gzip", lambda b, t: _write(t, b"hello"), "not a readable bundle"),
    ("tampered object", lambda b, t: _rewrite(b, t, _flip_object_byte), "does not match its hash"),
    ("tampered manifest", lambda b, t: _rewrite(b, t, _edit_manifest),
     "manifest.json does not match its checksum"),
    ("parent path", lambda b, t: _rewrite(b, t, _add_member("../escape.txt")),
     "points outside the bundle"),
    ("absolute path", lambda b, t: _rewrite(b, t, _add_member("/tmp/evil.txt")),
     "points outside the bundle"),
    ("symlink", lambda b, t: _rewrite(b, t, _add_member("objects/link", link=True)),
     "is a link or special file"),
    ("unexpected file", lambda b, t: _rewrite(b, t, _add_member("run.sh")),
     "unexpected member 'run.sh'"),
])
def test_bad_bundles_are_refused_and_nothing_is_imported(
    exported: tuple[Path, dict], tmp_path: Path, label: str, make, expected: str,  # type: ignore[no-untyped-def,type-arg]
) -> None:
    bundle, _ = exported
    assert label
    bad = make(bundle, tmp_path / "bad.tar.gz")
    result = mlyard("import", str(bad))
    assert result.exit_code == 1
    assert expected in result.stderr and str(bad) in result.stderr
    assert mlyard("runs", "list", "--json").stdout.strip() == "[]"
    assert json.loads(mlyard("models", "list", "--json").stdout) == []
    assert json.loads(mlyard("data", "list", "--json").stdout) == []
    assert not Path("/tmp/evil.txt").exists() and not (tmp_path / "escape.txt").exists()


def test_untouched_copy_imports(exported: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle, _ = exported
    copy = _rewrite(bundle, tmp_path / "copy.tar.gz", _same)
    assert mlyard("import", str(copy)).exit_code == 0
