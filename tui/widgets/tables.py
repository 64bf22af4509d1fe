"""Filling a DataTable in one step, with column widths set from the content.

DataTable otherwise sizes auto-width columns on a later idle tick, so a frame drawn in
between shows columns cut to their headers; fixed widths make every frame complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable

from mlyard.tui.format import plain

MAX_WIDTH = 40


def fill(table: DataTable[Any], columns: Sequence[str], rows: Sequence[Sequence[Any]],
         keys: Sequence[str] | None = None, column_keys: Sequence[str] | None = None) -> None:
    """Replace the table's columns and rows; `keys` name the rows, `column_keys` columns.
    Strings are shown as they are, never read as markup."""
    table.clear(columns=True)
    for index, label in enumerate(columns):
        width = max([len(label), *(_width(row[index]) for row in rows)])
        table.add_column(plain(label), width=min(width, MAX_WIDTH),
                         key=column_keys[index] if column_keys else None)
    for index, row in enumerate(rows):
        table.add_row(*(as_text(cell) for cell in row), key=keys[index] if keys else None)


def as_text(cell: Any) -> Any:
    """A string cell as plain text; numbers and styled `Text` as they are."""
    return plain(cell) if isinstance(cell, str) else cell


class PlainTable(Table):
    """A rich Table whose string headers and cells are the user's text, never markup."""

    def add_column(self, header: Any = "", *args: Any, **kwargs: Any) -> None:
        super().add_column(as_text(header), *args, **kwargs)

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*(as_text(cell) for cell in cells), **kwargs)


def _width(cell: Any) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(str(cell))
