"""What init infers from a sample is advice: later files that break it are accepted with
warnings that name the column, the rows and the rule; the same rule written (or confirmed
with `strict = true`) by the user refuses. A boolean source that changes its spelling is
read the same, with a word; a constant column is flagged at init."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import mlyard


@pytest.fixture
def weather(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Half a year of daily readings, never below zero, rain as yes/no; init has run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    rnd = random.Random(11)
    lines = ["day,station,temp,wind,rain,sunny"] + [
        f"{day},s1,{rnd.uniform(0.5, 30):.1f},{rnd.randint(0, 40)},"
        f"{rnd.choice(['yes', 'no'])},{rnd.choice(['yes', 'no'])}" for day in range(1, 183)]
    (tmp_path / "data" / "summer.csv").write_text("\n".join(lines) + "\n")
    result = mlyard("init", "--from", "data", "--target", "sunny")
    assert result.exit_code == 0, result.stderr
    assert "column 'station' has the same value in every row of the sample" in result.stdout
    assert mlyard("ingest", "data/summer.csv").exit_code == 0
    return tmp_path


def _winter(project: Path, rain: tuple[str, str] = ("yes", "no")) -> Path:
    rnd = random.Random(5)
    lines = ["day,station,temp,wind,rain,sunny"] + [
        f"{day},s1,{rnd.uniform(-12, 3):.1f},{rnd.randint(0, 40) if day != 190 else 'calm'},"
        f"{rnd.choice(rain)},{rnd.choice(['yes', 'no'])}" for day in range(183, 365)]
    path = project / "winter.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_winter_file_below_the_inferred_minimum_is_accepted_with_the_rows_named(
        weather: Path) -> None:
    result = mlyard("ingest", "--json", str(_winter(weather)))
    assert result.exit_code == 0, result.stdout
    [item] = json.loads(result.stdout)
    warnings = "\n".join(item["warnings"])
    assert "column 'temp' has" in warnings and "below the contract's min 0 (row " in warnings
    assert "set strict = true on the column to refuse such rows" in warnings
    assert "column 'wind' (contract type int) has 1 value that is not a whole number: " \
        "row 8: 'calm'; read as missing" in warnings
    assert item["rows"] == 182


def test_the_same_rule_confirmed_by_the_user_refuses(weather: Path) -> None:
    toml = weather / "mlyard.toml"
    head = "[data.columns.temp]\n"
    before, rest = toml.read_text().split(head)
    toml.write_text(before + head + rest.replace("strict = false", "strict = true", 1))
    result = mlyard("ingest", str(_winter(weather)))
    assert result.exit_code == 1
    assert "below the contract's min 0 (row 1: " in result.stderr
    assert "wind" not in result.stderr  # still advice: an inferred rule of another column


def test_a_yes_no_column_arriving_as_1_0_reads_the_same_values_with_a_warning(
        weather: Path) -> None:
    assert 'spelling = "yes/no"' in (weather / "mlyard.toml").read_text()
    result = mlyard("ingest", "--json", str(_winter(weather, rain=("1", "0"))))
    assert result.exit_code == 0
    [item] = json.loads(result.stdout)
    assert any(w.startswith("column 'rain': written as 1/0 in this file where the contract's "
                            "sample wrote yes/no; read as the same true/false values")
               for w in item["warnings"]), item["warnings"]
    mixed = mlyard("ingest", "--json", str(_winter(weather, rain=("1", "no"))))
    assert not any("'rain': written as" in w for w in json.loads(mixed.stdout)[0]["warnings"])
