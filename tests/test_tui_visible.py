"""What a person must be able to read on each screen at 80x24 and 100x30, checked in the
rendered text rather than pixels: the snapshots record what is drawn, these say what
must be visible (footer hints, whole ids, both runs of a comparison, every column of a
profile, every alias)."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

from mlyard.core.data import versions
from mlyard.core.models.loading import load_model
from mlyard.core.tracking import run_queries
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, wait_until
from tests.test_tui import SCREENS, keys_then_settle, make_app, project, template  # noqa: F401

SIZES = [(80, 24), (100, 30)]
_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="([\d.]+)" '
                   r'clip-path="url\(#[^)]*-line-(\d+)\)">([^<]*)</text>')


def screen_text(svg: str) -> list[str]:
    """The screen's lines, as a person reads them, from Textual's SVG screenshot."""
    lines: dict[int, list[tuple[float, str]]] = {}
    cell = 0.0
    for x, length, line, text in _TEXT.findall(svg):
        text = html.unescape(text).replace("\xa0", " ")
        if text.strip() and not cell:
            cell = float(length) / len(text)
        lines.setdefault(int(line), []).append((float(x), text))
    rendered = []
    for number in sorted(lines):
        row = ""
        for x, text in sorted(lines[number]):
            row = row.ljust(round(x / cell)) + text
        rendered.append(row)
    return rendered


async def render(project_dir: Path, screen: str, size: tuple[int, int],
                 *more_keys: str) -> list[str]:
    app = make_app(project_dir)
    async with app.run_test(size=size) as pilot:
        await keys_then_settle(*SCREENS.get(screen, ()), *more_keys)(pilot)
        return screen_text(app.export_screenshot())


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", sorted(set(SCREENS) - {"promote_confirm", "help"}))
async def test_every_screen_shows_the_help_and_quit_keys(project: Path,  # noqa: F811
                                                         screen: str,
                                                         size: tuple[int, int]) -> None:
    footer = (await render(project, screen, size))[-1]
    assert "? Help" in footer and "q Quit" in footer, footer


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_runs_show_whole_ids_names_and_the_headline_metric(project: Path,  # noqa: F811
                                                                size: tuple[int, int]) -> None:
    text = "\n".join(await render(project, "runs", size))
    for run in run_queries.list_runs(open_workspace(project), []):
        assert run.run_id[:8] in text and str(run.name) in text
        assert f"{run.metrics['holdout.auc']:.4g}" in text


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_compare_shows_both_runs_in_params_and_metrics(project: Path,  # noqa: F811
                                                             size: tuple[int, int]) -> None:
    lines = await render(project, "compare", size)
    ids = [r.run_id[:8] for r in run_queries.list_runs(open_workspace(project), [])]
    for header in ("param ", "metric "):
        [row] = [line for line in lines if header in line and ids[0] in line]
        assert sum(row.count(i) for i in set(ids)) >= 2, row
    text = "\n".join(lines)
    assert "num_leaves" in text and "63" in text and "15" in text  # the differing param


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_dashboard_shows_whole_ids_and_the_whole_quarantine_reason(
        project: Path, size: tuple[int, int]) -> None:  # noqa: F811
    text = "\n".join(await render(project, "dashboard", size))
    for run in run_queries.list_runs(open_workspace(project), []):
        assert run.run_id[:8] + "…" not in text and run.run_id[:8] in text
    assert "broken.csv: missing columns" in text
    assert "arrive with their own screens" not in text  # they exist
    assert "drift" in text.lower() and "(7)" in text


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_models_show_every_alias_move_readably(project: Path,  # noqa: F811
                                                     size: tuple[int, int]) -> None:
    text = "\n".join(await render(project, "models", size))
    assert "challenger" in text and "promote - -> 1" in text and "set - -> 2" in text


@pytest.mark.asyncio
async def test_the_run_screen_says_how_to_switch_tabs(project: Path) -> None:  # noqa: F811
    footer = (await render(project, "run_detail", (80, 24)))[-1]
    assert "Next tab" in footer, footer


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_column_of_a_dataset_diff_can_be_scrolled_to(project: Path,  # noqa: F811
                                                                 size: tuple[int, int]) -> None:
    keys = ("3", "space", "down", "space", "d")
    seen = "\n".join(await render(project, "datasets", size, *keys[1:]))
    seen += "\n".join(await render(project, "datasets", size, *keys[1:], "pagedown"))
    diff = seen[seen.index("churn:v1 -> churn:v2"):]
    columns = versions.get_version(open_workspace(project), "v2").schema
    assert all(f"│ {name} " in diff for name in columns), diff


@pytest.mark.asyncio
async def test_pinning_keeps_the_metrics_in_view(project: Path) -> None:  # noqa: F811
    app = make_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await keys_then_settle("2")(pilot)
        table = app.screen.query_one("#runs-table")
        assert table.fixed_columns == 3  # mark, run, name
        await keys_then_settle("p")(pilot)
        assert table.fixed_columns == 7  # and status and the three headline metrics
        await keys_then_settle("p")(pilot)
        assert table.fixed_columns == 3


@pytest.mark.asyncio
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_quarantine_tab_opens_from_the_keyboard_and_back(
        project: Path, size: tuple[int, int]) -> None:  # noqa: F811
    versions_text = "\n".join(await render(project, "datasets", size))
    quarantine = "\n".join(await render(project, "datasets", size, "right_square_bracket"))
    back = "\n".join(await render(project, "datasets", size, "right_square_bracket",
                                  "left_square_bracket"))
    assert "broken.csv" not in versions_text and "churn:v1" in versions_text
    assert "broken.csv" in quarantine and "open" in quarantine and "missing columns" in quarantine
    assert "churn:v1" not in quarantine
    assert back == versions_text
    assert "] Next tab" in versions_text.splitlines()[-1]


@pytest.mark.asyncio
async def test_the_run_screen_tabs_change_what_is_shown_from_the_keyboard(
        project: Path) -> None:  # noqa: F811
    """`]` and tab move on through the run's tabs, and the pane shown changes."""
    next_tab = "right_square_bracket"
    shown = ["\n".join(await render(project, "run_detail", (100, 30), *[next_tab] * n))
             for n in range(3)]
    assert len(set(shown)) == 3, shown
    assert "\n".join(await render(project, "run_detail", (100, 30), "tab")) == shown[1]


@pytest.mark.asyncio
async def test_the_dashboard_counts_one_model_version_in_the_singular(churn: Path) -> None:
    """It said "1 model versions" for a project's first model."""
    from tests.conftest import train_json

    train_json()
    text = "\n".join(await render(churn, "dashboard", (100, 30)))
    assert "1 model version, no aliases yet" in text and "1 model versions" not in text, text


@pytest.mark.asyncio
async def test_the_data_panel_keeps_versions_and_rows_whole_and_cuts_the_file_name(
        churn: Path) -> None:
    """A long dataset name and long file names at 80x24: the file name gives way."""
    config = churn / "mlyard.toml"
    config.write_text(config.read_text().replace("[data]", '[data]\ndataset = "labor_force_q"', 1))
    long_name = churn / "data" / "labor_force_survey_2026_quarterly_extract_part_01.csv"
    long_name.write_bytes((churn / "data" / "churn_2026_01.csv").read_bytes()[:20_000]
                          .rsplit(b"\n", 1)[0] + b"\n")
    assert mlyard("ingest", str(long_name)).exit_code == 0
    ws = open_workspace(churn)
    [version] = [v for v in versions.list_versions(ws) if v.dataset == "labor_force_q"]
    text = "\n".join(await render(churn, "dashboard", (80, 24)))
    assert version.ref in text and f"{version.rows:,}" in text, text
    assert re.search(r"labor_f\w*…", text), text  # the file name's start, cut


@pytest.mark.asyncio
async def test_the_serving_screen_at_80x24_under_traffic(project: Path) -> None:  # noqa: F811
    """Requests per second above zero while requests come, the latency on one line, and
    logged requests told apart by their ids."""
    import threading

    import httpx

    from mlyard.core.serving import supervisor

    app = make_app(project)
    ws = open_workspace(project)
    spec = load_model(ws, "champion").spec
    records = versions.load_versions(ws).head(2).select(spec.names).to_dicts()
    stop = threading.Event()
    async with app.run_test(size=(80, 24)) as pilot:
        await keys_then_settle("5", "s")(pilot)
        server = app.server_process  # type: ignore[attr-defined]
        assert server is not None and server.alive

        def traffic() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    client.post(f"{server.url}/invocations", json={"instances": records})
                    stop.wait(0.02)

        sender = threading.Thread(target=traffic)
        sender.start()
        def rate_shown() -> bool:
            text = "\n".join(screen_text(app.export_screenshot()))
            found = re.search(r"requests/s\s+([\d,.]+)", text)
            return bool(found and float(found.group(1).replace(",", "")) > 0
                        and len(supervisor.recent_predictions(ws, 20)) >= 2)

        try:
            await wait_until(pilot, rate_shown, what="requests/s above zero")
        finally:
            stop.set()
            sender.join()
        ids = [r.request_id[-8:] for r in supervisor.recent_predictions(ws, 20)]

        def ids_told_apart() -> list[str] | None:  # the screen reads the log once a second
            lines = screen_text(app.export_screenshot())
            return lines if len({i for i in ids if any(i in line for line in lines)}) >= 2 \
                else None

        text = await wait_until(pilot, ids_told_apart, what="two logged requests told apart")
        [latency] = [line for line in text if "p50/p95/p99" in line]
        assert re.search(r"p50/p95/p99\s+[\d.]+ / [\d.]+ / [\d.]+ ms", latency), latency
        server.stop()


@pytest.mark.asyncio
async def test_monitoring_at_80x24_dates_the_live_curve_and_draws_no_empty_frames(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """No empty plot frame before there is anything to draw, only the line saying what
    fills it; then the live metric over dates, with no stray axis label."""
    import json as json_module

    import pyarrow as pa

    from mlyard.storage import prediction_files

    empty = await render(project, "monitoring", (80, 24))
    shown = "\n".join(empty)
    assert "live performance: none yet" in shown and "(mlyard feedback LABELS)" in shown, shown
    assert not any("┤" in line for line in empty[15:]), "\n".join(empty)  # no axes below
    day = 86_400.0
    start = 1_780_000_000.0 - 1_780_000_000.0 % day
    requests, labels = [], ["customer_id,churned"]
    for d in range(3):
        for i in range(40):
            customer = f"C{d}-{i}"
            requests.append({"request_id": f"r{d}-{i}", "ts": start + d * day + i,
                             "model": "churn", "version": 1, "rows": 1,
                             "inputs": json_module.dumps([{"customer_id": customer}]),
                             "outputs": json_module.dumps([(i % 10) / 10])})
            labels.append(f"{customer},{int(i % 10 >= 5 if i % 4 else i % 10 < 5)}")
    logged = pa.Table.from_pylist(requests, schema=prediction_files.PREDICTION_SCHEMA)
    prediction_files.write(open_workspace(project).catalog.predictions_dir, logged)
    (project / "late.csv").write_text("\n".join(labels) + "\n")
    monkeypatch.chdir(project)
    fed = mlyard("feedback", "late.csv")
    assert fed.exit_code == 0, fed.stderr
    lines = await render(project, "monitoring", (80, 24))
    text = "\n".join(lines)
    assert "live auc per window" in text, text
    for d in (0, 2):
        assert time.strftime("%m-%d", time.gmtime(start + d * day)) in text, text
    assert not any(line.strip() == "step" or line.rstrip().endswith(" step")
                   for line in lines), text


@pytest.mark.asyncio
async def test_monitoring_swaps_alerts_for_live_figures_by_segment_worst_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`g` shows the newest window's groups of each segment, worst first with their
    rows, at 80x24."""

    import polars as pl

    from tests.test_segments import serve_logged, trained_fair

    fair = trained_fair(tmp_path, monkeypatch)
    serve_logged(fair, pl.read_csv(fair / "data" / "batch.csv").head(600),
                 ["row_id", "region"])
    assert mlyard("feedback", "labels.csv").exit_code == 0
    lines = await render(fair, "monitoring", (80, 24), "g")
    text = "\n".join(lines)
    assert "Live, by segment" in text, text
    listed = [line for line in lines if re.search(r"region\s+(north|south|east|west)", line)]
    assert len(listed) == 4 and "south" in listed[0], text


@pytest.mark.asyncio
async def test_the_run_screen_lists_segments_worst_first_with_their_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_segments import trained_fair

    fair = trained_fair(tmp_path, monkeypatch)
    lines = await render(fair, "run_detail", (100, 30))
    text = "\n".join(lines)
    assert "By segment, worst first" in text and "auc gap" in text, text
    listed = [line for line in lines if re.search(r"region\s+(north|south|east|west)", line)]
    assert len(listed) == 4 and "south" in listed[0], text
