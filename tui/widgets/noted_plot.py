"""A plot that, with nothing to draw, is one line saying so (and what would fill it)
rather than an empty frame of axes taking half the screen."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot


class NotedPlot(PlotextPlot):
    DEFAULT_CSS = """
    NotedPlot.-empty {
        height: auto;
        min-height: 1;
    }
    """

    note: str | None = None  # shown instead of the plot while set

    def show_note(self, note: str) -> None:
        self.note = note
        self.add_class("-empty")
        self.refresh(layout=True)

    def drawn(self) -> None:
        """The plot has something to draw again."""
        if self.note is not None:
            self.note = None
            self.remove_class("-empty")
        self.refresh(layout=True)

    def render(self) -> RenderResult:
        if self.note is not None:
            return Text(self.note, style="dim")  # the user's names as text, never markup
        return super().render()
