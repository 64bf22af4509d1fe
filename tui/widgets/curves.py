"""Metric curves of one or more runs overlaid in one plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlyard.tui.format import downsample
from mlyard.tui.widgets.noted_plot import NotedPlot


class CurvesPlot(NotedPlot):
    """Draws {label: [(step, value)]}; each curve is downsampled to the plot's width."""

    DEFAULT_CSS = """
    CurvesPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def show(self, title: str, curves: Mapping[str, Sequence[tuple[int, float | None]]],
             xlabel: str = "step",
             xticks: Sequence[tuple[float, str]] | None = None) -> None:
        """With no curves, `title` is the one line shown (say what would fill it)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        width = max(10, self.size.width or 80)
        drawn = False
        for label, points in curves.items():
            kept = downsample(points, width)
            if kept:
                plt.plot([s for s, _ in kept], [v for _, v in kept], label=label, marker="braille")
                drawn = True
        if not drawn:
            self.show_note(f"{title}: no points" if curves else title)
            return
        if xlabel:
            plt.xlabel(xlabel)
        if xticks:
            plt.xticks([position for position, _ in xticks], [label for _, label in xticks])
        self.drawn()


class BarsPlot(NotedPlot):
    """Horizontal bars, largest first: feature importance."""

    DEFAULT_CSS = """
    BarsPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    shown: dict[str, float] = {}  # what is drawn now, for tests and screen readers

    def show(self, title: str, values: dict[str, float], limit: int = 15,
             signed: bool = False) -> None:
        """`signed`: keep the `limit` largest in size, negative ones too (contributions
        that pushed a score down), drawn from the largest push up to the largest down."""
        self.shown = dict(values)
        top = sorted(values.items(), key=lambda item: abs(item[1]) if signed else item[1],
                     reverse=True)[:limit]
        if signed:
            top.sort(key=lambda item: item[1], reverse=True)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        if not top:
            self.show_note(f"{title}: none")
            return
        plt.bar([name for name, _ in reversed(top)], [value for _, value in reversed(top)],
                orientation="horizontal", width=0.5)
        self.drawn()
