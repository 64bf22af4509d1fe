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
from typing import Any

import msgspec
import polars as pl

from mlyard.core.config import ColumnContract, ColumnType, DataConfig
from mlyard.core.data.reader import collect
from mlyard.core.data.sniff import SniffResult
from mlyard.core.errors import IngestRefused

MISSING_TOKENS = ["NA", "N/A", "null", "NULL", "None", "nan", "NaN", "NAN"]
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]
MAX_CATEGORIES = 50
NULL_RATE_MARGIN = 0.05
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"

@dataclass
class _Parsed:
    typed: pl.Expr
    failed: pl.Expr
    expected: str
    notes: dict[str, pl.Expr] = field(default_factory=dict)  # warning text -> row mask


def contract_from_json(text: str) -> dict[str, ColumnContract]:
    return msgspec.json.decode(text, type=dict[str, ColumnContract])


def contract_to_json(contract: dict[str, ColumnContract]) -> str:
    return msgspec.json.encode(contract).decode()


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


def _kind_of(name: str, dtype: pl.DataType, stats: dict[str, Any], rows: int,
             data: DataConfig) -> ColumnType:
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
    few = 0 < unique <= MAX_CATEGORIES and (unique <= rows // 2 or name == data.target)
    if few and not is_role:
        return "category"
    return "string"


class ContractChecker:
    """Checks a file batch by batch and turns each batch into typed, cleaned columns.

    Working in batches keeps memory flat whatever the file's size. A value that does not
    fit refuses the file at the first batch that has one; the missing-value bound can
    only be judged on the whole file, in `finish`.
    """

    def __init__(self, contract: dict[str, ColumnContract], data: DataConfig,
                 sniffed: SniffResult, file_columns: list[str]) -> None:
        self.contract = contract
        self.sniffed = sniffed
        self.warnings = _check_columns(sniffed.path, file_columns, contract)
        self.rows = 0
        self._parsed = {name: _parse(name, column, data) for name, column in contract.items()}
        self._typed = [item.typed.alias(name) for name, item in self._parsed.items()]
        self._nulls = dict.fromkeys(contract, 0)
        self._notes: dict[tuple[str, str], int] = {}
        self._aggregations: list[pl.Expr] = []
        for name, column in contract.items():
            item = self._parsed[name]
            self._aggregations += [item.failed.sum().alias(f"{name}\x00failed"),
                                   item.typed.null_count().alias(f"{name}\x00nulls")]
            self._aggregations += [mask.sum().alias(f"{name}\x00{text}")
                                   for text, mask in item.notes.items()]
            if column.min is not None:
                self._aggregations.append((item.typed < column.min).sum().alias(f"{name}\x00below"))
            if column.max is not None:
                self._aggregations.append((item.typed > column.max).sum().alias(f"{name}\x00above"))

    def check(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The batch's typed columns in contract order; raise IngestRefused on a bad value."""
        stats = batch.select(self._aggregations).row(0, named=True)
        for name, column in self.contract.items():
            if stats[f"{name}\x00failed"]:
                raise IngestRefused(self._failure(batch, name, column, stats[f"{name}\x00failed"]))
            for side in ("below", "above"):
                if stats.get(f"{name}\x00{side}"):
                    raise IngestRefused(self._out_of_range(batch, name, column, side,
                                                           stats[f"{name}\x00{side}"]))
            self._nulls[name] += stats[f"{name}\x00nulls"]
            for text in self._parsed[name].notes:
                key = (name, text)
                self._notes[key] = self._notes.get(key, 0) + stats[f"{name}\x00{text}"]
        typed = batch.select(self._typed)
        self.rows += batch.height
        return typed

    def finish(self) -> list[str]:
        """Judge the whole file's missing values; return every warning noticed."""
        if self.rows == 0:
            raise IngestRefused(f"{self.sniffed.path}: has no data rows")
        for name, column in self.contract.items():
            nulls = self._nulls[name]
            if nulls / self.rows > column.max_null_rate + 1e-12:
                raise IngestRefused(
                    f"{self.sniffed.path}: column {name!r} is {nulls / self.rows:.1%} missing "
                    f"({nulls} of {self.rows} rows); the contract allows at most "
                    f"{column.max_null_rate:.0%}")
        warnings = list(self.warnings)
        warnings += [f"column {name!r}: {count} {text}"
                     for (name, text), count in self._notes.items() if count]
        if self.rows == 1:
            warnings.append("has a single data row")
        return warnings

    def _failure(self, batch: pl.DataFrame, name: str, column: ColumnContract,
                 count: int) -> str:
        item = self._parsed[name]
        examples = (batch.with_row_index("__row", offset=self.rows + 1).filter(item.failed)
                    .select("__row", pl.col(name)).head(3))
        shown = ", ".join(f"row {row}: {value!r}" for row, value in examples.iter_rows())
        hint = ""
        if column.type == "category":
            found = batch.filter(item.failed).get_column(name).unique().sort().head(5).to_list()
            hint = f"; found {_preview([str(v) for v in found])}"
            if _looks_recoded(found, column.categories or []):
                hint += " - were the categories recoded?"
        more = " (in the first bad batch)" if count > 3 else ""
        return (f"{self.sniffed.path}: column {name!r} (contract type {column.type}) has "
                f"{count} value{'s' if count != 1 else ''}{more} that "
                f"{'is' if count == 1 else 'are'} not {item.expected}: {shown}{hint}")

    def _out_of_range(self, batch: pl.DataFrame, name: str, column: ColumnContract, side: str,
                      count: int) -> str:
        typed = self._parsed[name].typed
        limit = column.min if side == "below" else column.max
        mask = typed < limit if side == "below" else typed > limit
        row, value = (batch.with_row_index("__row", offset=self.rows + 1).filter(mask)
                      .select("__row", pl.col(name)).row(0))
        return (f"{self.sniffed.path}: column {name!r} has {count} value"
                f"{'s' if count != 1 else ''} {side} the contract's "
                f"{'min' if side == 'below' else 'max'} {limit:g} (row {row}: {value!r})")


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


def _looks_recoded(found: list[object], categories: list[str]) -> bool:
    return {str(v) for v in found} <= {"0", "1", "True", "False", "true", "false"} and \
        len(categories) == 2


def _preview(values: list[str], limit: int = 6) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _fmt(time_format: str | None) -> str:
    return f" in format {time_format!r}" if time_format else ""
