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
