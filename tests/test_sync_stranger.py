"""A synced workspace is a stranger: its catalog may hold SQL that reads this machine's
files and environment when the catalog is read (a view, a macro, a column default).
`mlyard sync` opens it with DuckDB's external access off and locked, refuses a catalog
holding anything mlyard does not create, and the canary appears nowhere here."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mlyard.core.automation import promotion
from mlyard.core.models import registry
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, train_json
from tests.test_model_text import _resized
from tests.test_sync import box, laptop, sshd  # noqa: F401  (fixtures)

CANARY = "canary-7f3a9c"

PLANTS = {
    "view": "CREATE VIEW leak AS SELECT * FROM read_csv('{file}')",
    "macro": "CREATE MACRO leak() AS TABLE SELECT content AS v FROM read_text('{file}')",
    # A table sync reads, replaced by a view over the file: the attack that leaked.
    "table as view": "ALTER TABLE tags RENAME TO tags_kept; CREATE VIEW tags AS SELECT "
                     "t.run_id, t.key, f.content AS value FROM tags_kept t, read_text('{file}') f",
    "default": "ALTER TABLE tags ALTER COLUMN value SET DEFAULT "
               "current_setting('home_directory')",
}


def plant(folder: Path, what: str, canary_file: Path) -> None:
    """Write SQL into the box's catalog, as a hostile box would (under its lock, so the
    box's own loader is not holding the file)."""
    catalog = open_workspace(folder).catalog
    with catalog.lock.hold():
        con = duckdb.connect(str(catalog.path))
        try:
            con.execute(PLANTS[what].format(file=canary_file))
        finally:
            con.close()


def seen_here(project: Path) -> bool:
    """Whether the canary reached anything in this project's workspace."""
    return any(CANARY.encode() in path.read_bytes()
               for path in (project / ".mlyard").rglob("*") if path.is_file())


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLYARD_CANARY", CANARY)
    path = tmp_path / "secret.csv"
    path.write_text(f"secret\n{CANARY}\n")
    return path


@pytest.mark.parametrize("what", sorted(PLANTS))
@pytest.mark.parametrize("direction", ["pull", "push"])
def test_a_catalog_with_sql_of_its_own_is_refused_both_ways(
        box: tuple[Path, dict[str, Any]], laptop: Path, canary: Path,  # noqa: F811
        what: str, direction: str) -> None:
    folder, _ = box
    plant(folder, what, canary)
    args = ["sync", str(folder)] + (["--push"] if direction == "push" else [])
    result = mlyard(*args)
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert "\n" not in message and "that mlyard does not create; not opened" in message
    assert str(folder) in message
    assert not seen_here(laptop)
    assert mlyard("runs", "list", "--json").stdout.strip() == "[]"


@pytest.mark.slow
def test_the_sync_agent_refuses_it_too(box: tuple[Path, dict[str, Any]],  # noqa: F811
                                       laptop: Path, canary: Path, sshd: Any,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = box
    plant(folder, "view", canary)
    ssh, port = sshd
    monkeypatch.setenv("MLYARD_SSH", ssh)
    result = mlyard("sync", f"ssh://127.0.0.1:{port}{folder}",
                    "--remote-mlyard", f"{sys.executable} -m mlyard")
    assert result.exit_code == 1
    assert "holds a view 'leak'" in result.stderr
    assert not seen_here(laptop)


def test_a_clean_remote_still_syncs(box: tuple[Path, dict[str, Any]],  # noqa: F811
                                    laptop: Path) -> None:  # noqa: F811
    folder, trained = box
    result = mlyard("sync", str(folder))
    assert result.exit_code == 0, result.stderr
    assert trained["run_id"] in mlyard("runs", "list", "--json").stdout


@pytest.mark.parametrize("column", ["model_hash", "card_hash"])
def test_a_model_version_pinned_to_a_run_it_is_not_is_refused(
        box: tuple[Path, dict[str, Any]], laptop: Path, column: str) -> None:  # noqa: F811
    """The box attaches another model, or the run's model with another card (its
    classes swapped, so the same trees read inverted), to a run the laptop trained, to
    borrow its metrics: the version is not the run's, so nothing of it comes over."""
    folder, _ = box
    config = laptop / "mlyard.toml"
    config.write_text(config.read_text() + "\n[registry]\nauto_register = false\n")
    shutil.copytree(folder / "data", laptop / "data", dirs_exist_ok=True)
    assert mlyard("ingest", "data").exit_code == 0
    mine = train_json("--param", "num_leaves=5")  # a run, and no model version of it here
    assert mlyard("sync", str(folder), "--push").exit_code == 0
    box_ws = open_workspace(folder)
    registry.register(box_ws, mine["run_id"])
    version = registry.resolve(box_ws, "2")
    if column == "model_hash":  # the box's own model: not what the run trained
        lie = registry.resolve(box_ws, "1").model_hash
    else:
        card = json.loads(box_ws.objects.read_bytes(version.card_hash))
        card["spec"]["classes"] = list(reversed(card["spec"]["classes"] or ["0", "1"]))
        lie = box_ws.objects.put_bytes(json.dumps(card).encode())
    with box_ws.catalog.session() as con:
        con.execute(f"UPDATE model_versions SET {column} = ? WHERE run_id = ?",
                    [lie, mine["run_id"]])
    pulled = mlyard("sync", str(folder), "--models")
    assert pulled.exit_code == 1, pulled.stdout + pulled.stderr
    assert f"is not the model its run {mine['run_id'][:8]} trained" in pulled.stderr
    assert mlyard("models", "list", "--json").stdout.strip() == "[]"


def test_an_inverted_model_claiming_a_high_auc_never_becomes_champion_by_sync(
        box: tuple[Path, dict[str, Any]], laptop: Path) -> None:  # noqa: F811
    """The box's run and version both carry an inverted model (every leaf negated) and
    claim holdout.auc 0.97. Synced with --aliases, the gates judge figures computed here
    on the laptop's own rows, so champion stays where it was and the output says why."""
    folder, trained = box
    box_ws = open_workspace(folder)
    version = registry.resolve(box_ws, "1")
    text = box_ws.objects.read_bytes(version.model_hash).decode()
    inverted = _resized(re.sub(r"(?m)^leaf_value=(.*)$", lambda line: "leaf_value=" + " ".join(
        repr(-float(value)) for value in line.group(1).split()), text))
    lie = box_ws.objects.put_bytes(inverted.encode())
    with box_ws.catalog.session() as con:
        con.execute("UPDATE model_versions SET model_hash = ?", [lie])
        con.execute("UPDATE artifacts SET object_hash = ? WHERE object_hash = ?",
                    [lie, version.model_hash])
        con.execute("UPDATE latest_metrics SET value = 0.97 WHERE key = 'holdout.auc'")
        con.execute("UPDATE metrics SET value = 0.97 WHERE key = 'holdout.auc'")
    promotion.promote(box_ws, "1", force=True)  # the box calls it champion
    shutil.copytree(folder / "data", laptop / "data", dirs_exist_ok=True)
    assert mlyard("ingest", "data").exit_code == 0
    synced = mlyard("sync", str(folder), "--aliases")
    assert synced.exit_code == 1, synced.stdout + synced.stderr
    assert "alias champion -> churn/1: not moved: gate min_auc failed" in synced.stdout
    assert registry.champion(open_workspace(laptop)) is None
    gates = mlyard("check", "1", "--json")
    assert gates.stdout, gates.stderr
    scored = {gate["gate"]: gate for gate in json.loads(gates.stdout)["gates"]}
    assert scored["rescored_here"]["passed"] and scored["min_auc"]["value"] < 0.5
    assert trained["run_id"] in mlyard("runs", "list", "--json").stdout
