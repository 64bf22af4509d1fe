"""What a user types is shown as text: markup in names, tags, params, file and column
names prints as itself, and terminal escapes are shown, never sent to the terminal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

import mlyard
from mlyard.core.tracking import run_queries
from mlyard.tui.app import MlyardApp
from tests.conftest import mlyard as cli
from tests.conftest import mlyard_process
from tests.test_tui import settle


def wide(*args: str, cwd: Path) -> str:
    """`mlyard ARGS` as a process on a wide terminal (no folded cells); its stdout."""
    result = mlyard_process(*args, cwd=cwd, env={"COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    return result.stdout

HOSTILE = ["[/]", "[bold]loud[/bold]", "\x1b[31mred\x1b[0m", "[link=x]y[/link]"]


@pytest.fixture
def hostile_runs(churn: Path) -> list[str]:
    run_ids = []
    for index, text in enumerate(HOSTILE):
        with mlyard.start_run(name=f"run {text}", params={f"p{text}": text},
                              tags={"note": text}) as run:
            mlyard.log_metric(f"m{text}", float(index))
        run_ids.append(run.run_id)
    return run_ids


def test_runs_list_show_and_compare_print_markup_and_escapes_as_text(
        hostile_runs: list[str], churn: Path) -> None:
    listed = wide("runs", "list", cwd=churn)
    assert "run [/]" in listed and "run [bold]loud[/bold]" in listed
    assert "\x1b" not in listed and "\\x1b[31mred" in listed
    for run_id in hostile_runs:
        assert "\x1b" not in wide("runs", "show", run_id, cwd=churn)
    shown = wide("runs", "show", hostile_runs[0], cwd=churn)
    assert "run [/]" in shown and "p[/]" in shown and "m[/]" in shown
    compared = wide("runs", "compare", *hostile_runs, cwd=churn)
    assert "p[link=x]y[/link]" in compared
    # JSON keeps the exact text, escapes included
    [record] = [r for r in json.loads(cli("runs", "list", "--json").stdout)
                if r["run_id"] == hostile_runs[2]]
    assert record["name"] == "run \x1b[31mred\x1b[0m"


def test_file_and_column_names_with_markup_are_reported_as_text(churn_project: Path,
                                                                 good_csv: str) -> None:
    header, *rows = good_csv.splitlines(keepends=True)
    bad = churn_project / "data" / "[red]x[blink].csv"
    bad.write_text(header.rstrip("\n") + ",[/]extra\n" + "".join(
        line.rstrip("\n") + ",1\n" for line in rows))
    result = cli("ingest", str(bad))
    assert result.exit_code == 0, result.stderr
    assert "[red]x[blink].csv" in result.stdout
    assert "[/]extra" in result.stderr  # the warning about the extra column names it


async def hostile_rows_shown(app: MlyardApp, pilot: Pilot[None]) -> DataTable[Any]:
    """The runs table, once it lists every hostile run (within 10 s)."""
    table: DataTable[Any] = app.screen.query_one("#runs-table", DataTable)
    for _ in range(200):
        await pilot.pause(0.05)
        if table.row_count >= len(HOSTILE):
            break
    return table


def test_the_runs_screen_and_a_run_show_hostile_names_as_written(
        hostile_runs: list[str], churn: Path) -> None:
    async def scenario() -> list[str]:
        app = MlyardApp(mlyard.open_workspace(churn), "runs")
        async with app.run_test(size=(160, 40)) as pilot:
            table = await hostile_rows_shown(app, pilot)
            names = [str(table.get_cell_at((row, 2))) for row in range(table.row_count)]
            await pilot.press("enter")  # open the highlighted run
            for _ in range(100):
                await pilot.pause(0.05)
                if type(app.screen).__name__ == "RunDetailScreen":
                    break
            await settle(pilot)  # the run screen loads the hostile run without failing
            assert type(app.screen).__name__ == "RunDetailScreen"
        return names

    names = asyncio.run(scenario())
    assert "run [/]" in names and "run [bold]loud[/bold]" in names
    assert "run \\x1b[31mred\\x1b[0m" in names
    detail = run_queries.show_run(mlyard.open_workspace(churn), hostile_runs[0])
    assert detail.run.params == {"p[/]": "[/]"}


def test_the_compare_screen_shows_hostile_params_and_metric_names_as_written(
        hostile_runs: list[str], churn: Path) -> None:
    """Marking every hostile run and pressing c once raised a MarkupError: the metric
    chooser read the metric names as markup."""
    async def scenario() -> tuple[str, list[str]]:
        app = MlyardApp(mlyard.open_workspace(churn), "runs")
        async with app.run_test(size=(160, 40)) as pilot:
            await hostile_rows_shown(app, pilot)
            for _ in HOSTILE:
                await pilot.press("space")
            await pilot.press("c")
            chooser = None
            for _ in range(200):
                await pilot.pause(0.05)
                if type(app.screen).__name__ == "CompareScreen":
                    chooser = app.screen.query_one("#compare-metric-list")
                    if chooser.option_count >= len(HOSTILE):  # type: ignore[attr-defined]
                        break
            assert chooser is not None, "the compare screen did not open"
            options = [str(chooser.get_option_at_index(i).prompt)  # type: ignore[attr-defined]
                       for i in range(chooser.option_count)]  # type: ignore[attr-defined]
            return type(app.screen).__name__, options

    screen, options = asyncio.run(scenario())
    assert screen == "CompareScreen"
    assert "m[/]" in options and "m[bold]loud[/bold]" in options
