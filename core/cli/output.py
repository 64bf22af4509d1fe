"""Printing results for people (rich tables) and for scripts (strict JSON)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlyard.core.humanize import duration, number, visible, when
from mlyard.core.tracking.segments import MIN_ROWS as MIN_SEGMENT_ROWS
from mlyard.core.tracking.segments import SegmentFigures

__all__ = ["bold", "duration", "fmt", "jsonable", "print_json", "print_table", "when"]

class _UserTextConsole(Console):
    """Every string printed is the user's text (run names, params, tags, file and column
    names): no markup, so `[/]` prints as `[/]`, and control characters shown as `\\x1b`
    rather than sent to the terminal. Emphasis is a `Text` with a style."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)


stdout = _UserTextConsole(highlight=False, soft_wrap=True, markup=False)
stderr = _UserTextConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _terminal_width() -> int:
    """COLUMNS as it is now (rich reads it once, when the console is made), else the
    terminal's width."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else stdout.width


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
    if isinstance(value, msgspec.Struct):  # as msgspec writes it (arrays, omitted defaults)
        return jsonable(msgspec.to_builtins(value, enc_hook=str))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def print_json(value: Any) -> None:
    plain = jsonable(value)
    try:  # orjson: 0.01 s for 10,000 runs where the json module's indenting took 0.2 s
        text = orjson.dumps(plain, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits, which only json writes
        text = json.dumps(plain, indent=2, allow_nan=False)
    sys.stdout.write(text + "\n")


# Columns of sentences (an error, a reason): wrapped rather than cut, since the end of the
# sentence is often the part that says what to do.
PROSE = {"detail", "error", "reason", "what", "change", "range or levels", "value", "outcome"}
PROSE_WIDTH = 16  # what a wrapped column is counted as when fitting the others


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
                drop_first: Sequence[str] = ()) -> None:
    """A table that fits the terminal: when it is too narrow, whole columns go (those in
    `drop_first` first, then from the right, never the first) and a line says which; a
    cell still too wide ends in an ellipsis, except in PROSE columns, which wrap. A wider
    terminal shows more."""
    # The user's text as text: control characters shown, never sent (see _UserTextConsole).
    cells = [[v if isinstance(v, Text) else Text(visible(fmt(v))) for v in row] for row in rows]
    widths = [max([len(name), *(row[i].cell_len for row in cells)])
              for i, name in enumerate(columns)]
    widths = [min(w, PROSE_WIDTH) if columns[i] in PROSE else w for i, w in enumerate(widths)]
    order = [columns.index(c) for c in drop_first if c in columns]
    order += [i for i in reversed(range(1, len(columns)))
              if i not in order and columns[i] not in PROSE]  # sentences wrap instead
    shown = list(range(len(columns)))
    for index in order:
        if sum(widths[i] for i in shown) + 3 * len(shown) - 1 <= _terminal_width():
            break
        shown.remove(index)
    table = Table(title=title, show_edge=False, header_style="bold")
    for i in shown:
        prose = columns[i] in PROSE
        table.add_column(columns[i], no_wrap=not prose,
                         overflow="fold" if prose else "ellipsis")
    for row in cells:
        table.add_row(*(row[i] for i in shown))
    stdout.width = _terminal_width()  # rich keeps the width it first saw; this is now's
    stdout.print(table)
    hidden = [columns[i] for i in range(len(columns)) if i not in shown]
    if hidden:
        stdout.print(f"({len(hidden)} more column{'s' if len(hidden) > 1 else ''} in a wider "
                     f"terminal or with --json: {', '.join(hidden)})", style="dim",
                     soft_wrap=False)


fmt = number


def print_segments(figures: SegmentFigures, shown: int = 12) -> None:
    """A model's figures per group, worst first, with the rows each stands on, and the
    fairness figures of sensitive segments."""
    metric = figures.metric
    rates = ["selection_rate", "true_positive_rate", "false_positive_rate"]
    binary = any("selection_rate" in g.metrics for g in figures.groups)
    extra = rates if binary else []
    rows = []
    for group in figures.groups[:shown]:
        if group.too_few:
            rows.append([group.segment, group.group, f"{group.rows:,}",
                         f"too few rows (fewer than {MIN_SEGMENT_ROWS})", *["" for _ in extra]])
        else:
            rows.append([group.segment, group.group, f"{group.rows:,}",
                         *[_figure(group.metrics.get(name)) for name in [metric, *extra]]])
    more = len(figures.groups) - shown
    print_table(["segment", "group", "rows", metric, *[r.replace("_", " ") for r in extra]],
                rows, title="by segment, worst first"
                + (f" ({more} more in --json)" if more > 0 else ""))
    if figures.fairness:
        print_table(["sensitive segment", "groups", "rows", f"{metric} gap",
                     "demographic parity diff / ratio", "equalized odds diff / ratio"],
                    [[f.segment, f.groups, f"{f.rows:,}", _figure(f.metric_gap),
                      f"{_figure(f.demographic_parity_difference)} / "
                      f"{_figure(f.demographic_parity_ratio)}",
                      f"{_figure(f.equalized_odds_difference)} / "
                      f"{_figure(f.equalized_odds_ratio)}"]
                     for f in figures.fairness], title="fairness")
    for note in figures.notes:
        stdout.print(f"note: {note}", markup=False)


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return "n/a" if math.isnan(value) else f"{value:.4g}"
