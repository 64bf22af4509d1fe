"""Reference and current distributions of one column, side by side."""

from __future__ import annotations

from mlyard.core.monitoring.drift_stats import Chart
from mlyard.tui.widgets.noted_plot import NotedPlot


class HistogramsPlot(NotedPlot):
    """Bars of the reference's and the current data's shares per bin or category."""

    DEFAULT_CSS = """
    HistogramsPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    shown: str = ""  # the title of what is drawn now

    def show(self, title: str, chart: Chart | None) -> None:
        """With no chart, `title` is the one line shown (say what would fill it)."""
        self.shown = title
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        if chart and chart.reference:
            labels = chart.labels(3)
            positions = list(range(1, len(labels) + 1))
            plt.multiple_bar(positions, [chart.reference, chart.current],  # type: ignore[call-arg]
                             labels=["reference", "current"])  # plotext's stub says `label`
            # Ticks chosen here, not by plotext: its own choice varies with the width the
            # plot happens to have when it is first drawn.
            step = max(1, len(labels) // 5)
            plt.xticks([float(p) for p in positions[::step]], labels[::step])
            self.drawn()
        else:
            self.show_note(f"{title}: no chart" if chart is not None else title)
