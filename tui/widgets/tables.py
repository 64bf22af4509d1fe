"""Filling a DataTable in one step, with column widths set from the content.

DataTable otherwise sizes auto-width columns on a later idle tick, so a frame drawn in
between shows columns cut to their headers; fixed widths make every frame complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

MAX_WIDTH = 40


def fill(table: DataTable[Any], columns: Sequence[str], rows: Sequence[Sequence[Any]],
         keys: Sequence[str] | None = None, column_keys: Sequence[str] | None = None) -> None:
    """Replace the table's columns and rows; `keys` name the rows, `column_keys` columns."""
    table.clear(columns=True)
    for index, label in enumerate(columns):
        width = max([len(label), *(_width(row[index]) for row in rows)])
        table.add_column(label, width=min(width, MAX_WIDTH),
                         key=column_keys[index] if column_keys else None)
    for index, row in enumerate(rows):
        table.add_row(*row, key=keys[index] if keys else None)


def _width(cell: Any) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(str(cell))
