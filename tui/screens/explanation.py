"""Why one served prediction came out as it did: its features' contributions as bars."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from mlyard.core.serving.supervisor import LoggedExplanation
from mlyard.tui.format import plain
from mlyard.tui.widgets.curves import BarsPlot

TOP = 10  # contributions drawn, the largest in size


class ExplanationScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ExplanationScreen {
        align: center middle;
    }
    ExplanationScreen > Vertical {
        width: 90%;
        max-width: 110;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ExplanationScreen #explanation-summary {
        height: auto;
    }
    """
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Close",
                        tooltip="Back to the server's predictions.", id="explanation.close")]

    def __init__(self, request_id: str, explanation: LoggedExplanation) -> None:
        super().__init__()
        self.request_id = request_id
        self.explanation = explanation

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Request {self.request_id}: why it scored this way"
            yield Static(self._summary(), id="explanation-summary")
            yield BarsPlot(id="explanation-bars")

    def on_mount(self) -> None:
        explained = self.explanation
        self.query_one(BarsPlot).show(
            f"top {TOP} contributions to the raw score"
            + (f" of class {explained.output}" if explained.output is not None else ""),
            explained.contributions, limit=TOP, signed=True)

    def _summary(self) -> Table:
        explained = self.explanation
        table = Table(box=None, show_header=False, padding=(0, 1))
        table.add_column(style="bold")
        table.add_column()
        raw = explained.base_value + sum(explained.contributions.values())
        table.add_row("row", plain(f"1 of {explained.rows}" if explained.rows > 1 else "1"))
        table.add_row("raw score", plain(f"{raw:.4g} = base value {explained.base_value:.4g}"
                                         " + the contributions below"))
        strongest = sorted(explained.contributions.items(), key=lambda item: -abs(item[1]))
        table.add_row("inputs", plain(", ".join(
            f"{name}={explained.values.get(name)!r}" for name, _ in strongest[:TOP])))
        return table
