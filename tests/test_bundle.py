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

from mlyard import start_run
from mlyard.core.data import versions
from mlyard.core.models.loading import load_model
from mlyard.core.tracking import run_queries
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
    detail = run_queries.show_run(ws, trained["run_id"])
    assert {k[len("holdout."):]: v for k, v in detail.run.metrics.items()
            if k.startswith("holdout.")} == trained["metrics"]
    assert detail.metric_points["valid.auc"] > 0
    assert run_queries.log_tail(ws, trained["run_id"], 1)[0].line.startswith("best iteration")
    model = load_model(ws, "churn/1")
    assert model.version.model_hash == trained["model_blake3"]
    frame = versions.load_versions(ws)
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


def _rebuild(bundle: Path, target: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """A self-consistent bundle (checksums and hashes right) whose content `edit` chose:
    what a crafted bundle looks like."""
    import blake3

    with tarfile.open(bundle, "r:gz") as source:
        parts = {m.name: source.extractfile(m).read()  # type: ignore[union-attr]
                 for m in source.getmembers()}
    manifest = json.loads(parts.pop("manifest.json"))
    parts.pop("checksums.json")
    objects = {name.removeprefix("objects/"): payload for name, payload in parts.items()}
    extra = edit(manifest, objects) or {}
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    checksums = {"manifest.json": blake3.blake3(manifest_bytes).hexdigest(),
                 **{f"objects/{h}": h for h in objects}}
    with tarfile.open(target, "w:gz") as out:
        for name, payload in [("manifest.json", manifest_bytes),
                           ("checksums.json", json.dumps(checksums).encode()),
                           *((f"objects/{h}", d) for h, d in objects.items()),
                           *extra.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            out.addfile(info, io.BytesIO(payload))
    return target


def _into_existing_run(run_id: str):  # type: ignore[no-untyped-def]
    def edit(manifest, objects):  # type: ignore[no-untyped-def]
        manifest["rows"]["tags"].append({"run_id": run_id, "key": "owned", "value": "yes"})
    return edit


def _missing_object(manifest, objects):  # type: ignore[no-untyped-def]
    manifest["rows"]["artifacts"][0]["object_hash"] = "f" * 64


def _unlisted_member(manifest, objects):  # type: ignore[no-untyped-def]
    return {"objects/" + "e" * 64: b"not listed"}


def _swap_object(manifest, objects, column: str, change) -> None:  # type: ignore[no-untyped-def]
    """The model version's `column` object replaced by `change(old bytes)`, every hash
    that names it made to fit."""
    import blake3

    [version] = manifest["rows"]["model_versions"]
    new = change(objects.pop(version[column]))
    digest = blake3.blake3(new).hexdigest()
    objects[digest] = new
    manifest["objects"] = sorted(set(manifest["objects"]) - {version[column]} | {digest})
    for row in manifest["rows"]["artifacts"]:
        if row["object_hash"] == version[column]:
            row["object_hash"] = digest
    version[column] = digest


def _malformed_model(manifest, objects):  # type: ignore[no-untyped-def]
    # LightGBM aborts the process on this
    _swap_object(manifest, objects, "model_hash", lambda text: text[: len(text) // 2])


def _card_not_json(manifest, objects):  # type: ignore[no-untyped-def]
    _swap_object(manifest, objects, "card_hash", lambda card: b"{not json")


def _card_with_a_feature_the_model_lacks(manifest, objects):  # type: ignore[no-untyped-def]
    def widen(card: bytes) -> bytes:
        parsed = json.loads(card)
        parsed["spec"]["features"].append({**parsed["spec"]["features"][0], "name": "extra"})
        return json.dumps(parsed).encode()
    _swap_object(manifest, objects, "card_hash", widen)


def test_import_never_writes_into_a_run_that_is_already_here(
        exported: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle, _ = exported
    with start_run(name="mine") as run:
        pass
    mine = run.run_id
    bad = _rebuild(bundle, tmp_path / "bad.tar.gz", _into_existing_run(mine))
    result = mlyard("import", str(bad))
    assert result.exit_code == 1 and "import only adds" in result.stderr
    detail = run_queries.show_run(open_workspace(), mine)
    assert "owned" not in detail.run.tags and len(json.loads(
        mlyard("runs", "list", "--json").stdout)) == 1


@pytest.mark.parametrize(("label", "edit", "expected"), [
    ("missing object", _missing_object, "which the bundle does not hold"),
    ("unlisted member", _unlisted_member, "is not in the manifest"),
    ("malformed model", _malformed_model, "trees and the text holds"),  # read, not loaded
    ("card not JSON", _card_not_json, "its model card is not a model card"),
    ("card and model disagree", _card_with_a_feature_the_model_lacks,
     "cannot score this project's rows"),
])
def test_crafted_bundles_are_refused_with_nothing_imported(
        exported: tuple[Path, dict], tmp_path: Path, label: str, edit,  # type: ignore[no-untyped-def,type-arg]
        expected: str) -> None:
    bundle, _ = exported
    assert label
    bad = _rebuild(bundle, tmp_path / "bad.tar.gz", edit)
    result = mlyard("import", str(bad))
    assert result.exit_code == 1 and expected in result.stderr, result.stderr
    assert mlyard("runs", "list", "--json").stdout.strip() == "[]"
    assert json.loads(mlyard("models", "list", "--json").stdout) == []


def test_a_bundle_that_unpacks_past_the_limit_is_refused_before_writing(
        exported: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle, _ = exported
    config = Path("mlyard.toml")
    config.write_text(config.read_text() + "\n[bundles]\nmax_member_mb = 2\n")
    bomb = _rebuild(bundle, tmp_path / "bomb.tar.gz",
                    lambda manifest, objects: {"objects/" + "d" * 64: bytes(3 * 2**20)})
    assert bomb.stat().st_size < 1_000_000  # small on disk, large unpacked
    result = mlyard("import", str(bomb))
    assert result.exit_code == 1 and "over the limit of 2,097,152" in result.stderr
    assert not Path(".mlyard/objects/dd/" + "d" * 62).exists()


def test_a_small_bundle_that_would_unpack_to_hundreds_of_times_its_size_is_refused(
        exported: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    """Within the default limits in bytes, but not in proportion: 64 MB of zeros in a
    bundle of well under a megabyte is built to fill a disk, not to carry a model."""
    bundle, _ = exported
    bomb = _rebuild(bundle, tmp_path / "bomb.tar.gz",
                    lambda manifest, objects: {"objects/" + "d" * 64: bytes(64 * 2**20)})
    result = mlyard("import", str(bomb))
    assert result.exit_code == 1 and "times its own size" in result.stderr
    assert "over the limit of 100x ([bundles] max_expansion)" in result.stderr
    assert not Path(".mlyard/objects/dd/" + "d" * 62).exists()


def test_a_manifest_nested_too_deeply_is_one_line(exported: tuple[Path, dict],  # type: ignore[type-arg]
                                                  tmp_path: Path) -> None:
    import blake3

    config = Path("mlyard.toml")  # past the expansion check, which would refuse it first
    config.write_text(config.read_text() + "\n[bundles]\nmax_expansion = 100000\n")
    deep = b"[" * 200_000 + b"]" * 200_000
    bundle = tmp_path / "deep.tar.gz"
    with tarfile.open(bundle, "w:gz") as out:
        for name, payload in [("manifest.json", deep), ("checksums.json", json.dumps(
                {"manifest.json": blake3.blake3(deep).hexdigest()}).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            out.addfile(info, io.BytesIO(payload))
    result = mlyard("import", str(bundle))
    assert result.exit_code == 1
    assert "manifest.json is nested too deeply to be a manifest" in result.stderr
    assert "Traceback" not in result.stderr



def _claims_auc(manifest, objects):  # type: ignore[no-untyped-def]
    for table in ("metrics", "latest_metrics"):
        for row in manifest["rows"][table]:
            if row["key"] == "holdout.auc":
                row["value"] = 0.999


def test_an_imported_models_claimed_metrics_are_judged_by_its_score_here(
        exported: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle, _ = exported
    crafted = _rebuild(bundle, tmp_path / "claims.tar.gz", _claims_auc)
    config = Path("mlyard.toml")
    config.write_text(config.read_text().replace("min_auc = 0.7", "min_auc = 0.95", 1))
    (Path("data")).mkdir(exist_ok=True)
    for path in sorted((SAMPLE_CHURN / "data").glob("*.csv"))[:2]:
        shutil.copy(path, Path("data") / path.name)
    assert mlyard("ingest", "data").exit_code == 0
    assert mlyard("import", str(crafted)).exit_code == 0
    checked = mlyard("check", "1", "--json")
    assert checked.exit_code == 1
    gates = {g["gate"]: g for g in json.loads(checked.stdout)["gates"]}
    assert gates["rescored_here"]["passed"] and gates["rescored_here"]["value"] > 1000
    assert not gates["min_auc"]["passed"] and gates["min_auc"]["value"] < 0.95  # not 0.999
    promoted = mlyard("models", "promote", "1")
    assert promoted.exit_code == 1 and "min_auc" in promoted.stderr
    assert "champion" not in json.loads(mlyard("models", "list", "--json").stdout)[0]["aliases"]


def test_import_into_a_project_with_another_name_registers_the_model_here(
        exported: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle, trained = exported
    toml = Path("mlyard.toml")
    toml.write_text(toml.read_text().replace('name = "churn"', 'name = "retention"'))
    result = mlyard("import", str(bundle))
    assert result.exit_code == 0, result.stderr
    assert "models: retention/1" in result.stdout
    ws = open_workspace()
    model = load_model(ws, "retention/1")
    assert model.version.run_id == trained["run_id"]
    tags = run_queries.show_run(ws, trained["run_id"]).run.tags
    assert tags["mlyard.origin_project"] == "churn"
    scored = mlyard("predict", "retention/1", str(SAMPLE_CHURN / "data" / "churn_2026_01.csv"),
                    "-o", str(tmp_path / "scored.parquet"))
    assert scored.exit_code == 0, scored.stderr


def test_import_of_a_model_for_another_target_is_refused_before_anything_is_written(
        exported: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    bundle, _ = exported
    toml = Path("mlyard.toml")
    toml.write_text(toml.read_text().replace('target = "churned"', 'target = "age"'))
    result = mlyard("import", str(bundle))
    assert result.exit_code != 0
    assert "predicts 'churned', this project predicts 'age'" in result.stderr
    assert json.loads(mlyard("runs", "list", "--json").stdout) == []
