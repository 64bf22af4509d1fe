"""The project at a glance."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Footer, Header, Static

from mlyard.core.dashboard import Overview, project_overview
from mlyard.core.humanize import counted
from mlyard.tui.format import coloured_status, number, when
from mlyard.tui.messages import OverviewLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.widgets.tables import PlainTable


class DashboardScreen(AreaScreen):
    AREA = "dashboard"
    CSS_PATH = Path(__file__).parent / "dashboard.tcss"
    HELP = """\
## Dashboard
The project at a glance: latest runs, the champion and challenger, the newest dataset
versions and quarantined files. It refreshes every few seconds.
"""
    BINDINGS = [
        Binding("r", "reload", "Refresh", tooltip="Load the dashboard again now.",
                id="dashboard.reload"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="panels"):
            yield Static(id="runs-panel", classes="panel")
            yield Static(id="models-panel", classes="panel")
            yield Static(id="data-panel", classes="panel")
            yield Static(id="quarantine-panel", classes="panel")
            yield Static(id="ops-panel", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        for panel_id, title in (("runs-panel", "Latest runs"), ("models-panel", "Models"),
                                ("data-panel", "Data"), ("quarantine-panel", "Quarantine"),
                                ("ops-panel", "Serving · schedules · drift")):
            self.query_one(f"#{panel_id}", Static).border_title = title
        self.reload()
        self.set_interval(5.0, self.reload)

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="dashboard",
          description="Loading the dashboard")
    def _load(self) -> None:
        self.post_message(OverviewLoaded(project_overview(self.ws)))

    @on(OverviewLoaded)
    def show_overview(self, message: OverviewLoaded) -> None:
        overview = message.overview
        self.sub_title = f"{overview.project} · 1-7 screens · ? keys"
        self.query_one("#runs-panel", Static).update(_runs_table(overview))
        self.query_one("#models-panel", Static).update(_models_table(overview))
        self.query_one("#data-panel", Static).update(_data_table(overview))
        self.query_one("#quarantine-panel", Static).update(_quarantine_table(overview))
        self.query_one("#ops-panel", Static).update(_operations(overview))


def _grid() -> Table:
    return PlainTable(show_edge=False, expand=True, box=None, header_style="bold")


def _runs_table(overview: Overview) -> Table | str:
    if not overview.latest_runs:
        return "No runs yet: `mlyard train` or the tracking API."
    table = _grid()
    # Id, status and metric fit a panel of an 80-column terminal; the time when wider.
    table.add_column("run", no_wrap=True, min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column(overview.primary_metric, no_wrap=True)
    table.add_column("started", no_wrap=True, overflow="ellipsis", ratio=1)
    for run in overview.latest_runs:
        table.add_row(run.run_id[:8], coloured_status(run.status),
                      number(run.metrics.get(overview.primary_metric)), when(run.start_time))
    counts = ", ".join(f"{n} {s}" for s, n in overview.status_counts.items())
    table.caption = counts
    return table


def _models_table(overview: Overview) -> Table | str:
    if not overview.aliases:
        return (f"{counted(overview.model_versions, 'model version')}, no aliases yet: "
                "promote one on the Models screen (4).")
    table = _grid()
    for column in ("alias", "version", overview.primary_metric):
        table.add_column(column, no_wrap=True)
    for alias in overview.aliases:
        table.add_row(alias.alias, f"{overview.project}/{alias.version}", number(alias.metric))
    table.caption = counted(overview.model_versions, "version")
    return table


def _data_table(overview: Overview) -> Table | str:
    if not overview.datasets:
        return "No dataset versions yet: `mlyard ingest FILE`."
    table = _grid()
    # The version and its rows whole at any width; the file's name gives way first.
    refs = [version.ref for version in overview.datasets]
    rows = [f"{version.rows:,}" for version in overview.datasets]
    table.add_column("version", no_wrap=True, min_width=max(map(len, ["version", *refs])))
    table.add_column("rows", no_wrap=True, min_width=max(map(len, ["rows", *rows])))
    table.add_column("source", no_wrap=True, overflow="ellipsis", ratio=1)
    for ref, count, version in zip(refs, rows, overview.datasets, strict=True):
        table.add_row(ref, count, Path(version.source_path).name)
    table.caption = counted(overview.dataset_versions, "version")
    return table


def _quarantine_table(overview: Overview) -> Text | str:
    open_entries = [item for item in overview.quarantined if not item.resolved]
    if not open_entries:
        return "No quarantined files."
    lines = Text()
    for item in open_entries[:4]:
        lines.append(Path(item.source).name, style="bold")
        lines.append(f": {item.reason.split(': ', 1)[-1]}\n")  # wraps, never cut
    if len(open_entries) > 4:
        lines.append(f"and {len(open_entries) - 4} more on the Datasets screen (3)")
    return lines


def _operations(overview: Overview) -> Text:
    """What runs on its own, each with the key or command that shows or starts it."""
    text = Text()
    text.append("Serving ", style="bold")
    text.append("5 starts and watches a server here\n")
    text.append("Automation ", style="bold")
    if overview.last_job is None:
        jobs = "no jobs yet: `mlyard pipeline run` or `mlyard daemon`"
    else:
        job = overview.last_job
        jobs = f"last job {job.step} {job.status} {when(job.started_at)}"
    text.append(f"{overview.schedules} schedule{'s' if overview.schedules != 1 else ''}; "
                f"{jobs} (6)\n")
    text.append("Monitoring ", style="bold")
    report = overview.last_report
    text.append("no drift report yet: `mlyard drift` (7)" if report is None else
                f"last drift report: {report.severity} on {report.current_label} "
                f"{when(report.ts)} (7)")
    return text
