"""The schema contract, enforced on every file.

Enforcement reads each column with the contract's type (core/data/values.py, the same
rules as scoring) and refuses the file when a value does not fit, instead of letting it
become null, NaN or a wrong number. It reads the whole file before judging, so one
refusal lists every problem: per column, how many rows and the first few of them.

Real data evolves: category levels are open unless the contract closes them. A new
level is accepted and reported with its count; a column whose values are mostly new
levels is a recoding and is refused.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from mlyard.core.config import ColumnContract, DataConfig
from mlyard.core.data.sniff import SniffResult
from mlyard.core.data.values import (
    SPELLINGS,
    SWAPPED,
    Parsed,
    parse_column,
    parse_time,
    preview,
)
from mlyard.core.errors import IngestRefused

EXAMPLES = 3  # rows shown per problem
MAX_TRACKED_LEVELS = 1_000  # new levels counted by name per column; beyond, only a total


def contract_from_json(text: str) -> dict[str, ColumnContract]:
    return msgspec.json.decode(text, type=dict[str, ColumnContract])


def contract_to_json(contract: dict[str, ColumnContract]) -> str:
    return msgspec.json.encode(contract).decode()


def contract_hash(contract: dict[str, ColumnContract], data: DataConfig) -> str:
    """What a version was checked against: the columns plus the [data] keys that change
    what a check accepts or what the cleaned snapshot holds."""
    basis = {"columns": msgspec.to_builtins(contract), "id_column": data.id_column,
             "dedupe": data.dedupe, "time_format": data.time_format,
             "max_new_level_share": data.max_new_level_share}
    return hashlib.sha256(msgspec.json.encode(basis, order="sorted")).hexdigest()[:16]


@dataclass
class _Problem:
    """One kind of problem in one column: how often, where first, and how to say it."""

    describe: Callable[[int, str], str]  # (count, first rows) -> the sentence
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.describe(self.count, ", ".join(self.examples))


def _values(count: int) -> str:
    return f"{count:,} value{'s' if count != 1 else ''}"


_Compiled = tuple[dict[str, Parsed], list[list[pl.Expr]], list[pl.Expr],
                  dict[str, dict[str, pl.Expr]]]
_COMPILED: dict[tuple[object, ...], _Compiled] = {}  # by contract, target, task, dtypes
_COMPILED_KEPT = 16
_COMPILED_GUARD = threading.Lock()


class ContractChecker:
    """Checks a file batch by batch and turns each batch into typed, cleaned columns.

    Working in batches keeps memory flat whatever the file's size. Every batch is
    checked even after a problem, so the refusal in `finish` names them all; typed
    batches stop coming once the file is known to be refused.
    """

    def __init__(self, contract: dict[str, ColumnContract], data: DataConfig, task: str,
                 sniffed: SniffResult, file_columns: list[str],
                 dtypes: dict[str, pl.DataType] | None = None) -> None:
        self.contract = contract
        self.data = data
        self.task = task
        self.sniffed = sniffed
        self.warnings = _check_columns(sniffed.path, file_columns, contract)
        self.rows = 0
        self.new_levels: dict[str, dict[str, int]] = {}
        self._problems: dict[tuple[str, str], _Problem] = {}
        self._advice: dict[tuple[str, str], _Problem] = {}  # broken rules that only warn
        self._spelt: dict[str, set[str]] = {}  # bool column -> other spellings seen
        self._nulls = dict.fromkeys(contract, 0)
        self._new_totals = dict.fromkeys(contract, 0)
        self._notes: dict[tuple[str, str], int] = {}
        self._swaps: dict[tuple[str, str], int] = {}
        key = (contract_hash(contract, data), data.target, task,
               tuple(sorted((name, str(dtype)) for name, dtype in (dtypes or {}).items())))
        with _COMPILED_GUARD:  # files are checked on several threads at once
            if key not in _COMPILED:
                while len(_COMPILED) >= _COMPILED_KEPT:
                    _COMPILED.pop(next(iter(_COMPILED)))
                _COMPILED[key] = self._compile(dtypes or {})
            self._parsed, self._parse_once, self._aggregations, self._sides = _COMPILED[key]

    def _compile(self, dtypes: dict[str, pl.DataType]) -> _Compiled:
        """The expressions every batch goes through. Building them costs milliseconds,
        more than checking a small file, so files of one shape share them."""
        parsed = {name: self._parse(name, column, dtypes.get(name, pl.String()))
                  for name, column in self.contract.items()}
        self._parsed = parsed  # what the helpers below read
        # Each column is parsed once per batch into a working column; every check reads
        # that (parsing the same text for each check took a third of ingest's time).
        # Numbers read from text go in two steps: their cleaned text and value first.
        work = [expr.alias(column) for item in parsed.values()
                for column, expr in item.work.items()]
        parse_once = ([work] if work else []) + \
            [[item.typed.alias(_typed(name)) for name, item in parsed.items()]]
        # Each column's bounds (below, above, not binary), checked in every batch.
        sides = {name: self._bounds(name) for name in parsed}
        aggregations: list[pl.Expr] = []
        for name, item in parsed.items():
            # A value that does not fit is a problem of its own, not a missing value. A
            # missing cell is never typed, so the rows that failed are the untyped ones
            # less the missing ones (a null count is free; a mask costs a pass).
            aggregations += [pl.col(_typed(name)).null_count().alias(f"{name}\x00untyped"),
                             item.missing.sum().alias(f"{name}\x00nulls")]
            aggregations += [mask.sum().alias(f"{name}\x00{text}")
                             for text, mask in item.notes.items()]
            aggregations += [mask.sum().alias(f"{name}\x00{side}")
                             for side, mask in sides[name].items()]
            if self._open_levels(name):
                aggregations.append(self._new_level_mask(name).sum().alias(f"{name}\x00new"))
            aggregations += self._swap_checks(name, dtypes.get(name, pl.String()))
            aggregations += self._spelling_check(name, dtypes.get(name, pl.String()))
        return parsed, parse_once, aggregations, sides

    def check(self, batch: pl.DataFrame) -> pl.DataFrame | None:
        """The batch's typed columns in contract order, or None once the file has a
        problem (the rest is still checked, for the report)."""
        parsed = self.parse(batch)
        return self.take(parsed, parsed.select(self._aggregations).row(0, named=True))

    def parse(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The batch with each column's working and typed columns beside its text."""
        for step in self._parse_once:
            batch = batch.with_columns(step)
        return batch

    def take(self, batch: pl.DataFrame, stats: dict[str, Any]) -> pl.DataFrame | None:
        """`check` for a parsed batch whose counts (`aggregations`) are known."""
        numbered = batch.with_row_index("__row", offset=self.rows + 1)
        for name, column in self.contract.items():
            item = self._parsed[name]
            failed = stats[f"{name}\x00untyped"] - stats[f"{name}\x00nulls"]
            if failed:
                self._record(name, "failed", numbered, self._failed(name), failed,
                             self._failure_text(name, column, item, numbered))
            for side, mask in self._sides[name].items():
                if stats[f"{name}\x00{side}"]:
                    self._record(name, side, numbered, mask, stats[f"{name}\x00{side}"],
                                 self._bound_text(name, column, side))
            if stats.get(f"{name}\x00new"):
                self._count_new_levels(name, batch, stats[f"{name}\x00new"])
            self._nulls[name] += stats[f"{name}\x00nulls"]
            for swap in ("unswappable", "swap differs"):
                if f"{name}\x00{swap}" in stats:
                    self._swaps[(name, swap)] = self._swaps.get((name, swap), 0) + \
                        stats[f"{name}\x00{swap}"]
            for text in item.notes:
                key = (name, text)
                self._notes[key] = self._notes.get(key, 0) + stats[f"{name}\x00{text}"]
            if stats.get(f"{name}\x00other spelling"):
                self._spelt.setdefault(name, set()).update(
                    batch.select(self._lower(name).unique().head(20)).to_series().to_list())
        self.rows += batch.height
        if self._problems:
            return None
        # The typed columns as they are: a query would cost more than the renaming.
        return pl.DataFrame([batch.get_column(_typed(name)).alias(name)
                             for name in self.contract])

    def finish(self) -> list[str]:
        """Judge the whole file; raise IngestRefused naming every problem, else return
        every warning noticed."""
        if self.rows == 0:
            raise IngestRefused(f"{self.sniffed.path}: has no data rows")
        warnings = list(self.warnings)
        for name, column in self.contract.items():
            self._judge_nulls(name, column)
            warnings += self._judge_new_levels(name, column)
            warnings += self._judge_spelling(name, column)
        if self._problems:
            phrases = [str(problem) for problem in self._problems.values()]
            lead = "" if len(phrases) == 1 else f"{len(phrases)} problems: "
            raise IngestRefused(f"{self.sniffed.path}: {lead}{'; '.join(phrases)}")
        warnings += [f"column {name!r}: {count} {text}"
                     for (name, text), count in self._notes.items() if count]
        warnings += self._judge_swaps()
        warnings += [f"{advice}; {_ACCEPTED[kind]}" for (_, kind), advice in
                     self._advice.items()]
        if self.rows == 1:
            warnings.append("has a single data row")
        return warnings

    def _refuses(self, name: str, kind: str) -> bool:
        """Whether a broken rule refuses the file. Rules inferred from a sample
        (`strict = false`) warn; a pinned date format, a closed list and the classes of
        a classification target are needed to read the data as meant: they refuse
        either way."""
        column = self.contract[name]
        if column.strict or kind in {"not binary", "binary"}:
            return True
        classes = name == self.data.target and self.task in {"binary", "multiclass"}
        return kind == "failed" and (column.type in {"date", "datetime"} or column.closed
                                     or classes)

    def _lower(self, name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()

    def _spelling_check(self, name: str, dtype: pl.DataType) -> list[pl.Expr]:
        """For a bool column written as text: the values not in the sample's spelling."""
        column = self.contract[name]
        if column.type != "bool" or column.spelling not in SPELLINGS or dtype != pl.String:
            return []
        text = self._lower(name)
        return [((text.fill_null("") != "") & ~text.is_in(list(SPELLINGS[column.spelling])))
                .sum().alias(f"{name}\x00other spelling")]

    def _judge_spelling(self, name: str, column: ColumnContract) -> list[str]:
        seen = self._spelt.get(name, set()) - {""}
        mine = set(SPELLINGS.get(column.spelling or "", ()))
        if not seen or seen & mine:  # some values still spelt the sample's way: a mix
            return []
        spelt = [s for s, words in SPELLINGS.items() if seen <= set(words)]
        how = spelt[0] if spelt else preview(sorted(seen))
        return [f"column {name!r}: written as {how} in this file where the contract's "
                f"sample wrote {column.spelling}; read as the same true/false values - the "
                "source changed its encoding"]

    def _parse(self, name: str, column: ColumnContract, dtype: pl.DataType) -> Parsed:
        return parse_column(name, column.type, dtype, time_format=self._time_format(name),
                            levels=column.categories, closed=column.closed, staged=True)

    def _failed(self, name: str) -> pl.Expr:
        return self._parsed[name].failed(pl.col(_typed(name)))

    def _bounds(self, name: str) -> dict[str, pl.Expr]:
        column, typed = self.contract[name], pl.col(_typed(name))
        bounds = {}
        if column.min is not None:
            bounds["below"] = typed < column.min
        if column.max is not None:
            bounds["above"] = typed > column.max
        if name == self.data.target and self.task == "binary" and column.type == "int":
            bounds["not binary"] = typed.is_not_null() & ~typed.is_in([0, 1])
        return bounds

    def _time_format(self, name: str) -> str | None:
        return self.contract[name].format or self.data.time_format

    def _swap_checks(self, name: str, dtype: pl.DataType) -> list[pl.Expr]:
        """For a day/month format: rows that would not read the other way round, and
        rows that would read differently. Both 0 and >0: the file cannot tell."""
        kind, time_format = self.contract[name].type, self._time_format(name)
        swapped = SWAPPED.get(time_format or "")
        if kind not in {"date", "datetime"} or swapped is None or dtype != pl.String:
            return []
        other = parse_time(name, kind, swapped)
        typed = pl.col(_typed(name))
        return [(typed.is_not_null() & other.is_null()).sum().alias(f"{name}\x00unswappable"),
                (typed.is_not_null() & (typed != other)).sum().alias(f"{name}\x00swap differs")]

    def _judge_swaps(self) -> list[str]:
        warnings = []
        for name in self.contract:
            if (name, "swap differs") in self._swaps and \
                    self._swaps[(name, "unswappable")] == 0 and self._swaps[(name, "swap differs")]:
                time_format = self._time_format(name) or ""
                order = "month first" if time_format.startswith("%m") else "day first"
                other = "day first" if order == "month first" else "month first"
                warnings.append(
                    f"column {name!r}: every day in this file is 12 or less, so its dates also "
                    f"read {other} ({SWAPPED[time_format]!r}); read {order} as pinned "
                    f"({time_format!r}) - check the file if its source writes {other}")
        return warnings

    def _open_levels(self, name: str) -> bool:
        column = self.contract[name]
        return column.type == "category" and bool(column.categories) and not column.closed

    def _new_level_mask(self, name: str) -> pl.Expr:
        return pl.col(_typed(name)).is_not_null() & \
            ~pl.col(name).is_in(self.contract[name].categories or [])

    def _count_new_levels(self, name: str, batch: pl.DataFrame, total: int) -> None:
        self._new_totals[name] += total
        seen = self.new_levels.setdefault(name, {})
        counts = batch.filter(self._new_level_mask(name)).group_by(name).len()
        for level, count in counts.iter_rows():
            if level in seen or len(seen) < MAX_TRACKED_LEVELS:
                seen[level] = seen.get(level, 0) + count

    def _record(self, name: str, kind: str, numbered: pl.DataFrame, mask: pl.Expr,
                count: int, describe: Callable[[int, str], str]) -> None:
        found = self._problems if self._refuses(name, kind) else self._advice
        problem = found.setdefault((name, kind), _Problem(describe))
        problem.count += count
        room = EXAMPLES - len(problem.examples)
        if room > 0:
            rows = numbered.filter(mask).select("__row", pl.col(name)).head(room)
            problem.examples += [f"row {row}: {value!r}" for row, value in rows.iter_rows()]

    def _failure_text(self, name: str, column: ColumnContract, item: Parsed,
                      numbered: pl.DataFrame) -> Callable[[int, str], str]:
        hint = ""
        if name == self.data.target and self.task == "binary":
            return lambda count, rows: (
                f"column {name!r} is the binary target but has {_values(count)} that "
                f"{'is' if count == 1 else 'are'} not {item.expected}: {rows}; set [train] "
                "task = \"multiclass\" if it has more classes now")
        if column.type == "category":
            found = numbered.filter(self._failed(name)).get_column(name).unique().sort() \
                .head(5)
            hint = f"; found {preview([str(v) for v in found])}"
            if _looks_recoded(found.to_list(), column.categories or []):
                hint += " - were the categories recoded?"
        return lambda count, rows: (f"column {name!r} (contract type {column.type}) has "
                                    f"{_values(count)} that {'is' if count == 1 else 'are'} "
                                    f"not {item.expected}: "
                                    f"{rows}{hint}")

    def _bound_text(self, name: str, column: ColumnContract,
                    side: str) -> Callable[[int, str], str]:
        if side == "not binary":
            return lambda count, rows: (
                f"column {name!r} is the binary target but has {_values(count)} other than "
                f"0 and 1 ({rows}); set [train] task = \"multiclass\" if it has more "
                "classes now")
        limit = column.min if side == "below" else column.max
        which = "min" if side == "below" else "max"
        return lambda count, rows: (f"column {name!r} has {_values(count)} {side} the "
                                    f"contract's {which} {limit:g} ({rows})")

    def _judge_nulls(self, name: str, column: ColumnContract) -> None:
        nulls = self._nulls[name]
        if nulls / self.rows > column.max_null_rate + 1e-12:
            found = self._problems if self._refuses(name, "nulls") else self._advice
            found[(name, "nulls")] = _Problem(lambda _count, _rows:
                f"column {name!r} is {nulls / self.rows:.1%} missing ({nulls} of "
                f"{self.rows} rows); the contract allows at most {column.max_null_rate:.0%}")

    def _judge_new_levels(self, name: str, column: ColumnContract) -> list[str]:
        levels = self.new_levels.get(name)
        if not levels:
            return []
        present = self.rows - self._nulls[name]
        share = self._new_totals[name] / max(present, 1)
        shown = ", ".join(f"{level!r} ({count:,} row{'s' if count != 1 else ''})" for
                          level, count in sorted(levels.items(), key=lambda kv: -kv[1])[:5])
        more = f" and {len(levels) - 5} more" if len(levels) > 5 else ""
        known = column.categories or []
        what, plural = ("class", "classes") if name == self.data.target else ("level", "levels")
        if share > self.data.max_new_level_share and self._refuses(name, "recoded"):
            self._problems[(name, "recoded")] = _Problem(lambda _count, _rows:
                f"column {name!r}: {share:.0%} of its values are {plural} the contract has "
                f"never seen ({shown}{more}; known: {preview(known)}) - were the values "
                f"recoded? If they are real, add them to [data.columns.{name}] categories "
                "(or raise [data] max_new_level_share)")
            return []
        if name == self.data.target and self.task == "binary" and \
                len(set(known) | set(levels)) > 2:
            self._problems[(name, "binary")] = _Problem(lambda _count, _rows:
                f"column {name!r} is the binary target but has a value outside its two "
                f"classes: {shown}{more}; the classes are {preview(known)}. Set [train] "
                "task = \"multiclass\" if it has more classes now")
            return []
        recoded = f" ({share:.0%} of its values: were they recoded?)" \
            if share > self.data.max_new_level_share else ""
        return [f"column {name!r}: {len(levels)} new {what if len(levels) == 1 else plural} "
                f"not in the contract{recoded}: {shown}{more}; accepted (set closed = true "
                f"on [data.columns.{name}] to refuse new {plural})"]


def check_together(checkers: list[ContractChecker], frame: pl.DataFrame, key: str,
                   keys: list[Any]) -> list[pl.DataFrame | None]:
    """`check` for several small files of one shape read as one frame, whose column `key`
    holds `keys[i]` on the rows of the file `checkers[i]` checks: every file is parsed
    and counted in one query instead of a few each (a query's fixed cost was most of a
    small file's). Each checker then judges its own rows exactly as `check` would."""
    first = checkers[0]
    parsed = first.parse(frame)
    counts = parsed.group_by(key, maintain_order=True).agg(first._aggregations)
    stats = {row[key]: row for row in counts.iter_rows(named=True)}
    parts = parsed.partition_by(key, as_dict=True, maintain_order=True, include_key=False)
    results = []
    for checker, value in zip(checkers, keys, strict=True):
        rows = parts.get((value,))
        if rows is None:  # no data rows: its own check says so
            results.append(checker.check(frame.clear().drop(key)))
        else:
            results.append(checker.take(rows, stats[value]))
    return results


# How each broken rule of a `strict = false` column is taken, after its description.
_ACCEPTED = {
    "failed": "read as missing (inferred from a sample: set strict = true on the column to "
              "refuse such rows)",
    "below": "accepted (inferred from a sample: set strict = true on the column to refuse "
             "such rows)",
    "nulls": "accepted (inferred from a sample: set strict = true on the column to refuse "
             "such files)",
}
_ACCEPTED["above"] = _ACCEPTED["below"]


def _typed(name: str) -> str:
    return f"{name}\x00typed"


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


def _looks_recoded(found: list[Any], categories: list[str]) -> bool:
    return {str(v) for v in found} <= {"0", "1", "True", "False", "true", "false"} and \
        len(categories) == 2
