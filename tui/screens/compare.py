"""Two or more runs side by side, with their curves overlaid in one chart."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, OptionList
from textual.widgets.option_list import Option

from mlyard.core.tracking import compare
from mlyard.core.workspace import Workspace
from mlyard.tui.format import number, plain
from mlyard.tui.messages import ComparisonLoaded, CurvesLoaded
from mlyard.tui.screens.base import AreaScreen
from mlyard.tui.widgets.curves import CurvesPlot
from mlyard.tui.widgets.tables import fill


class CompareScreen(AreaScreen):
    AREA = "compare"
    AUTO_FOCUS = "#compare-metric-list"
    CSS_PATH = Path(__file__).parent / "compare.tcss"
    HELP = """\
## Compare
Params side by side (differences in bold), metrics with the best run marked ★, and the
curves of every compared run for the metric chosen in the list on the left.
"""
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the runs.",
                id="compare.back"),
        Binding("m", "focus_metrics", "Metric", tooltip="Choose the metric to plot.",
                id="compare.metric"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="compare-top"):
            yield DataTable(id="compare-params", cursor_type="row")
            yield DataTable(id="compare-metrics", cursor_type="row")
        with Horizontal(id="compare-bottom"):
            yield OptionList(id="compare-metric-list")
            with Vertical():
                yield CurvesPlot(id="compare-plot")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = " vs ".join(r[:8] for r in self.run_ids)
        self.query_one("#compare-params", DataTable).border_title = "Params"
        self.query_one("#compare-metrics", DataTable).border_title = "Metrics"
        self.query_one("#compare-metric-list", OptionList).border_title = "Curve"
        self.reload()

    def reload(self) -> None:
        self._load(self.ws, self.run_ids)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare",
          description="Comparing runs")
    def _load(self, ws: Workspace, run_ids: list[str]) -> None:
        self.post_message(ComparisonLoaded(compare.compare_runs(ws, run_ids)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-curves",
          description="Loading curves")
    def _load_curves(self, ws: Workspace, run_ids: list[str], metric: str) -> None:
        self.post_message(CurvesLoaded(metric, compare.metric_curves(ws, run_ids, metric)))

    @on(ComparisonLoaded)
    def show_comparison(self, message: ComparisonLoaded) -> None:
        result = message.comparison
        heads = [r.run_id[:8] for r in result.runs]
        fill(self.query_one("#compare-params", DataTable), ["param", *heads],
             [(Text(key, style=_style(key, result.differing)),
               *(Text(v or "-", style=_style(key, result.differing)) for v in values))
              # the params that differ first: they are why one compares
              for key, values in sorted(result.params.items(),
                                        key=lambda kv: kv[0] not in result.differing)])
        fill(self.query_one("#compare-metrics", DataTable), ["metric", *heads],
             [(key, *(Text(number(v) + (" ★" if i == result.best.get(key) else ""),
                           style="bold green" if i == result.best.get(key) else "")
                      for i, v in enumerate(values)))
              for key, values in result.metrics.items()])
        chooser = self.query_one("#compare-metric-list", OptionList)
        chooser.clear_options()
        curves = [k for k in result.metrics if k.startswith(("valid.", "train."))]
        # shown as text, never markup; the option's id is the key itself
        chooser.add_options([Option(plain(key), id=key) for key in curves or result.metrics])
        if chooser.option_count:
            chooser.highlighted = 0

    @on(OptionList.OptionHighlighted, "#compare-metric-list")
    def plot_metric(self, event: OptionList.OptionHighlighted) -> None:
        self._load_curves(self.ws, self.run_ids, event.option.id or "")

    @on(CurvesLoaded)
    def show_curves(self, message: CurvesLoaded) -> None:
        labels = {run_id: run_id[:8] for run_id in message.curves}
        self.query_one("#compare-plot", CurvesPlot).show(
            message.metric, {labels[k]: v for k, v in message.curves.items()})

    def action_focus_metrics(self) -> None:
        self.query_one("#compare-metric-list", OptionList).focus()


def _style(key: str, differing: list[str]) -> str:
    return "bold" if key in differing else "dim"
