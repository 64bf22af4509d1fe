"""Small text helpers shared by the screens: statuses, sparklines, downsampling.

Numbers, times and durations come from core.humanize, as in the CLI."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from mlyard.core import humanize
from mlyard.core.humanize import duration, number
from mlyard.core.monitoring.shadow_report import ShadowComparison

__all__ = ["coloured_status", "downsample", "duration", "number", "plain", "shadow_summary",
           "sparkline", "when"]

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


def coloured_status(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def sparkline(counts: list[int] | list[float]) -> str:
    """One character per value, scaled to the largest."""
    if not counts:
        return ""
    top = max(counts) or 1
    return "".join(BARS[min(len(BARS) - 1, int(c / top * (len(BARS) - 1)))] for c in counts)


def downsample(points: Sequence[tuple[int, float | None]],
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


def shadow_summary(pair: ShadowComparison) -> Text:
    """A shadow against its champion in a few lines, for the Serving and Models screens
    (`mlyard shadow report` has the whole table)."""
    lines = Text()
    lines.append(f"champion v{pair.champion_version} vs shadow v{pair.shadow_version}",
                 style="bold")
    lines.append(f": {pair.requests:,} requests, last {when(pair.last)}")
    if pair.failed:
        lines.append(f"\nshadow could not score {pair.failed:,}: ", style="red")
        lines.append(humanize.visible(pair.first_error or ""))
    if pair.rows:
        delta = "|Δ|" if pair.task == "regression" else "|Δp|"
        agreed = f"{pair.same_label:.1%} same label, " if pair.same_label is not None else ""
        lines.append(f"\nagreement: {agreed}mean {delta} {number(pair.mean_abs_diff)}")
    ours, theirs = pair.champion_ms.get("p99"), pair.shadow_ms.get("p99")
    lines.append(f"\nscoring p99: {number(ours)} ms vs {number(theirs)} ms")
    live = pair.live
    if live is None:
        lines.append("\nlive metric: no labels yet (mlyard feedback)", style="dim")
    else:
        worse = live.difference.value
        lines.append(f"\nlive {live.metric} on {live.rows:,} rows: "
                     f"{number(live.champion.value)} vs {number(live.shadow.value)} ")
        lines.append(f"(shadow {'worse' if worse > 0 else 'better'} by {number(abs(worse))}, "
                     f"95% {number(live.difference.low)} to {number(live.difference.high)})",
                     style="red" if live.difference.low > 0 else
                     "green" if live.difference.high < 0 else "")
    return lines
