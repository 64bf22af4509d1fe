"""The terminal UI, driven through Textual's pilot on a real workspace.

Snapshots pin what every screen looks like at 100x30 and 80x24; pilot tests drive the
flows a person uses: filter, mark, compare, switch the metric, promote and roll back.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, Log, TabbedContent
from textual.worker import WorkerCancelled

from mlyard.core.models import registry
from mlyard.core.serving import supervisor
from mlyard.core.workspace import open_workspace
from mlyard.tui.app import MlyardApp
from mlyard.tui.screens.automation import AutomationScreen
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.screens.compare import CompareScreen
from mlyard.tui.screens.dashboard import DashboardScreen
from mlyard.tui.screens.datasets import DatasetsScreen
from mlyard.tui.screens.dialogs import Confirm
from mlyard.tui.screens.explanation import ExplanationScreen
from mlyard.tui.screens.help import HelpScreen
from mlyard.tui.screens.models import ModelsScreen
from mlyard.tui.screens.monitoring import MonitoringScreen
from mlyard.tui.screens.run_detail import RunDetailScreen
from mlyard.tui.screens.runs import RunsScreen
from mlyard.tui.screens.serving import ServingScreen
from mlyard.tui.widgets.curves import BarsPlot
from tests.conftest import wait_until
from tests.tui_workspace import build, use_utc

SIZES = [(100, 30), (80, 24)]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    use_utc()
    return build(tmp_path_factory.mktemp("tui"))


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    """A fresh copy per test, since some tests move aliases."""
    copy = tmp_path / "churn"
    shutil.copytree(template, copy)
    with open_workspace(copy).catalog.session() as con:  # the files now live in the copy
        con.execute("UPDATE dataset_versions SET source_path = replace(source_path, ?, ?)",
                    [str(template), str(copy)])
    return copy


def make_app(project: Path) -> MlyardApp:
    return MlyardApp(open_workspace(project))


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until no worker has run for a few consecutive checks and messages are handled.

    A screen starts its worker when it mounts, which can be after a first wait returns,
    so one wait is not enough; this loop ends as soon as the app is quiet (within 10 s).
    """
    quiet = 0
    for _ in range(500):
        await pilot.pause(0.02)
        if any(worker.is_running for worker in pilot.app.workers):
            quiet = 0
            with suppress(WorkerCancelled):
                await pilot.app.workers.wait_for_complete()
        else:
            quiet += 1
            if quiet >= 5:
                break
    # Tables size their columns when they next render; let that happen before a snapshot.
    pilot.app.screen.refresh(layout=True)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.1)


def keys_then_settle(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
    return run


SCREENS = {
    "dashboard": (),
    "runs": ("2",),
    "compare": ("2", "space", "space", "c"),
    "run_detail": ("2", "enter"),
    "datasets": ("3",),
    "quarantine": ("3", "right_square_bracket"),
    "models": ("4",),
    "promote_confirm": ("4", "down", "p"),
    "help": ("2", "question_mark"),
    "serving": ("5",),
    "automation": ("6",),
    "monitoring": ("7",),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_screen_snapshot(project: Path, snap_compare: Any, screen: str,
                         size: tuple[int, int]) -> None:
    """Each screen on the sample workspace looks as recorded."""
    assert snap_compare(make_app(project), terminal_size=size,
                        run_before=keys_then_settle(*SCREENS[screen]))


@pytest.mark.asyncio
async def test_filter_mark_compare_and_switch_metric(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one("#runs-table", DataTable)
        assert table.row_count == 2
        await pilot.press("slash", *"num_leaves = 63", "enter")
        await settle(pilot)
        assert table.row_count == 1 and screen.page is not None
        assert screen.page.runs[0].name == "big-trees"
        await pilot.press("escape")
        await settle(pilot)
        assert table.row_count == 2
        await pilot.press("space", "space", "c")
        await settle(pilot)
        compare = app.screen
        assert isinstance(compare, CompareScreen) and len(compare.run_ids) == 2
        plot = compare.query_one("#compare-plot")
        first = plot.plt._active.monitor.title  # type: ignore[attr-defined]
        await pilot.press("down")
        await settle(pilot)
        second = plot.plt._active.monitor.title  # type: ignore[attr-defined]
        assert first == "train.auc" and second == "train.binary_logloss"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)


@pytest.mark.asyncio
async def test_promote_and_roll_back_move_the_alias_in_the_catalog(project: Path) -> None:
    app = make_app(project)
    ws = open_workspace(project)
    assert registry.resolve(ws, "champion").version == 1
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(pilot)
        assert registry.resolve(ws, "champion").version == 2
        await pilot.press("b")
        await settle(pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        await settle(pilot)
        assert registry.resolve(ws, "champion").version == 2
        await pilot.press("b", "y")
        await settle(pilot)
        assert registry.resolve(ws, "champion").version == 1
        moves = [(m.kind, m.to_version) for m in registry.history(ws, "champion")]
        assert moves == [("promote", 1), ("promote", 2), ("rollback", 1)]


@pytest.mark.asyncio
async def test_core_errors_are_notifications_not_crashes(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("2", "slash", *"colour = red", "enter")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("unknown name 'colour'" in m for m in messages), messages
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("escape", "4")
        await settle(pilot)
        await pilot.press("b", "y")
        await settle(pilot)
        await pilot.press("b", "y")
        await settle(pilot)
        assert any("no earlier champion" in n.message for n in app._notifications)


@pytest.mark.asyncio
async def test_run_detail_shows_importance_and_record(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("2", "enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        metrics = detail.query_one("#run-metrics", DataTable)
        assert metrics.row_count >= 10
        detail.query_one("#run-tabs", TabbedContent).active = "tab-importance"
        await settle(pilot)
        gain = detail.query_one("#run-importance", BarsPlot).shown
        contribution = detail.query_one("#run-contribution", BarsPlot)
        # Beside gain, each feature's mean |contribution| on the holdout, for every feature.
        assert contribution.display and set(contribution.shown) == set(gain)
        assert min(contribution.shown.values()) >= 0 < max(contribution.shown.values())
        detail.query_one("#run-tabs", TabbedContent).active = "tab-log"
        await settle(pilot)
        log = detail.query_one("#run-log", Log)
        assert any("train  [1/500] train.auc=" in line for line in log.lines)
        assert log.lines[-1].split(maxsplit=3)[-1].startswith("best iteration")


def test_every_binding_has_words_and_a_palette_command(project: Path) -> None:
    app = make_app(project)
    screens: list[type[AreaScreen]] = [DashboardScreen, RunsScreen, DatasetsScreen,
                                       ModelsScreen, CompareScreen, RunDetailScreen,
                                       ServingScreen, AutomationScreen,
                                       MonitoringScreen]
    for owner in [MlyardApp, *screens, Confirm, HelpScreen]:
        for binding in owner.BINDINGS:
            assert isinstance(binding, Binding)
            assert binding.description and binding.tooltip and binding.id, (owner, binding)
    runs_screen = RunsScreen()
    titles = {command.title for command in app.get_system_commands(runs_screen)}
    for binding in RunsScreen.BINDINGS:
        assert isinstance(binding, Binding)
        assert f"runs: {binding.description.lower()}" in titles
    for binding in MlyardApp.BINDINGS:
        assert isinstance(binding, Binding)
        assert f"go: {binding.description.lower()}" in titles


@pytest.mark.asyncio
async def test_a_running_run_updates_in_place(project: Path) -> None:
    from mlyard.core.tracking import active_run

    ws = open_workspace(project)
    run = active_run.start_run(name="live", workspace=ws, flush_interval=60)
    try:
        run.log_metric("holdout.accuracy", 0.5)
        run.flush()
        app = make_app(project)
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            await pilot.press("2")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            table = screen.query_one("#runs-table", DataTable)
            column = next(i for i, c in enumerate(table.ordered_columns)
                          if str(c.label) == "holdout.accuracy")
            row = table.get_row(run.run_id)
            assert str(row[column]).strip() == "0.5" and str(row[3]) == "running"
            run.log_metric("holdout.accuracy", 0.75)
            run.flush()
            screen._refresh_if_running()  # what the screen's 2-second timer calls
            await settle(pilot)
            assert str(table.get_row(run.run_id)[column]).strip() == "0.75"
    finally:
        run.end()


@pytest.mark.asyncio
async def test_note_and_tag_are_saved_on_the_run(project: Path) -> None:
    from mlyard.core.tracking import run_queries

    app = make_app(project)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        run_id = screen._cursor_run()
        assert run_id is not None
        await pilot.press("n", *"looks overfit", "enter")
        await settle(pilot)
        await pilot.press("t", *"team=growth", "enter")
        await settle(pilot)
        await pilot.press("t", *"no-equals", "enter")
        await settle(pilot)
        assert any("expected KEY=VALUE" in n.message for n in app._notifications)
    tags = run_queries.show_run(open_workspace(project), run_id).run.tags
    assert tags["mlyard.note"] == "looks overfit" and tags["team"] == "growth"


@pytest.mark.asyncio
async def test_serving_screen_starts_watches_and_stops_a_server(project: Path) -> None:
    import httpx

    from mlyard.core.data import versions
    from mlyard.core.models.features import encode
    from mlyard.core.models.loading import load_model

    app = make_app(project)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ServingScreen)
        await pilot.press("s")
        await settle(pilot)
        server = app.server_process
        assert server is not None and server.alive, [n.message for n in app._notifications]
        ws = open_workspace(project)
        spec = load_model(ws, "champion").spec
        records = versions.load_versions(ws).head(3).select(spec.names).to_dicts()
        answer = httpx.post(f"{server.url}/invocations", json={"instances": records})
        assert answer.status_code == 200
        await wait_until(pilot, lambda: supervisor.recent_predictions(ws, 20),
                         what="the request in the server's log")
        screen._poll(ws, server.url)
        await settle(pilot)
        stats = screen.latest_stats
        assert stats is not None and stats.requests == 1 and stats.rows == 3
        assert stats.errors == 0 and stats.model_version == 1 and stats.p50_ms is not None
        logged = screen.query_one("#serving-predictions", DataTable)
        assert logged.row_count == 1 and logged.get_row_at(0)[3] == 3
        # Enter on the logged request: why its first row scored as it did.
        logged.focus()
        await pilot.press("enter")
        await settle(pilot)
        explained = app.screen
        assert isinstance(explained, ExplanationScreen), [n.message for n in app._notifications]
        bars = explained.query_one(BarsPlot).shown
        assert set(bars) == set(spec.names)
        model = load_model(ws, "champion")
        raw = model.booster.predict(encode(pl.DataFrame(records[:1]), model.spec),
                                    raw_score=True)[0]
        assert explained.explanation.base_value + sum(bars.values()) == pytest.approx(raw)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("x")
        await settle(pilot)
        assert app.server_process is None and not server.alive


@pytest.mark.asyncio
async def test_serving_and_models_show_the_shadow_against_the_champion(project: Path) -> None:
    import httpx

    from mlyard.core.data import versions
    from tests.conftest import wait_for
    from tests.test_serve import Server

    ws = open_workspace(project)
    frame = versions.load_versions(ws).head(40).drop("snapshot_date", "churned")
    with Server(project, "champion", shadow_ref="challenger") as server:
        for start in range(0, 40, 10):
            answer = httpx.post(f"{server.url}/invocations",
                                json={"dataframe_records": frame.slice(start, 10).to_dicts()})
            assert answer.status_code == 200
        shadow = server.app.state.shadow
        wait_for(lambda: shadow.scored == 4)
    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        panel = str(app.screen.query_one("#serving-shadow").render())
        assert "champion v1 vs shadow v2: 4 requests" in panel
        assert "same label" in panel and "no labels yet" in panel
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one("#models-table", DataTable)
        table.move_cursor(row=[str(k.value) for k in table.rows].index("2"))
        await settle(pilot)
        gates = str(screen.query_one("#models-gates").render())
        assert "champion v1 vs shadow v2: 4 requests" in gates
        table.move_cursor(row=[str(k.value) for k in table.rows].index("1"))
        await settle(pilot)
        assert "shadow v" not in str(screen.query_one("#models-gates").render())


@pytest.mark.asyncio
async def test_automation_screen_pauses_runs_now_and_shows_the_job_log(project: Path) -> None:
    from mlyard.core.automation import schedules

    app = make_app(project)
    ws = open_workspace(project)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await pilot.press("6")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AutomationScreen)
        assert screen.query_one("#schedules-table", DataTable).row_count == 1
        await pilot.press("p")
        await settle(pilot)
        assert schedules.get_schedule(ws, "nightly").paused is False
        await pilot.press("p")
        await settle(pilot)
        assert schedules.get_schedule(ws, "nightly").paused is True

        await pilot.press("n")
        deadline = time.monotonic() + 90
        while True:
            await settle(pilot)
            overview = screen.overview
            assert overview is not None
            mine = [j for j in overview.jobs if j.trigger == "manual:nightly"]
            # The watched folder holds a file the contract refuses: said in the status.
            if {(j.step, j.status) for j in mine} >= {("ingest", "succeeded with refusals"),
                                                     ("train", "succeeded")}:
                break
            assert time.monotonic() < deadline, [(j.step, j.status, j.error) for j in mine]
            await pilot.pause(0.5)
            screen.reload()
        jobs_table = screen.query_one("#jobs-table", DataTable)
        train_job = next(j for j in mine if j.step == "train")
        jobs_table.focus()
        row = [str(j.job_id) for j in overview.jobs].index(str(train_job.job_id))
        jobs_table.move_cursor(row=row)
        await settle(pilot)
        log = screen.query_one("#job-log", Log)
        assert any("trained run" in line for line in log.lines)


@pytest.mark.asyncio
async def test_monitoring_screen_heat_table_and_chart_follow_the_cursor(project: Path) -> None:
    from mlyard.tui.widgets.histograms import HistogramsPlot

    app = make_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("7")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MonitoringScreen)
        table = screen.query_one("#drift-table", DataTable)
        assert table.row_count == 12 and len(table.columns) == 3  # 10 features + 2, 2 reports
        assert str(table.get_row_at(0)[0]) == "age"
        await pilot.press("down", "down", "down", "down")
        await settle(pilot)
        assert str(table.get_row_at(table.cursor_row)[0]) == "monthly_charges"
        plot = screen.query_one("#drift-chart", HistogramsPlot)
        assert plot.shown == "monthly_charges: churn:v2"


def catalog_contents(project: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to tell whether anything at all changed."""
    import duckdb  # only to read the file back; mlyard itself reaches it through storage/

    with duckdb.connect(str(project / ".mlyard" / "catalog.duckdb"), read_only=True) as con:
        tables = [name for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT internal").fetchall()]
        return {name: con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
                for name in tables}


@pytest.mark.asyncio
async def test_a_read_only_ui_changes_nothing_whatever_keys_are_pressed_on_every_screen(
        project: Path) -> None:
    """Read-only is the core's refusal, not each screen's: every key of every screen,
    tab and shift+tab into each box, enter and y on whatever opens, and nothing moves."""
    before = catalog_contents(project)
    app = MlyardApp(replace(open_workspace(project), read_only=True))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for screen_key in "1234567":
            await pilot.press(screen_key)
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, AreaScreen)
            if screen.CHANGES:  # drawn disabled in the footer and help
                assert all(screen.check_action(action, ()) is None
                           for action in screen.CHANGES)
            keys = [key for binding in screen.BINDINGS if isinstance(binding, Binding)
                    for key in binding.key.split(",")[:1]]
            for key in [*keys, "tab", "enter", "y", "shift+tab", "enter", "y", "space",
                        "p", "y", "escape"]:
                await pilot.press(key)
                await settle(pilot)
                while app.screen is not screen and len(app.screen_stack) > 1:
                    await pilot.press("y", "enter")  # confirm whatever asked
                    await settle(pilot)
                    if app.screen is not screen:
                        app.pop_screen()
                        await settle(pilot)
        assert app.server_process is None
    assert catalog_contents(project) == before
