"""Small text helpers shared by the screens: numbers, statuses, sparklines."""

from __future__ import annotations

import math
import time

from rich.text import Text

BARS = "▁▂▃▄▅▆▇█"
STATUS_STYLE = {"running": "bold cyan", "finished": "green", "failed": "red",
                "crashed": "bold red"}


def number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}"
    return str(value)


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%m-%d %H:%M", time.localtime(ts))


def duration(start: float, end: float | None) -> str:
    if end is None:
        return "-"
    seconds = max(0.0, end - start)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


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
