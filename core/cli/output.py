"""Printing results for people (rich tables) and for scripts (strict JSON)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlyard.core.humanize import duration, number, visible, when

__all__ = ["bold", "duration", "fmt", "jsonable", "print_json", "print_table", "when"]

class _UserTextConsole(Console):
    """Every string printed is the user's text (run names, params, tags, file and column
    names): no markup, so `[/]` prints as `[/]`, and control characters shown as `\\x1b`
    rather than sent to the terminal. Emphasis is a `Text` with a style."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)


stdout = _UserTextConsole(highlight=False, soft_wrap=True, markup=False)
stderr = _UserTextConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


def bold(text: str) -> Text:
    return Text(text, style="bold")


def jsonable(value: Any) -> Any:
    """Plain JSON values; NaN and infinities become the strings "NaN", "Infinity", "-Infinity"
    because strict JSON has no literal for them."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
                ) -> None:
    table = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(v if isinstance(v, Text) else fmt(v) for v in row))
    stdout.print(table)


fmt = number
