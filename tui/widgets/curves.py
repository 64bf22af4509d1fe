"""Metric curves of one or more runs overlaid in one plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual_plotext import PlotextPlot

from mlyard.tui.format import downsample


class CurvesPlot(PlotextPlot):
    """Draws {label: [(step, value)]}; each curve is downsampled to the plot's width."""

    DEFAULT_CSS = """
    CurvesPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def show(self, title: str,
             curves: Mapping[str, Sequence[tuple[int, float | None]]]) -> None:
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
            plt.title(f"{title}: no points")
        plt.xlabel("step")
        self.refresh()


class BarsPlot(PlotextPlot):
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
        if top:
            plt.bar([name for name, _ in reversed(top)], [value for _, value in reversed(top)],
                    orientation="horizontal", width=0.5)
        self.refresh()
