"""Drift over time as a heat table (columns down, reports across), the highlighted
cell's reference and current distributions, the alerts, and live performance."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Header

from mlyard.core.monitoring import drift_reports
from mlyard.core.monitoring.drift_reports import DriftCell
from mlyard.core.workspace import Workspace
from mlyard.tui.format import when
from mlyard.tui.messages import MonitoringLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.widgets.curves import CurvesPlot
from mlyard.tui.widgets.histograms import HistogramsPlot
from mlyard.tui.widgets.tables import fill

REFRESH_SECONDS = 5.0
ROLE_PREFIX = {"feature": "", "prediction": "▸ ", "target": "▸ "}


class MonitoringScreen(AreaScreen):
    AREA = "monitoring"
    AUTO_FOCUS = "#drift-table"
    CSS_PATH = Path(__file__).parent / "monitoring.tcss"
    HELP = """\
## Monitoring
Each row is a feature (then the model's predictions and the target), each column a drift
report (`mlyard drift`), oldest left. A cell holds the column's drift statistic: red when
it drifted, yellow when its PSI is moderate or worse. The chart shows the highlighted
cell's reference (training data) and current distributions. Below: drift and data
quality alerts, and the live metric from `mlyard feedback` per time window. `g` swaps
the alerts for the newest window's live figures per group of each segment
(`[monitor] segments`), worst first, with the rows each stands on.
"""
    BINDINGS = [
        Binding("r", "reload", "Refresh", tooltip="Load the reports again now.",
                id="monitoring.reload"),
        Binding("g", "toggle_segments", "Segments",
                tooltip="Alerts, or the live figures per group of each segment.",
                id="monitoring.segments"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.overview: drift_reports.MonitoringOverview | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="monitoring-top"):
            yield DataTable(id="drift-table", cursor_type="cell")
            yield HistogramsPlot(id="drift-chart")
        with Horizontal(id="monitoring-bottom"):
            yield DataTable(id="alerts-table", cursor_type="row")
            yield DataTable(id="segments-table", cursor_type="row")
            yield CurvesPlot(id="performance-plot")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#drift-table", DataTable).border_title = "Drift by report"
        self.query_one("#alerts-table", DataTable).border_title = "Alerts"
        segments = self.query_one("#segments-table", DataTable)
        segments.border_title = "Live, by segment"
        segments.display = False
        self.reload()
        self.set_interval(REFRESH_SECONDS, self.reload)

    def reload(self) -> None:
        self._load(self.ws)

    @work(thread=True, exclusive=True, exit_on_error=False, group="monitoring",
          description="Loading drift reports")
    def _load(self, ws: Workspace) -> None:
        self.post_message(MonitoringLoaded(drift_reports.overview(ws)))

    @on(MonitoringLoaded)
    def show_overview(self, message: MonitoringLoaded) -> None:
        overview = message.overview
        self.overview = overview
        table = self.query_one("#drift-table", DataTable)
        cursor = table.cursor_coordinate
        labels = [r.current_label.replace("served, last ", "served ") for r in overview.reports]
        fill(table, ["column", *labels],
             [(ROLE_PREFIX.get(row.role, "") + row.column,
               *(_cell(row.cells.get(r.report_id)) for r in overview.reports))
              for row in overview.rows],
             [f"{row.role}:{row.column}" for row in overview.rows],
             ["column", *(str(r.report_id) for r in overview.reports)])
        if overview.rows and overview.reports:
            # Keep the highlighted cell; start on the newest report of the first column.
            kept = cursor.row < table.row_count and 0 < cursor.column < len(table.columns)
            table.cursor_coordinate = cursor if kept else Coordinate(0, len(overview.reports))
        # Empty boxes say what fills them.
        table.border_subtitle = "" if overview.reports else "none yet: run `mlyard drift`"
        alerts = self.query_one("#alerts-table", DataTable)
        alerts.border_subtitle = "" if overview.alerts else "none: drift and refused files"
        fill(alerts, ["when", "severity", "delivery", "what"],
             [(when(a.ts), _severity(a.severity), _delivery(a.delivery), a.what)
              for a in overview.alerts])
        metric = overview.metric
        segments = self.query_one("#segments-table", DataTable)
        segments.border_subtitle = "" if overview.segments else \
            "none yet: [monitor] segments, then mlyard feedback"
        fill(segments, ["segment", "group", "rows", metric],
             [(row.segment, row.group, f"{row.rows:,}",
               "too few rows" if row.too_few else _figure(row.metrics.get(metric)))
              for row in overview.segments])
        curves: dict[str, list[tuple[int, float | None]]] = {}
        for window in overview.performance:
            curves.setdefault(f"v{window.version}", []).append(
                (int(window.start // 86400), window.metrics.get(metric)))
        days = sorted({day for points in curves.values() for day, _ in points})
        ticks = [(float(day), time.strftime("%m-%d", time.gmtime(day * 86400)))
                 for day in days[::max(1, len(days) // 4)]]
        self.query_one("#performance-plot", CurvesPlot).show(
            f"live {metric} per window" if curves else
            "live performance: none yet (mlyard feedback LABELS)", curves,
            xlabel="", xticks=ticks)
        self._show_chart()

    def action_toggle_segments(self) -> None:
        alerts = self.query_one("#alerts-table", DataTable)
        segments = self.query_one("#segments-table", DataTable)
        segments.display, alerts.display = alerts.display, segments.display
        (segments if segments.display else alerts).focus()

    @on(DataTable.CellHighlighted, "#drift-table")
    def _show_chart(self) -> None:
        overview = self.overview
        plot = self.query_one("#drift-chart", HistogramsPlot)
        table = self.query_one("#drift-table", DataTable)
        if overview is None or not overview.rows or not overview.reports:
            plot.show("drift charts: none yet (mlyard drift)", None)
            return
        row = min(table.cursor_row, len(overview.rows) - 1)
        column = max(table.cursor_column, 1) - 1
        report = overview.reports[min(column, len(overview.reports) - 1)]
        name = overview.rows[row].column
        plot.show(f"{name}: {report.current_label}",
                  overview.charts.get(report.report_id, {}).get(name))


def _cell(cell: DriftCell | None) -> Text:
    if cell is None:
        return Text("")
    if not cell.reliable:
        return Text("few rows", style="dim")
    style = "bold red" if cell.drifted else ("yellow" if (cell.psi or 0) >= 0.1 else "green")
    return Text("-" if cell.statistic is None else f"{cell.statistic:.3g}", style=style)


def _delivery(state: str) -> Text:
    """How an alert's delivery stands ([alerts]): red when it did not reach anyone."""
    return Text(state, style={"gave up": "bold red", "retrying": "yellow",
                              "delivered": "green"}.get(state, "dim"))


def _severity(value: str) -> Text:
    return Text(value, style={"severe": "bold red", "moderate": "yellow"}.get(value, ""))


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
