"""CLI tables fit the terminal: one line per row with short ids at 80 columns, more
columns when it is wider, and --json unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import mlyard
from tests.test_serve import trained  # noqa: F401  # the module's project


@pytest.mark.parametrize("width", [80, 100])
def test_runs_list_fits_with_one_line_per_run(trained: Path, width: int,  # noqa: F811
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained)
    monkeypatch.setenv("COLUMNS", str(width))
    runs = json.loads(mlyard("runs", "list", "--json").stdout)
    lines = mlyard("runs", "list").stdout.splitlines()
    assert all(len(line) <= width for line in lines), lines
    for run in runs:
        [row] = [line for line in lines if run["run_id"][:8] in line]
        assert run["name"] in row and run["status"] in row
    assert "more column" in " ".join(lines)


def test_a_wide_terminal_shows_every_column(trained: Path,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained)
    monkeypatch.setenv("COLUMNS", "200")
    text = mlyard("runs", "list").stdout
    assert "started" in text and "duration" in text and "holdout.auc" in text
    assert "more column" not in text


def test_the_table_shows_a_first_page_and_json_everything(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mlyard import start_run

    (tmp_path / "mlyard.toml").write_text('[project]\nname = "many"\n')
    monkeypatch.chdir(tmp_path)
    for number in range(53):
        with start_run(name=f"run-{number}", workspace=tmp_path) as run:
            run.log_metric("holdout.auc", number / 100)
    table = mlyard("runs", "list").stdout
    assert sum("run-" in line for line in table.splitlines()) == 50
    assert "run-52" in table and "run-2 " not in table  # newest first
    assert "more runs: -n N for N of them, -n 0 for all, or --json" in table
    assert len(json.loads(mlyard("runs", "list", "--json").stdout)) == 53
    assert sum("run-" in line for line in mlyard("runs", "list", "-n", "0").stdout
               .splitlines()) == 53


def test_json_output_is_strict_json_whatever_the_values(
        capsys: pytest.CaptureFixture[str]) -> None:
    """NaN and infinities as the documented strings, integers past 64 bits kept whole,
    text kept as typed; all of it parseable by a strict reader."""
    from mlyard.core.cli.output import print_json

    for value in ({"auc": float("nan"), "loss": float("-inf"), "name": "café ✓", "n": [1, 2]},
                  {"id": 2**70, "rows": 3}):
        print_json(value)
        printed = capsys.readouterr().out
        assert printed.endswith("}\n") and "\n  " in printed  # indented, one document
        parsed = json.loads(printed, parse_constant=lambda c: pytest.fail(f"bare {c}"))
        assert parsed == {"auc": "NaN", "loss": "-Infinity", "name": "café ✓", "n": [1, 2]} \
            or parsed == {"id": 2**70, "rows": 3}
