"""Small text helpers shared by the screens: statuses, sparklines, downsampling.

Numbers, times and durations come from core.humanize, as in the CLI."""

from __future__ import annotations

import math

from rich.text import Text

from mlyard.core import humanize
from mlyard.core.humanize import duration, number

__all__ = ["downsample", "duration", "number", "plain", "sparkline", "status", "when"]

BARS = "▁▂▃▄▅▆▇█"
STATUS_STYLE = {"running": "bold cyan", "finished": "green", "failed": "red",
                "crashed": "bold red", "succeeded": "green", "skipped": "yellow",
                "succeeded with refusals": "yellow", "pruned": "dim"}


def when(ts: float | None) -> str:
    """Month, day and time: screens are narrow and runs are recent."""
    return humanize.when(ts, short=True)


def plain(value: object) -> Text:
    """The user's text as it is: never read as markup (`[/]` in a run name stays `[/]`),
    control characters shown as `\\x1b` rather than sent to the terminal."""
    return Text(humanize.visible(str(value)))


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def sparkline(counts: list[int] | list[float]) -> str:
    """One character per value, scaled to the largest."""
    if not counts:
        return ""
    top = max(counts) or 1
    return "".join(BARS[min(len(BARS) - 1, int(c / top * (len(BARS) - 1)))] for c in counts)


def downsample(points: list[tuple[int, float | None]],
               width: int) -> list[tuple[int, float]]:
    """At most about 2x `width` points, evenly spaced, always keeping the last one, so
    plotting (on the UI thread) stays fast whatever the run length."""
    usable = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
    limit = max(2, 2 * width)
    if len(usable) <= limit:
        return usable
    step = len(usable) / limit
    picked = [usable[int(i * step)] for i in range(limit)]
    if picked[-1] != usable[-1]:
        picked[-1] = usable[-1]
    return picked
