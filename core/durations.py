"""Intervals as people write them (`90s`, `15m`, `6h`, `1d`), shared by schedules and the
monitoring windows."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    """`90s`, `15m`, `6h`, `1d` -> seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"interval {text!r}: expected a number and a unit, like 90s, "
                         "15m, 6h or 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def describe_seconds(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{int(seconds // _UNIT_SECONDS[unit])}{unit}"
    return f"{seconds:g}s"
