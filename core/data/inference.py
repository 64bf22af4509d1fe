"""A first contract inferred from data, with everything suspicious said out loud.

Inference reads every cell as text with the same rules as ingest (core/data/values.py),
so the contract it writes is the one the same files then pass or fail. A few bad cells
do not decide a column's type: a mostly numeric column stays numeric and the cells are
listed, because a one-off 'forty' should be fixed in the file, not turn `age` into text
that training silently leaves out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from mlyard.core.config import ColumnContract, ColumnType
from mlyard.core.data.quality import MIN_ROWS_FOR_CONSTANT
from mlyard.core.data.reader import collect, scan_as_text
from mlyard.core.data.sniff import SniffResult
from mlyard.core.data.values import (
    FALSE_WORDS,
    ISO_DATETIMES,
    MISSING_TOKENS,
    SPELLINGS,
    SWAPPED,
    TRUE_WORDS,
    parse_column,
    preview,
)

MAX_CATEGORIES = 50
NULL_RATE_MARGIN = 0.05
DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y",
                "%m-%d-%Y"]
DATETIME_FORMATS = [*ISO_DATETIMES, "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S",
                    "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M"]
_TEXT = pl.String()
BAD_CELLS_ALLOWED = 0.01  # a column stays numeric when at most this share is not numbers
SHOWN = 5
_WORDS = [w for w in TRUE_WORDS + FALSE_WORDS if w not in ("0", "1")]
_ID_NAME = re.compile(r"(^|_)(id|key|no|number|uuid|guid)$|[a-z]Id$|^index$", re.IGNORECASE)
_TIME_NAME = re.compile(r"(^|_)(year|yr|month|mnth|week|day|quarter|period|time|t|date|"
                        r"month_index|period_index)($|_)", re.IGNORECASE)


@dataclass
class ColumnSummary:
    """One line of the table `mlyard init` prints."""

    name: str
    type: str
    role: str
    nulls: float
    detail: str


@dataclass
class Inferred:
    contract: dict[str, ColumnContract]
    summary: list[ColumnSummary] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    id_column: str | None = None
    time_column: str | None = None
    exclude: dict[str, str] = field(default_factory=dict)  # column -> why not a feature


def infer(files: list[SniffResult], target: str | None = None,
          detect_roles: bool = True) -> Inferred:
    """The contract the files satisfy, roles that are not features, and findings."""
    frame = _text_frame(files)
    names = [c for c in frame.collect_schema() if not c.startswith("__")]
    stats = collect(frame.select(_aggregations(names)), files[0]).row(0, named=True)
    rows = max(1, int(stats["__rows"]))
    result = Inferred({})
    for name in names:
        result.contract[name] = _column(frame, files, name, stats, rows, name == target,
                                        result.findings)
    if detect_roles:
        _detect_roles(frame, files, result, rows, target)
        for role in (result.id_column, result.time_column):  # roles get no margin
            if role is not None:
                missing = rows - stats[f"{role}\x00present"]
                result.contract[role].max_null_rate = math.ceil(missing / rows * 100) / 100
    for name, column in result.contract.items():
        result.summary.append(_summary(name, column, stats, rows, _role(name, result, target)))
    return result


def time_like_columns(schema: dict[str, str]) -> list[str]:
    """Columns that look like time from their contract type or name: dates, or integers
    named like a period (`year`, `month_index`)."""
    dates = [name for name, kind in schema.items() if kind in {"date", "datetime"}]
    return dates + [name for name, kind in schema.items()
                    if kind == "int" and _TIME_NAME.search(name)]


def _text_frame(files: list[SniffResult]) -> pl.LazyFrame:
    frames = [scan_as_text(s).with_row_index("__row", offset=1)
              .with_columns(pl.lit(index, pl.Int32).alias("__file")) for index, s in
              enumerate(files)]
    return pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]


def _aggregations(names: list[str]) -> list[pl.Expr]:
    out = [pl.len().alias("__rows")]
    for name in names:
        text = pl.col(name).str.strip_chars()
        present = text.fill_null("") != ""
        value = pl.when(present & ~text.is_in(MISSING_TOKENS)).then(text)
        as_int = parse_column(name, "int", _TEXT).typed
        as_float = parse_column(name, "float", _TEXT).typed
        out += [
            present.sum().alias(f"{name}\x00present"),
            value.count().alias(f"{name}\x00values"),
            as_int.count().alias(f"{name}\x00int"),
            as_float.count().alias(f"{name}\x00float"),
            as_float.min().alias(f"{name}\x00min"),
            as_float.max().alias(f"{name}\x00max"),
            (as_float < 0).sum().alias(f"{name}\x00negative"),
            text.str.to_lowercase().is_in(_WORDS).sum().alias(f"{name}\x00words"),
            pl.when(present).then(pl.col(name)).n_unique().alias(f"{name}\x00unique"),
        ]
        out += [text.str.to_date(format=f, strict=False).count().alias(f"{name}\x00d{f}")
                for f in DATE_FORMATS]
        out += [text.str.to_datetime(format=f, strict=False, time_unit="us").count()
                .alias(f"{name}\x00t{f}") for f in DATETIME_FORMATS]
    return out


def _column(frame: pl.LazyFrame, files: list[SniffResult], name: str, stats: dict[str, Any],
            rows: int, is_target: bool, findings: list[str]) -> ColumnContract:
    present, values = stats[f"{name}\x00present"], stats[f"{name}\x00values"]
    numbers, whole = stats[f"{name}\x00float"], stats[f"{name}\x00int"]
    unique = max(0, int(stats[f"{name}\x00unique"]) - (1 if present < rows else 0))
    kind: ColumnType
    time_format: str | None = None
    if present and stats[f"{name}\x00words"] == present and unique <= 2:
        kind, missing = "bool", rows - present
    elif values and numbers >= values * (1 - BAD_CELLS_ALLOWED) and numbers >= 10 \
            or values and numbers == values:
        kind, missing = ("int" if whole == numbers else "float"), rows - values
        if numbers < values:
            findings.append(_bad_cells(frame, files, name, kind, values - numbers))
    elif present and (time_format := _date_format(name, stats, present, "d", DATE_FORMATS)):
        kind, missing = "date", rows - present
    elif present and (time_format := _date_format(name, stats, present, "t",
                                                  DATETIME_FORMATS)):
        kind, missing = "datetime", rows - present
    else:
        few = 0 < unique <= MAX_CATEGORIES and (unique <= rows // 2 or is_target)
        kind, missing = ("category" if few else "string"), rows - present
    swapped = SWAPPED.get(time_format or "")
    if swapped and stats.get(f"{name}\x00{'d' if kind == 'date' else 't'}{swapped}") == present:
        findings.append(f"column {name!r}: every day is 12 or less, so {time_format!r} and "
                        f"{swapped!r} both fit; pinned format = {time_format!r} - change it "
                        "if the files write the other order")
    share = missing / rows
    allowed = share if is_target else min(1.0, share + NULL_RATE_MARGIN)
    # Everything below was read off a sample: advice that warns, never a rule that refuses.
    column = ColumnContract(type=kind, max_null_rate=math.ceil(allowed * 100) / 100,
                            strict=False)
    if kind in {"date", "datetime"}:
        column.format = time_format
    if kind == "category":
        column.categories = _levels(frame, files, name, rows, findings)
    if kind == "bool":
        column.spelling = _spelling(frame, files, name)
    if kind in {"int", "float"}:
        column.min = _minimum(frame, files, name, stats, values, findings)
    if unique == 1 and rows >= MIN_ROWS_FOR_CONSTANT and not is_target:
        findings.append(f"column {name!r} has the same value in every row of the sample: "
                        "it tells the model nothing (every ingest will warn about it)")
    return column


def _spelling(frame: pl.LazyFrame, files: list[SniffResult], name: str) -> str | None:
    """How the sample writes a boolean column (see SPELLINGS), when one way fits all."""
    text = pl.col(name).str.strip_chars().str.to_lowercase()
    seen = set(collect(frame.select(text.drop_nulls().unique()), files[0])
               .to_series().to_list()) - {""}
    return next((how for how, words in SPELLINGS.items() if seen <= set(words)), None)


def _date_format(name: str, stats: dict[str, Any], present: int, prefix: str,
                 formats: list[str]) -> str | None:
    return next((f for f in formats if stats[f"{name}\x00{prefix}{f}"] == present), None)


def _bad_cells(frame: pl.LazyFrame, files: list[SniffResult], name: str, kind: str,
               count: int) -> str:
    text = pl.col(name).str.strip_chars()
    bad = (text.fill_null("") != "") & ~text.is_in(MISSING_TOKENS) & \
        parse_column(name, "float", _TEXT).typed.is_null()
    cells = _cells(frame, files, name, bad)
    return (f"column {name!r}: mostly numbers, so type = {kind!r}, but {count:,} cell"
            f"{'s are' if count != 1 else ' is'} not: {cells} - ingest reads them as "
            "missing and warns; fix them in the files")


def _minimum(frame: pl.LazyFrame, files: list[SniffResult], name: str, stats: dict[str, Any],
             values: int, findings: list[str]) -> float | None:
    """0 for a column never below it in the sample (a count, a price): advice, so a
    negative value later is counted and warned about, not refused. A few negatives
    among many positives are worth a look, but they are data: no bound is written."""
    negative = int(stats[f"{name}\x00negative"] or 0)
    if negative == 0:
        return 0.0 if stats[f"{name}\x00min"] is not None else None
    if negative <= max(1, int(values * BAD_CELLS_ALLOWED)) and values - negative >= 10:
        cells = _cells(frame, files, name, parse_column(name, "float", _TEXT).typed < 0)
        findings.append(f"column {name!r}: {negative:,} negative value"
                        f"{'s' if negative != 1 else ''} in a column otherwise never below 0:"
                        f" {cells} - no min is written; check them if they should not be")
    return None


def _levels(frame: pl.LazyFrame, files: list[SniffResult], name: str, rows: int,
            findings: list[str]) -> list[str]:
    counts = collect(frame.filter(pl.col(name).str.strip_chars().fill_null("") != "")
                     .group_by(name).len().sort(name), files[0])
    levels = [str(v) for v in counts.get_column(name)]
    median = float(np.median(counts.get_column("len").to_numpy()))
    if len(levels) >= 3 and rows >= 50 and median >= 10:
        rare = counts.filter(pl.col("len") == 1).get_column(name).to_list()
        for level in rare[:SHOWN]:
            where = _cells(frame, files, name, pl.col(name) == level, limit=1)
            findings.append(f"column {name!r}: level {level!r} appears once ({where}) while "
                            f"the others appear {int(median)}+ times - a "
                            "typo?")
    return levels


def _cells(frame: pl.LazyFrame, files: list[SniffResult], name: str, mask: pl.Expr,
           limit: int = SHOWN) -> str:
    found = collect(frame.filter(mask).select("__file", "__row", name).head(limit), files[0])
    return ", ".join(f"{files[f].path.name} row {row}: {value!r}"
                     for f, row, value in found.iter_rows())


def _detect_roles(frame: pl.LazyFrame, files: list[SniffResult], result: Inferred,
                  rows: int, target: str | None) -> None:
    contract = result.contract
    candidates = [n for n in contract if n != target]
    dates = [n for n in candidates if contract[n].type in {"date", "datetime"}]
    result.time_column = dates[0] if dates else _period_column(frame, files, candidates,
                                                               contract, rows)
    looks = [n for n in time_like_columns({n: contract[n].type for n in candidates})
             if n != result.time_column]
    if result.time_column is None and looks:
        result.findings.append(
            f"column {looks[0]!r} looks like time but its rows are not in time order, so it "
            "is not the time_column: the holdout will be a random share of rows; set "
            f"time_column = {looks[0]!r} if later rows should be judged on earlier ones")
    for name in candidates:
        if name == result.time_column or contract[name].type not in {"int", "string",
                                                                     "category"}:
            continue
        why = _id_like(frame, files, name, rows, result.time_column)
        if why == "unique" and result.id_column is None:
            result.id_column = name
        elif why and why != "unique":
            result.exclude[name] = why
        elif why is None and contract[name].type == "int" and rows > MAX_CATEGORIES and \
                collect(frame.select(pl.col(name).n_unique()), files[0]).item() == rows:
            result.findings.append(
                f"column {name!r} has a different whole number in every row: if it "
                "identifies rows (a person or zip code), list it in [data] exclude or set "
                "id_column; it is kept as a feature")


def _period_column(frame: pl.LazyFrame, files: list[SniffResult], names: list[str],
                   contract: dict[str, ColumnContract], rows: int) -> str | None:
    """An int column of periods: named like one or rising file after file."""
    for name in names:
        if contract[name].type != "int":
            continue
        value = parse_column(name, "int", _TEXT).typed
        per_file = collect(frame.group_by("__file").agg(
            value.min().alias("lo"), value.max().alias("hi"),
            (value.diff().fill_null(0) >= 0).all().alias("sorted"),
            value.n_unique().alias("distinct")).sort("__file"), files[0])
        distinct = collect(frame.select(value.n_unique()), files[0]).item()
        if distinct < 2 or distinct > rows // 2:
            continue
        lows, highs = per_file.get_column("lo").to_list(), per_file.get_column("hi").to_list()
        rising = len(lows) > 1 and all(lo is not None and hi is not None and lo > hi for
                                       lo, hi in zip(lows[1:], highs[:-1], strict=True))
        ordered = bool(per_file.get_column("sorted").all())
        # Named like a period and in order, or rising through the rows of one file
        # (a month index in a file sorted by time) or from file to file.
        if rising or ordered and (_TIME_NAME.search(name) or distinct >= 3):
            return name
    return None


def _id_like(frame: pl.LazyFrame, files: list[SniffResult], name: str, rows: int,
             time_column: str | None) -> str | None:
    """"unique" for a per-row id; a reason for a key that repeats across time; else None."""
    key = pl.when(pl.col(name).str.strip_chars().fill_null("") != "").then(pl.col(name))
    counts = collect(frame.select(key.count().alias("n"), key.n_unique().alias("distinct"),
                                  pl.struct(key, "__file").n_unique().alias("per_file"),
                                  *([pl.struct(key, time_column).n_unique().alias("per_time")]
                                    if time_column else [])), files[0]).row(0, named=True)
    named = bool(_ID_NAME.search(name))
    if counts["n"] != rows or counts["distinct"] <= MAX_CATEGORIES:
        return None
    if counts["distinct"] == rows:
        sequence = False
        if not named:
            value = parse_column(name, "int", _TEXT).typed
            low, high = collect(frame.select(value.min().alias("low"),
                                             value.max().alias("high")), files[0]).row(0)
            sequence = low is not None and high is not None and high - low + 1 == rows
        if named or sequence or _is_text(frame, files, name):
            return "unique"
        return None
    repeats = counts["distinct"] <= 0.9 * rows
    if repeats and (counts["per_file"] == rows and len(files) > 1
                    or counts.get("per_time") == rows):
        period = "file" if counts["per_file"] == rows and len(files) > 1 else \
            f"{time_column!r} value"
        return (f"a key repeated across time (one row per {name!r} per {period}): it "
                "identifies rows, it does not describe them")
    return None


def _is_text(frame: pl.LazyFrame, files: list[SniffResult], name: str) -> bool:
    parsed = parse_column(name, "float", _TEXT).typed
    return bool(collect(frame.select(parsed.count()), files[0]).item() == 0)


def _role(name: str, result: Inferred, target: str | None) -> str:
    if name == target:
        return "target"
    if name == result.id_column:
        return "id"
    if name == result.time_column:
        return "time"
    if name in result.exclude:
        return "excluded"
    kind = result.contract[name].type
    return "feature" if kind in {"int", "float", "bool", "category"} else "not used"


def _summary(name: str, column: ColumnContract, stats: dict[str, Any], rows: int,
             role: str) -> ColumnSummary:
    missing = rows - stats[f"{name}\x00values" if column.type in {"int", "float"}
                           else f"{name}\x00present"]
    if column.type in {"int", "float"}:
        low, high = stats[f"{name}\x00min"], stats[f"{name}\x00max"]
        detail = f"{low:g} .. {high:g}" if low is not None and high is not None else ""
    elif column.type == "category":
        detail = f"{len(column.categories or [])} levels: {preview(column.categories or [], 4)}"
    elif column.format:
        detail = f"format {column.format}"
    else:
        detail = ""
    return ColumnSummary(name, column.type, role, missing / rows, detail)
