"""`mlyard init` infers a working project; `mlyard data` shows and compares versions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mlyard.core.config import load_config
from tests.conftest import REPO, SAMPLE_CHURN, mlyard


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(SAMPLE_CHURN / "data", tmp_path / "incoming")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_infers_roles_task_and_contract_from_the_data(fresh: Path) -> None:
    result = mlyard("init", "--from", "incoming")
    assert result.exit_code == 0, result.stderr
    config = load_config(fresh / "mlyard.toml")
    assert config.data.target == "churned" and config.train.task == "binary"
    assert config.data.id_column == "customer_id"
    assert config.data.time_column == "snapshot_date"
    assert config.data.watch == ["incoming"]
    columns = config.data.columns
    assert columns["contract"].categories == ["month-to-month", "one-year", "two-year"]
    assert columns["tenure_months"].type == "int" and columns["tenure_months"].min == 0
    assert columns["monthly_charges"].type == "float"
    assert columns["customer_id"].max_null_rate == 0
    text = (fresh / "mlyard.toml").read_text()
    assert "# the column to predict" in text and "never a feature" in text
    ingested = mlyard("ingest", "--json", "incoming")
    assert [r["status"] for r in json.loads(ingested.stdout)] == ["ingested"] * 6


def test_init_for_regression_and_explicit_target(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = mlyard("init", "--from", str(REPO / "sample_data" / "demand" / "data"),
                    "--target", "demand", "--name", "shop")
    assert result.exit_code == 0, result.stderr
    raw = tomllib.loads((tmp_path / "mlyard.toml").read_text())
    assert raw["train"]["task"] == "regression" and raw["project"]["name"] == "shop"
    assert "id_column" not in raw["data"]


def test_init_refuses_to_overwrite_and_explains_unknown_targets(fresh: Path) -> None:
    assert mlyard("init", "--from", "incoming").exit_code == 0
    again = mlyard("init", "--from", "incoming")
    assert again.exit_code == 2 and "already exists; pass --force" in again.stderr
    wrong = mlyard("init", "--from", "incoming", "--target", "nope", "--force")
    assert wrong.exit_code == 2 and "--target 'nope' is not a column" in wrong.stderr
    empty = fresh / "empty"
    empty.mkdir()
    none = mlyard("init", "--from", "empty", "--force")
    assert none.exit_code == 2 and "no .csv or .parquet files" in none.stderr


def test_data_list_show_and_diff_reveal_the_drifted_batch(fresh: Path) -> None:
    mlyard("init", "--from", "incoming", "--name", "churn")
    mlyard("ingest", "incoming")
    listed = json.loads(mlyard("data", "list", "--json").stdout)
    assert [v["version"] for v in listed] == [f"churn:v{i}" for i in range(1, 7)]
    shown = json.loads(mlyard("data", "show", "v6", "--json").stdout)
    assert shown["rows"] == 3600 and shown["source"].endswith("_06.csv")
    assert shown["profile"]["payment_method"]["top"][0][0] == "e-check"
    diff = json.loads(mlyard("data", "diff", "v5", "v6", "--json").stdout)
    assert diff["columns"]["monthly_charges"]["mean_shift_in_std"] > 0.5
    assert diff["columns"]["support_calls"]["mean_shift_in_std"] > 0.5
    assert abs(diff["columns"]["tenure_months"]["mean_shift_in_std"]) < 0.1
    churn_rate = diff["columns"]["churned"]["mean"]
    assert churn_rate[1] - churn_rate[0] > 0.1
    human = mlyard("data", "diff", "v5", "v6")
    assert "e-check" in human.stdout and "monthly_charges" in human.stdout
    bad = mlyard("data", "show", "version-six")
    assert bad.exit_code == 2 and "expected v3, 3 or DATASET:v3" in bad.stderr


def test_profiles_an_earlier_mlyard_or_a_stranger_wrote_still_list_show_and_diff(
        churn: Path) -> None:
    """Earlier versions wrote NaN and Infinity into the JSON and fewer fields; a bundle
    from elsewhere may carry anything. Neither stops `data list`, `show` or `diff`."""
    from mlyard.core.workspace import open_workspace

    older = {"tenure_months": {"type": "int", "rows": 3600, "nulls": 0, "null_rate": 0.0,
                               "distinct": 72, "min": 0.0, "max": float("inf"),
                               "mean": float("nan"), "std": None},
             "contract": {"type": "category", "rows": 3600, "nulls": 0, "null_rate": 0.0,
                          "distinct": 3, "top": [["monthly", 2000], ["yearly", 1600]]}}
    ws = open_workspace(churn)
    with ws.catalog.session() as con:
        con.execute("UPDATE dataset_versions SET profile = ? WHERE seq = 1",
                    [json.dumps(older)])  # json writes NaN and Infinity as such
        con.execute("UPDATE dataset_versions SET profile = ? WHERE seq = 2",
                    ['{"tenure_months": {"type": 7}}'])
    assert mlyard("data", "list").exit_code == 0
    shown = mlyard("data", "show", "v1", "--json")
    assert shown.exit_code == 0, shown.stderr
    profile = json.loads(shown.stdout)["profile"]
    assert profile["tenure_months"]["distinct"] == 72 and "max" not in profile["tenure_months"]
    assert profile["contract"]["top"] == [["monthly", 2000], ["yearly", 1600]]
    assert json.loads(mlyard("data", "show", "v2", "--json").stdout)["profile"] == {}
    diff = mlyard("data", "diff", "v1", "v2")
    assert diff.exit_code == 0 and "churn:v1 -> churn:v2" in diff.stdout, diff.stderr


def test_core_does_not_import_the_ui() -> None:
    code = ("import sys, mlyard.core.cli.main, mlyard.core.tracking.active_run, "
            "mlyard.core.data.ingest; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] == 'textual' or m.startswith('mlyard.tui')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
