"""The schema contract: inferred from the first data, then enforced on every file.

Enforcement parses each column from its text with the contract's type and refuses the
file when a value does not fit, instead of letting it become null, NaN, a new category
or a new feature. Coercions that keep the meaning (a thousands separator, a `NaN` token
for missing) are applied and reported as warnings.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from core.config import ColumnContract, DataConfig
from core.errors import IngestRefused
from core.reader import collect
from core.sniff import SniffResult

MISSING_TOKENS = ["NA", "N/A", "null", "NULL", "None", "nan", "NaN", "NAN"]
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]
MAX_CATEGORIES = 50
NULL_RATE_MARGIN = 0.05
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"

POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean(), "category": pl.String(),
    "string": pl.String(), "date": pl.Date(), "datetime": pl.Datetime("us"),
}


@dataclass
class Validated:
    """A file that passed: its cleaned lazy frame and what was noticed on the way."""

    frame: pl.LazyFrame
    rows_in: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Parsed:
    typed: pl.Expr
    failed: pl.Expr
    expected: str
    notes: dict[str, pl.Expr] = field(default_factory=dict)  # warning text -> row mask


def infer_contract(
    frame: pl.LazyFrame, data: DataConfig, sniffed: SniffResult
) -> dict[str, ColumnContract]:
    """A contract that the given data satisfies, with room for ordinary variation."""
    schema = frame.collect_schema()
    aggregations: list[pl.Expr] = [pl.len().alias("__rows")]
    for name, dtype in schema.items():
        aggregations.append(pl.col(name).null_count().alias(f"{name}\x00nulls"))
        if dtype == pl.String:
            aggregations.append(pl.col(name).n_unique().alias(f"{name}\x00unique"))
        if dtype.is_numeric():
            aggregations.append(pl.col(name).min().cast(pl.Float64).alias(f"{name}\x00min"))
    stats = collect(frame.select(aggregations), sniffed).row(0, named=True)
    rows = max(1, int(stats["__rows"]))
    strict_columns = {data.id_column, data.target, data.time_column}
    contract: dict[str, ColumnContract] = {}
    for name, dtype in schema.items():
        kind = _kind_of(name, dtype, stats, rows, data)
        null_rate = stats[f"{name}\x00nulls"] / rows
        allowed = null_rate if name in strict_columns else min(1.0, null_rate + NULL_RATE_MARGIN)
        column = ColumnContract(type=kind, max_null_rate=math.ceil(allowed * 100) / 100)
        if kind == "category":
            values = collect(frame.select(pl.col(name).drop_nulls().unique().sort()), sniffed)
            column.categories = [str(v) for v in values.to_series()]
        observed_min = stats.get(f"{name}\x00min")
        if kind in {"int", "float"} and observed_min is not None and observed_min >= 0:
            column.min = 0.0
        contract[name] = column
    return contract


def _kind_of(name: str, dtype: pl.DataType, stats: dict[str, object], rows: int,
             data: DataConfig) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    unique = int(stats.get(f"{name}\x00unique") or 0)
    is_role = name in {data.id_column, data.time_column}
    if not is_role and unique <= MAX_CATEGORIES and (unique <= rows // 2 or name == data.target):
        return "category"
    return "string"


def validate(
    frame: pl.LazyFrame,
    file_columns: list[str],
    contract: dict[str, ColumnContract],
    data: DataConfig,
    sniffed: SniffResult,
) -> Validated:
    """Check a text-typed frame against the contract; return the cleaned frame or refuse."""
    path = sniffed.path
    warnings = _check_columns(path, file_columns, contract)
    parsed = {name: _parse(name, column, data) for name, column in contract.items()}
    aggregations: list[pl.Expr] = [pl.len().alias("__rows")]
    for name, column in contract.items():
        item = parsed[name]
        aggregations.append(item.failed.sum().alias(f"{name}\x00failed"))
        aggregations.append(item.typed.null_count().alias(f"{name}\x00nulls"))
        for index, mask in enumerate(item.notes.values()):
            aggregations.append(mask.sum().alias(f"{name}\x00note{index}"))
        if column.min is not None:
            aggregations.append((item.typed < column.min).sum().alias(f"{name}\x00below"))
        if column.max is not None:
            aggregations.append((item.typed > column.max).sum().alias(f"{name}\x00above"))
    if data.id_column and data.dedupe and data.id_column in contract:
        aggregations.append(parsed[data.id_column].typed.n_unique().alias("__ids"))
    stats = collect(frame.select(aggregations), sniffed).row(0, named=True)
    rows = int(stats["__rows"])
    for name, column in contract.items():
        item = parsed[name]
        if stats[f"{name}\x00failed"]:
            raise IngestRefused(_failure_message(frame, name, item, column, stats, sniffed))
        for index, text in enumerate(item.notes):
            count = stats[f"{name}\x00note{index}"]
            if count:
                warnings.append(f"column {name!r}: {count} {text}")
        _check_bounds(frame, name, item, column, stats, sniffed)
        nulls = stats[f"{name}\x00nulls"]
        if nulls / max(rows, 1) > column.max_null_rate + 1e-12:
            raise IngestRefused(
                f"{path}: column {name!r} is {nulls / rows:.1%} missing ({nulls} of {rows} rows);"
                f" the contract allows at most {column.max_null_rate:.0%}"
            )
    cleaned = frame.select([parsed[name].typed.alias(name) for name in contract])
    if "__ids" in stats and stats["__ids"] < rows:
        repeats = rows - int(stats["__ids"])
        warnings.append(f"{repeats} rows repeated an {data.id_column!r} seen earlier in the file;"
                        " kept the last row for each id")
        cleaned = cleaned.unique(subset=[data.id_column], keep="last", maintain_order=True)
    if rows == 1:
        warnings.append("has a single data row")
    return Validated(cleaned, rows, warnings)


def _check_columns(path: Path, file_columns: list[str],
                   contract: dict[str, ColumnContract]) -> list[str]:
    expected = list(contract)
    missing = [c for c in expected if c not in file_columns]
    extra = [c for c in file_columns if c not in contract]
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, extra, n=1, cutoff=0.5)
            hints.append(f"{name!r} (renamed to {close[0]!r}?)" if close else repr(name))
        raise IngestRefused(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(hints)}; the contract expects {len(expected)} columns")
    warnings = []
    if extra:
        warnings.append(f"extra column{'s' if len(extra) > 1 else ''} "
                        f"{', '.join(map(repr, extra))} not in the contract: left out of the "
                        "dataset version and never used as features")
    if [c for c in file_columns if c in contract] != expected:
        warnings.append("columns are in a different order than the contract; reordered")
    return warnings


def _parse(name: str, column: ColumnContract, data: DataConfig) -> _Parsed:
    raw = pl.col(name)
    text = raw.str.strip_chars()
    present = text.is_not_null() & (text != "")
    if column.type in {"int", "float"}:
        return _parse_number(text, present, column)
    if column.type == "bool":
        lower = text.str.to_lowercase()
        typed = pl.when(lower.is_in(TRUE_WORDS)).then(True).when(lower.is_in(FALSE_WORDS)) \
            .then(False).otherwise(None)
        return _Parsed(typed, present & typed.is_null(), "true/false, yes/no or 1/0")
    if column.type == "category":
        allowed = column.categories or []
        typed = pl.when(present).then(raw).otherwise(None)
        return _Parsed(typed, present & ~raw.is_in(allowed),
                       f"one of the contract's categories ({_preview(allowed)})")
    if column.type == "date":
        typed = text.str.to_date(format=data.time_format, strict=False)
        return _Parsed(typed, present & typed.is_null(), "a date" + _fmt(data.time_format))
    if column.type == "datetime":
        typed = text.str.to_datetime(format=data.time_format, strict=False, time_unit="us")
        return _Parsed(typed, present & typed.is_null(), "a date-time" + _fmt(data.time_format))
    return _Parsed(pl.when(present).then(raw).otherwise(None), pl.lit(False), "text")


def _parse_number(text: pl.Expr, present: pl.Expr, column: ColumnContract) -> _Parsed:
    token = text.is_in(MISSING_TOKENS)
    plain = text.cast(pl.Float64, strict=False)
    grouped = pl.when(text.str.contains(_THOUSANDS)) \
        .then(text.str.replace_all(",", "").cast(pl.Float64, strict=False))
    number = pl.when(token).then(None).otherwise(pl.coalesce(plain, grouped))
    failed = present & ~token & number.is_null()
    infinite = number.is_infinite()
    notes = {
        "values written with thousands separators (like '1,234') read as numbers":
            plain.is_null() & grouped.is_not_null(),
        "'NaN'/'NA'-style values read as missing": present & token,
    }
    if column.type == "float":
        return _Parsed(number, failed | infinite, "a finite number", notes)
    # Whole numbers parse directly so values beyond 2**53 keep every digit; the float
    # route only serves spellings like "3.0" or "1,234".
    direct = text.cast(pl.Int64, strict=False)
    typed = pl.when(token).then(None).otherwise(
        pl.coalesce(direct, pl.when(number == number.floor()).then(number.cast(pl.Int64,
                                                                               strict=False))))
    return _Parsed(typed, present & ~token & typed.is_null(), "a whole number", notes)


def _failure_message(frame: pl.LazyFrame, name: str, item: _Parsed, column: ColumnContract,
                     stats: dict[str, object], sniffed: SniffResult) -> str:
    count = stats[f"{name}\x00failed"]
    examples = collect(
        frame.with_row_index("__row", offset=1).filter(item.failed)
        .select("__row", pl.col(name)).head(3),
        sniffed,
    )
    shown = ", ".join(f"row {row}: {value!r}" for row, value in examples.iter_rows())
    hint = ""
    if column.type == "category":
        found = collect(frame.filter(item.failed).select(pl.col(name).unique().sort().head(5)),
                        sniffed).to_series().to_list()
        hint = f"; found {_preview([str(v) for v in found])}"
        if _looks_recoded(found, column.categories or []):
            hint += " - were the categories recoded?"
    return (f"{sniffed.path}: column {name!r} (contract type {column.type}) has {count} "
            f"value{'s' if count != 1 else ''} that {'is' if count == 1 else 'are'} not "
            f"{item.expected}: {shown}{hint}")


def _check_bounds(frame: pl.LazyFrame, name: str, item: _Parsed, column: ColumnContract,
                  stats: dict[str, object], sniffed: SniffResult) -> None:
    for side, limit, mask in (("below", column.min, item.typed < (column.min or 0)),
                              ("above", column.max, item.typed > (column.max or 0))):
        count = stats.get(f"{name}\x00{side}")
        if not count:
            continue
        example = collect(frame.with_row_index("__row", offset=1).filter(mask)
                          .select("__row", pl.col(name)).head(1), sniffed).row(0)
        raise IngestRefused(
            f"{sniffed.path}: column {name!r} has {count} value{'s' if count != 1 else ''} "
            f"{side} the contract's {'min' if side == 'below' else 'max'} {limit:g} "
            f"(row {example[0]}: {example[1]!r})"
        )


def _looks_recoded(found: list[object], categories: list[str]) -> bool:
    return {str(v) for v in found} <= {"0", "1", "True", "False", "true", "false"} and \
        len(categories) == 2


def _preview(values: list[str], limit: int = 6) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _fmt(time_format: str | None) -> str:
    return f" in format {time_format!r}" if time_format else ""
