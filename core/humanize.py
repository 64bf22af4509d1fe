"""Short human forms of numbers, times and changes, shared by the CLI and the UI."""

from __future__ import annotations

import math
import time


def number(value: object) -> str:
    """Floats to 4 significant digits, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """"1 entry", "2 entries": a count with its noun in the right number."""
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


def size(count: int) -> str:
    """Bytes as people read them: 0 B, 512 B, 3.4 MB, 1.2 GB."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def when(ts: float | None, short: bool = False) -> str:
    pattern = "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M"
    return "-" if ts is None else time.strftime(pattern, time.localtime(ts))


def duration(start: float, end: float | None) -> str:
    if end is None:
        return "-"
    seconds = max(0.0, end - start)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))
            if c not in (0x09, 0x0A)}


def visible(text: str) -> str:
    """`text` with control characters shown as `\\x1b` and the like: a name holding an
    ANSI escape must not recolour or clear the user's terminal."""
    return text.translate(_CONTROL)
