"""One run: params, metrics, curves, feature importance, data, record and artifacts."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Log,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from mlyard.core.tracking import compare, run_queries
from mlyard.core.tracking.provenance import SYNCED_TAG
from mlyard.core.tracking.record_summary import RecordSummary
from mlyard.core.training.device import DEVICE_TAG
from mlyard.core.workspace import Workspace
from mlyard.tui.format import duration, number, plain, when
from mlyard.tui.messages import CurvesLoaded, RunDetailLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.widgets.curves import BarsPlot, CurvesPlot
from mlyard.tui.widgets.tables import PlainTable, fill

LOG_LINES = 200


class RunDetailScreen(AreaScreen):
    AREA = "run"
    AUTO_FOCUS = "#run-params"
    CSS_PATH = Path(__file__).parent / "run_detail.tcss"
    HELP = """\
## Run
Everything about one run in tabs (`]` or `tab` next, `[` or `shift+tab` previous):
overview, curves (pick a metric on the left), feature importance (gain, and the mean
|contribution| to a holdout row's score), the data and
reproducibility record, artifacts, and the last lines of its log. A running run updates
every two seconds.
"""
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the runs.", id="run.back"),
        Binding("right_square_bracket,tab", "switch_tab(1)", "Next tab", priority=True,
                tooltip="Show the next tab (overview, curves, importance, ...).",
                id="run.next_tab"),
        Binding("left_square_bracket,shift+tab", "switch_tab(-1)", "Previous tab",
                priority=True, tooltip="Show the previous tab.", id="run.previous_tab"),
        Binding("r", "reload", "Refresh", show=False, tooltip="Load the run again now.",
                id="run.reload"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.running = False
        self.metric: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="run-tabs"):
            with TabPane("Overview", id="tab-overview"):
                yield Static(id="run-summary")
                with Horizontal():
                    yield DataTable(id="run-params", cursor_type="row")
                    yield DataTable(id="run-metrics", cursor_type="row")
                yield DataTable(id="run-segments", cursor_type="row")
            with TabPane("Curves", id="tab-curves"):
                with Horizontal():
                    yield OptionList(id="run-metric-list")
                    yield CurvesPlot(id="run-plot")
            with TabPane("Importance", id="tab-importance"), Horizontal():
                yield BarsPlot(id="run-importance")
                yield BarsPlot(id="run-contribution")
            with TabPane("Data & record", id="tab-record"):
                yield Static(id="run-record")
            with TabPane("Artifacts", id="tab-artifacts"):
                yield DataTable(id="run-artifacts", cursor_type="row")
            with TabPane("Log", id="tab-log"):
                yield Log(id="run-log", auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run_id[:8]}"
        self.reload()
        self.set_interval(2.0, self._refresh_if_running)

    def reload(self) -> None:
        self._load(self.ws, self.run_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="run",
          description="Loading the run")
    def _load(self, ws: Workspace, run_id: str) -> None:
        view = run_queries.run_view(ws, run_id, LOG_LINES)
        self.post_message(RunDetailLoaded(view.detail, view.documents.record,
                                          view.documents.importance, view.log,
                                          view.documents.segments))

    @work(thread=True, exclusive=True, exit_on_error=False, group="run-curves",
          description="Loading curves")
    def _load_curves(self, ws: Workspace, run_id: str, metric: str) -> None:
        self.post_message(CurvesLoaded(metric, compare.metric_curves(ws, [run_id], metric)))

    @on(RunDetailLoaded)
    def show_run(self, message: RunDetailLoaded) -> None:
        detail, run = message.detail, message.detail.run
        self.running = run.status == "running"
        self.query_one("#run-summary", Static).update(plain(
            f"{run.name or run.run_id[:8]}  ·  {run.status}  ·  started {when(run.start_time)}"
            f"  ·  took {duration(run.start_time, run.end_time)}  ·  {run.host} pid {run.pid}"
            + (f"  ·  on {run.tags[DEVICE_TAG]}" if DEVICE_TAG in run.tags else "")
            + (f"\nsynced from {run.tags[SYNCED_TAG]}" if SYNCED_TAG in run.tags else "")
            + (f"\nerror: {run.error}" if run.error else "")
            + (f"\nnote: {run.tags['mlyard.note']}" if "mlyard.note" in run.tags else "")))
        fill(self.query_one("#run-params", DataTable), ["param", "value"],
              sorted(run.params.items()))
        fill(self.query_one("#run-metrics", DataTable), ["metric", "latest", "points"],
              [(k, number(v), detail.metric_points.get(k, 0))
               for k, v in sorted(run.metrics.items())])
        segments = self.query_one("#run-segments", DataTable)
        segments.display = message.segments is not None
        if message.segments is not None:
            figures = message.segments
            segments.border_title = "By segment, worst first"
            segments.border_subtitle = "; ".join(
                f"{f.segment}: {figures.metric} gap {number(f.metric_gap)}"
                + (f", parity diff {number(f.demographic_parity_difference)}"
                   if f.demographic_parity_difference is not None else "")
                for f in figures.fairness)
            fill(segments, ["segment", "group", "rows", figures.metric],
                 [(g.segment, g.group, f"{g.rows:,}",
                   "too few rows" if g.too_few else number(g.metrics.get(figures.metric)))
                  for g in figures.groups])
        fill(self.query_one("#run-artifacts", DataTable), ["artifact", "bytes", "blake3"],
              [(a.name, f"{a.size:,}", a.blake3[:16]) for a in detail.artifacts])
        self.query_one("#run-record", Static).update(_record(detail.inputs, message.record))
        log = self.query_one("#run-log", Log)
        log.clear()
        log.write_lines([f"{when(t.ts)} {t.stream:6} {t.line}" for t in message.log]
                        or ["(nothing logged: pass capture_output=True to start_run, or use "
                            "run.log_lines)"])
        found = message.importance or {}
        title = "parameter importance" if "params" in found else "feature importance (gain)"
        self.query_one("#run-importance", BarsPlot).show(
            title, found.get("params") or found.get("gain") or {})
        # Beside gain: how far each feature moves a holdout row's score, on average.
        contribution = self.query_one("#run-contribution", BarsPlot)
        contribution.display = "contribution" in found
        contribution.show("mean |contribution| on the holdout", found.get("contribution", {}))
        chooser = self.query_one("#run-metric-list", OptionList)
        curves = [k for k, n in detail.metric_points.items() if n > 1]
        if [chooser.get_option_at_index(i).id for i in range(chooser.option_count)] != curves:
            chooser.clear_options()
            # shown as text, never markup; the option's id is the key itself
            chooser.add_options([Option(plain(key), id=key) for key in curves])
            if curves:
                chooser.highlighted = 0
        elif self.metric:
            self._load_curves(self.ws, self.run_id, self.metric)

    @on(OptionList.OptionHighlighted, "#run-metric-list")
    def plot_metric(self, event: OptionList.OptionHighlighted) -> None:
        self.metric = event.option.id or ""
        self._load_curves(self.ws, self.run_id, self.metric)

    @on(CurvesLoaded)
    def show_curves(self, message: CurvesLoaded) -> None:
        points = next(iter(message.curves.values()), [])
        self.query_one("#run-plot", CurvesPlot).show(message.metric,
                                                      {self.run_id[:8]: points})

    def _refresh_if_running(self) -> None:
        if self.running:
            self.reload()


def _record(inputs: list[str], record: RecordSummary | None) -> Table | str:
    table = PlainTable(show_header=False, box=None, expand=True)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("datasets", ", ".join(inputs) or "-")
    if record is None:
        table.add_row("record", "none (not a `mlyard train` run)")
        return table
    split = record.split
    rows = ", ".join(f"{side} {count:,}" for side, count in split.rows.items())
    table.add_row("split", f"{split.how} · rows {rows or '-'}"
                  + (f" · holdout from {split.holdout_from}" if split.holdout_from else ""))
    table.add_row("seed", "-" if record.seed is None else str(record.seed))
    git = record.git
    table.add_row("git", f"{git.commit[:12] or '-'}{' (dirty)' if git.dirty else ''}"
                  if git else "not a git repository")
    environment = record.environment
    table.add_row("python", environment.python or "-")
    table.add_row("packages", ", ".join(f"{k} {v}" for k, v in environment.packages.items()
                                        if v))
    table.add_row("platform", environment.platform or "-")
    return table
