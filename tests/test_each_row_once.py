"""Each row once, and time order found: a version re-checked after a contract edit
replaces the one it re-checks, a file whose cleaned rows are already a version is a
duplicate, a run says how many rows it trained and was judged on, and a period column is
found from one file."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from tests.conftest import mlyard, train_json
from tests.test_evolving_data import config_of, init, panel  # noqa: F401  (a fixture)


def test_a_recheck_replaces_the_version_it_rechecks_and_training_reads_each_row_once(
        panel: Path) -> None:  # noqa: F811
    init(panel)
    assert mlyard("ingest", "data").exit_code == 0
    toml = panel / "mlyard.toml"
    toml.write_text(toml.read_text().replace('[data.columns.age]\ntype = "int"',
                                             '[data.columns.age]\ntype = "float"'))
    recheck = json.loads(mlyard("data", "recheck", "--json").stdout)
    assert [r["outcome"] for r in recheck] == ["new version"]
    listed = json.loads(mlyard("data", "list", "--json").stdout)
    name = config_of(panel)["project"]["name"]
    assert [(v["version"], v["superseded_by"]) for v in listed] == [
        (f"{name}:v1", f"{name}:v2"), (f"{name}:v2", None)]
    assert f"{name}:v2" in mlyard("data", "list").stdout

    trained = train_json()
    shown = mlyard("runs", "show", trained["run_id"])
    rows = {k: int(v) for k, v in json.loads(mlyard("runs", "show", trained["run_id"],
                                                     "--json").stdout)["metrics"].items()
            if k.startswith("rows.")}
    assert sum(rows.values()) == 240  # one month, not the same month twice
    assert f"judged on {rows['rows.holdout']:,} holdout rows" in shown.stdout


def test_a_file_with_the_same_cleaned_rows_is_a_duplicate_not_a_version(
        panel: Path) -> None:  # noqa: F811
    init(panel)
    assert mlyard("ingest", "data").exit_code == 0
    again = panel / "copy-of-january.csv"
    shutil.copy(panel / "data" / "2024-01.csv", again)
    text = again.read_text().replace("\n", "\r\n")  # other bytes, the same rows
    again.write_text(text)
    result = mlyard("ingest", "--json", str(again))
    assert result.exit_code == 0
    [item] = json.loads(result.stdout)
    assert item["status"] == "unchanged"
    assert "the same cleaned data as" in item["warnings"][0] and "2024-01.csv" in \
        item["warnings"][0]
    assert len(json.loads(mlyard("data", "list", "--json").stdout)) == 1


def test_a_period_index_rising_through_one_file_is_the_time_column(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    rng = random.Random(8)
    lines = ["cohort,units,price,sold"] + [
        f"{step // 40 + 1},{rng.randint(1, 9)},{rng.uniform(1, 5):.2f},{rng.randint(0, 1)}"
        for step in range(400)]
    (tmp_path / "data" / "all.csv").write_text("\n".join(lines) + "\n")
    result = mlyard("init", "--from", "data", "--target", "sold")
    assert result.exit_code == 0, result.stderr
    assert config_of(tmp_path)["data"]["time_column"] == "cohort"


def test_a_time_column_with_one_value_is_one_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlyard.toml").write_text('[data]\ntarget = "y"\ntime_column = "month"\n')
    (tmp_path / "a.csv").write_text("month,x,y\n" + "".join(f"7,{i},{i % 2}\n"
                                                             for i in range(60)))
    assert mlyard("ingest", "a.csv").exit_code == 0
    result = mlyard("train")
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert "time column 'month' has 1 distinct value: too few distinct times" in message
