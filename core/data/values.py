"""One way to read a value as a column's type, shared by ingest, `mlyard predict` and the
server, so a file the contract accepts is a file the model scores, row for row.

The rules (docs/data.md, "How values are read"):
- Missing: an empty or blank cell, JSON null, a float NaN, or one of MISSING_TOKENS in a
  number column. Text columns keep "NA" as text: it may be a real level.
- Numbers: plain (`3`, `-2.5`, `1e3`) or with thousands separators (`1,234`); infinity is
  refused. An `int` column takes whole numbers in any spelling (`7`, `7.0`, `"7"`,
  `1,000`) and refuses fractions (`9.7`) and booleans.
- Booleans: true/false, yes/no, t/f, y/n, 1/0, in any case.
- Dates: the contract's pinned `format` only, else ISO 8601 (`2024-03-01`,
  `2024-03-01 10:00[:00[.123]]`, with a `T` or a space). A file in another format is
  refused, never reinterpreted (07/01/2012 is not silently the 7th of January).
- Input that is already typed (Parquet columns, JSON numbers) takes the same rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

MISSING_TOKENS = ["NA", "N/A", "null", "NULL", "None", "nan", "NaN", "NAN"]
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]
# The ways a boolean column is spelt, by name: a source that changes from one to another
# still reads the same values, but it has changed its encoding and a person should know.
SPELLINGS = {f"{yes}/{no}": (yes, no) for yes, no in zip(TRUE_WORDS, FALSE_WORDS, strict=True)}
ISO_DATE = "%Y-%m-%d"
ISO_DATETIMES = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M",
                 "%Y-%m-%d %H:%M"]
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"
# Day and month swapped: a file whose days are all 12 or less fits both.
_MONTH_FIRST = {"%m/%d/%Y": "%d/%m/%Y", "%m-%d-%Y": "%d-%m-%Y", "%m.%d.%Y": "%d.%m.%Y",
                "%m/%d/%Y %H:%M:%S": "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M": "%d/%m/%Y %H:%M"}
SWAPPED = {**_MONTH_FIRST, **{v: k for k, v in _MONTH_FIRST.items()}}
_THOUSANDS_NOTE = "values written with thousands separators (like '1,234') read as numbers"
_TOKEN_NOTE = "'NaN'/'NA'-style values read as missing"


@dataclass
class Parsed:
    """A column's typed values and which cells are missing; a cell that is neither
    missing nor typed is a value that does not fit."""

    typed: pl.Expr
    missing: pl.Expr
    expected: str
    notes: dict[str, pl.Expr] = field(default_factory=dict)  # warning text -> row mask
    # Working columns the expressions above read (name -> expression on the raw column),
    # to be computed first; empty unless asked for with `staged`.
    work: dict[str, pl.Expr] = field(default_factory=dict)

    def failed(self, typed: pl.Expr | None = None) -> pl.Expr:
        """Rows with a value that does not fit; pass `typed` when it is already computed
        (a column), so the parse is not done twice."""
        return ~self.missing & (self.typed if typed is None else typed).is_null()


def parse_column(name: str, kind: str, dtype: pl.DataType, *, time_format: str | None = None,
                 levels: list[str] | None = None, closed: bool = False,
                 staged: bool = False) -> Parsed:
    """How column `name`, arriving as `dtype`, becomes `kind`.

    `levels` with `closed` makes any other category value a failure; open categories
    accept new levels (the caller counts them). With `staged`, a number read from text
    is cleaned and read once into working columns (`Parsed.work`) that the other
    expressions use: polars evaluates a repeated sub-expression each time it appears,
    and the number's appeared six times, most of a small file's check.
    """
    raw = pl.col(name)
    if kind in {"int", "float"}:
        return _number(raw, kind, dtype, f"{name}\x00" if staged else None)
    if kind == "bool":
        return _boolean(raw, dtype)
    if kind in {"date", "datetime"}:
        return _temporal(raw, kind, dtype, time_format)
    text = raw if dtype == pl.String else raw.cast(pl.String)
    blank = text.str.strip_chars().fill_null("") == ""
    if kind == "category" and closed:
        allowed = levels or []
        return Parsed(pl.when(~blank & text.is_in(allowed)).then(text), blank,
                      f"one of the contract's categories ({preview(allowed)})")
    return Parsed(pl.when(~blank).then(text), blank, "text")


def plain_numbers(values: pl.Series, kind: str) -> pl.Series | None:
    """Text that is all plain numbers of `kind` ("int" or "float"), read by one cast:
    what `parse_column` makes of it (its first reading is this cast), for a tenth of
    the time; None when any value needs the rules (a token, a grouped or non-finite
    number, "3.0" for an int), which the caller then applies."""
    if values.dtype != pl.String or kind not in {"int", "float"}:
        return None
    typed = values.cast(pl.Int64 if kind == "int" else pl.Float64, strict=False)
    if typed.null_count() != values.null_count() or (
            kind == "float" and not typed.drop_nulls().is_finite().all()):
        return None
    return typed


def _number(raw: pl.Expr, kind: str, dtype: pl.DataType, prefix: str | None) -> Parsed:
    expected = "a finite number" if kind == "float" else "a whole number"
    if dtype.is_numeric():
        number = raw.cast(pl.Float64)
        missing = raw.is_null() | number.is_nan()
        if kind == "float":
            return Parsed(pl.when(number.is_finite()).then(number), missing, expected)
        if dtype.is_integer():
            return Parsed(raw.cast(pl.Int64, strict=False), missing, expected)
        whole = number.is_finite() & (number == number.floor())
        return Parsed(pl.when(whole).then(number.cast(pl.Int64, strict=False)), missing,
                      expected)
    text = (raw if dtype == pl.String else raw.cast(pl.String)).str.strip_chars()
    grouped = pl.when(text.str.contains(_THOUSANDS)) \
        .then(text.str.replace_all(",", "").cast(pl.Float64, strict=False))
    number = pl.coalesce(text.cast(pl.Float64, strict=False), grouped)
    work = {} if prefix is None else {f"{prefix}text": text, f"{prefix}number": number}
    if work:
        text, number = (pl.col(name) for name in work)
    blank = text.fill_null("") == ""
    token = text.is_in(MISSING_TOKENS)
    plain = text.cast(pl.Float64, strict=False)
    notes = {_THOUSANDS_NOTE: plain.is_null() & number.is_not_null(),
             _TOKEN_NOTE: ~blank & token}
    if kind == "float":
        return Parsed(pl.when(~token & number.is_finite()).then(number), blank | token,
                      expected, notes, work)
    # Whole numbers parse directly so values beyond 2**53 keep every digit; the float
    # route only serves spellings like "3.0" or "1,234".
    whole = pl.when(number.is_finite() & (number == number.floor())) \
        .then(number.cast(pl.Int64, strict=False))
    typed = pl.when(~token).then(pl.coalesce(text.cast(pl.Int64, strict=False), whole))
    return Parsed(typed, blank | token, expected, notes, work)


def _boolean(raw: pl.Expr, dtype: pl.DataType) -> Parsed:
    expected = "true/false, yes/no or 1/0"
    if dtype == pl.Boolean:
        return Parsed(raw, raw.is_null(), expected)
    if dtype.is_numeric():
        typed = pl.when(raw == 1).then(True).when(raw == 0).then(False)
        return Parsed(typed, raw.is_null() | raw.cast(pl.Float64).is_nan(), expected)
    text = (raw if dtype == pl.String else raw.cast(pl.String)).str.strip_chars()
    lower = text.str.to_lowercase()
    typed = pl.when(lower.is_in(TRUE_WORDS)).then(True) \
        .when(lower.is_in(FALSE_WORDS)).then(False)
    return Parsed(typed, text.fill_null("") == "", expected)


def _temporal(raw: pl.Expr, kind: str, dtype: pl.DataType, time_format: str | None) -> Parsed:
    what = "a date" if kind == "date" else "a date-time"
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        typed = raw.cast(pl.Date) if kind == "date" else raw.cast(pl.Datetime("us"))
        return Parsed(typed, raw.is_null(), what)
    text = (raw if dtype == pl.String else raw.cast(pl.String)).str.strip_chars()
    if kind == "date":
        typed = text.str.to_date(format=time_format or ISO_DATE, strict=False)
        expected = f"{what} in format {time_format or ISO_DATE!r}"
    else:
        formats = [time_format] if time_format else ISO_DATETIMES
        typed = pl.coalesce([text.str.to_datetime(format=f, strict=False, time_unit="us")
                             for f in formats])
        expected = f"{what} in format {time_format!r}" if time_format else \
            f"{what} in ISO 8601 format (like '2024-03-01 10:00:00')"
    return Parsed(typed, text.fill_null("") == "", expected)


def parse_time(name: str, kind: str, time_format: str) -> pl.Expr:
    """Text read with exactly `time_format` (null where it does not fit)."""
    text = pl.col(name).str.strip_chars()
    if kind == "date":
        return text.str.to_date(format=time_format, strict=False)
    return text.str.to_datetime(format=time_format, strict=False, time_unit="us")


def preview(values: list[str], limit: int = 6) -> str:
    """The first few values quoted, with the total when there are more."""
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


# The same rules for one Python value at a time (a JSON scalar), for the server's small
# requests: a polars query costs about a millisecond whatever its size, a request of a
# few rows a few microseconds this way. tests/test_values_scalar.py holds the two equal
# on generated values of every kind.
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")
_THOUSANDS_RE = re.compile(_THOUSANDS)
_TRUE, _FALSE = set(TRUE_WORDS), set(FALSE_WORDS)
MISSING = object()  # a value read as missing
FAILED = object()  # a value that does not fit

ScalarReader = Callable[[Any], Any]  # value -> typed value, MISSING or FAILED


def scalar_reader(kind: str, levels: list[str] | None = None,
                  closed: bool = False) -> ScalarReader | None:
    """How one JSON value becomes `kind` (int, float, bool, category); None for kinds
    only the column path reads (dates, text)."""
    if kind in {"int", "float"}:
        return lambda value: _scalar_number(value, kind == "int")
    if kind == "bool":
        return _scalar_bool
    if kind == "category":
        allowed = set(levels or []) if closed else None
        return lambda value: _scalar_category(value, allowed)
    return None


def _scalar_number(value: Any, whole: bool) -> Any:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return FAILED
    if isinstance(value, int):
        return _int64(value) if whole else float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if math.isinf(value) or (whole and value != math.floor(value)):
            return FAILED
        return _int64(int(value)) if whole else value
    text = str(value).strip()
    if text == "" or text in MISSING_TOKENS:
        return MISSING
    if whole and _WHOLE_NUMBER.match(text) and _int64(int(text)) is not FAILED:
        return int(text)
    if _PLAIN_NUMBER.match(text):
        number = float(text)
    elif _THOUSANDS_RE.match(text):
        number = float(text.replace(",", ""))
    else:
        return FAILED
    if math.isinf(number) or (whole and number != math.floor(number)):
        return FAILED
    return _int64(int(number)) if whole else number


def _int64(number: int) -> Any:
    return number if -2**63 <= number < 2**63 else FAILED


def _scalar_bool(value: Any) -> Any:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return MISSING
        return True if value == 1 else False if value == 0 else FAILED
    text = str(value).strip().lower()
    if text == "":
        return MISSING
    return True if text in _TRUE else False if text in _FALSE else FAILED


def _scalar_category(value: Any, allowed: set[str] | None) -> Any:
    if value is None:
        return MISSING
    text = value if isinstance(value, str) else json_text(value)
    if text.strip() == "":
        return MISSING
    if allowed is not None and text not in allowed:
        return FAILED
    return text


def json_text(value: Any) -> str:
    """A JSON scalar as the text a CSV cell would hold (the column path's cast)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return str(pl.Series([value]).cast(pl.String).item())  # polars' digits, not repr's
    return str(value)
