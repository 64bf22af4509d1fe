"""`mlyard init`: write a working `mlyard.toml` inferred from a folder of data.

Each inferred key gets a comment saying what it was inferred from, so a person can check
the guesses in one read and edit what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mlyard.core.config import parse_config
from mlyard.core.data.inference import Inferred, infer
from mlyard.core.data.reader import collect, columns_of, scan_as_text
from mlyard.core.data.sniff import CSV_SUFFIXES, PARQUET_SUFFIXES, SniffResult, sniff
from mlyard.core.data.values import parse_column
from mlyard.core.errors import UsageError
from mlyard.core.workspace import CONFIG_NAME

TARGET_NAMES = ["target", "label", "y", "class", "outcome", "churned", "churn", "is_churn",
                "default", "fraud", "price", "demand", "sales"]
MAX_CLASSES = 20


def data_files(folder: Path) -> list[Path]:
    """CSV and Parquet files directly inside `folder`, in name order."""
    suffixes = CSV_SUFFIXES | PARQUET_SUFFIXES
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))


MAX_SEGMENT_LEVELS = 20  # a column with more levels is not offered as a segment


@dataclass(frozen=True)
class SegmentCandidate:
    """A column of few levels a person may break model figures down by."""

    name: str
    levels: int


@dataclass
class InitResult:
    path: Path
    text: str  # the mlyard.toml written (or, with dry_run, that would be)
    written: bool
    inferred: Inferred | None  # None without a data folder
    # Offered for `[monitor] segments`, never chosen for the person.
    segment_candidates: list[SegmentCandidate] = field(default_factory=list)


def init_project(project_dir: Path, data_dir: Path | None, target: str | None = None,
                 name: str | None = None, force: bool = False,
                 dry_run: bool = False) -> InitResult:
    """Write `mlyard.toml` in `project_dir`; refuse to overwrite one unless `force`."""
    config_path = project_dir / CONFIG_NAME
    if config_path.exists() and not force and not dry_run:
        raise UsageError(f"{config_path} already exists; pass --force to overwrite it")
    project_name = name or _slug(project_dir.resolve().name)
    inferred: Inferred | None = None
    candidates: list[SegmentCandidate] = []
    if data_dir is None:
        text = _render(project_name, ["data"], None, None)
    else:
        roles, inferred = _infer(data_dir, target)
        candidates = _segment_candidates(roles["target"], inferred)
        text = _render(project_name, [os.path.relpath(data_dir.resolve(), project_dir.resolve())],
                       roles, inferred, candidates)
    parse_config(tomllib.loads(text), str(config_path))  # what we write must load
    if not dry_run:
        project_dir.mkdir(parents=True, exist_ok=True)
        tmp = config_path.with_name(config_path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, config_path)
    return InitResult(config_path, text, not dry_run, inferred, candidates)


def _infer(data_dir: Path, target: str | None) -> tuple[dict[str, str], Inferred]:
    if not data_dir.is_dir():
        raise UsageError(f"{data_dir}: not a folder")
    files = data_files(data_dir)
    if not files:
        raise UsageError(f"{data_dir}: no .csv or .parquet files to infer a contract from")
    sniffed = [sniff(path) for path in files]
    columns = columns_of(sniffed[0])
    chosen = target or _guess_target(columns, data_dir)
    if chosen not in columns:
        raise UsageError(f"--target {chosen!r} is not a column of {files[0]}; "
                         f"columns: {', '.join(columns)}")
    inferred = infer(sniffed, chosen)
    roles = {"target": chosen, "task": _task_for(chosen, inferred, sniffed)}
    return roles, inferred


def _guess_target(columns: list[str], data_dir: Path) -> str:
    lowered = {c.lower(): c for c in columns}
    for candidate in TARGET_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    raise UsageError(f"{data_dir}: cannot tell which column is the target; pass --target COLUMN "
                     f"(columns: {', '.join(columns)})")


def _task_for(target: str, inferred: Inferred, sniffed: list[SniffResult]) -> str:
    """The task the target's values in every file say."""
    column = inferred.contract[target]
    if column.type == "bool":
        return "binary"
    if column.type == "category":
        return "binary" if len(column.categories or []) <= 2 else "multiclass"
    if column.type == "string":
        distinct = len(set().union(*(_values(s, pl.col(target), MAX_CLASSES + 1)
                                     for s in sniffed)))
        if distinct <= 2:
            return "binary"
        if distinct <= MAX_CLASSES:
            return "multiclass"
    if column.type == "int":
        # An int target trains as class codes: 0/1 for binary, 0..k-1 for multiclass
        # (LightGBM's rule); any other whole numbers are amounts to regress on.
        value = parse_column(target, "int", pl.String()).typed
        seen = set().union(*(_values(s, value, MAX_CLASSES + 1) for s in sniffed))
        if seen and seen <= {0, 1}:
            return "binary"
        if 2 < len(seen) <= MAX_CLASSES and seen == set(range(len(seen))):
            return "multiclass"
    if column.type in {"int", "float"}:
        return "regression"
    raise UsageError(f"target {target!r} is a {column.type} column: neither a class label "
                     "nor a number to regress on; pass --target with another column")


def _values(sniffed: SniffResult, value: pl.Expr, limit: int) -> set[object]:
    """Up to `limit` distinct values of `value` in one file."""
    frame = scan_as_text(sniffed).select(value.drop_nulls().unique().head(limit))
    return set(collect(frame, sniffed).to_series().to_list())


def _segment_candidates(target: str, inferred: Inferred) -> list[SegmentCandidate]:
    """Category and bool columns of 2 to MAX_SEGMENT_LEVELS levels that play no role."""
    taken = {target, inferred.id_column, inferred.time_column, *inferred.exclude}
    found = []
    for name, column in inferred.contract.items():
        levels = len(column.categories or []) if column.type == "category" else \
            2 if column.type == "bool" else 0
        if name not in taken and 2 <= levels <= MAX_SEGMENT_LEVELS:
            found.append(SegmentCandidate(name, levels))
    return found


def _render(name: str, watch: list[str], roles: dict[str, str] | None,
            inferred: Inferred | None, candidates: Sequence[SegmentCandidate] = ()) -> str:
    lines = [
        "# mlyard project file. Every key has a default; see docs/config.md.",
        "",
        "[project]",
        f"name = {_q(name)}",
        "",
        "[data]",
        f"watch = {json.dumps(watch)}  # folders of incoming CSV/Parquet files",
    ]
    if roles and inferred:
        lines.append(f"target = {_q(roles['target'])}  # the column to predict")
        if inferred.id_column:
            lines.append(f"id_column = {_q(inferred.id_column)}  # unique per row: "
                         "dedupe key, never a feature")
        if inferred.time_column:
            kind = inferred.contract[inferred.time_column].type
            seen = "dates found" if kind in {"date", "datetime"} else "periods rising in order"
            lines.append(f"time_column = {_q(inferred.time_column)}  # {seen}: time-ordered "
                         "holdout, never a feature")
        if inferred.exclude:
            lines.append(f"exclude = {json.dumps(list(inferred.exclude))}  # never features: "
                         + "; ".join(f"{c}: {why}" for c, why in inferred.exclude.items()))
    for column_name, column in (inferred.contract if inferred else {}).items():
        lines += ["", f"[data.columns.{_key(column_name)}]", f"type = {_q(column.type)}"]
        if column.format is not None:
            lines.append(f"format = {_q(column.format)}  # the one format read; others refused")
        if column.spelling is not None:
            lines.append(f"spelling = {_q(column.spelling)}  # as the sample writes it; "
                         "another spelling is read the same, with a warning")
        if column.min is not None:
            lines.append(f"min = {column.min:g}  # no negative values seen")
        if column.max is not None:
            lines.append(f"max = {column.max:g}")
        lines.append(f"max_null_rate = {column.max_null_rate:g}  # "
                     + ("share missing seen, plus a margin" if column.max_null_rate
                        else "none missing seen"))
        if column.categories is not None:
            lines.append(f"categories = {json.dumps(column.categories)}  # levels seen; new "
                         "ones are accepted with a warning (closed = true refuses them)")
        if not column.strict:
            lines.append("strict = false  # inferred: rows breaking these rules are warned "
                         "about; true refuses them")
    if candidates:
        lines += ["", "[monitor]", "# Figures per group of a column (or of columns together), "
                  "and fairness figures for columns marked sensitive = true. Candidates "
                  "(few levels): " + ", ".join(f"{c.name} ({c.levels})" for c in candidates),
                  f"# segments = {json.dumps([candidates[0].name])}"]
    lines += ["", "[train]"]
    if roles:
        lines.append(f"task = {_q(roles['task'])}  # inferred from the target's values")
    lines += ["seed = 42", "holdout_fraction = 0.2", "valid_fraction = 0.2", "",
              "[gates]  # what `mlyard models promote` and `mlyard check` require",
              _gate_example(roles["task"] if roles else None),
              "max_regression_vs_champion = 0.01  # at most 1% worse than the champion's "
              "figure, both scored on the same rows neither trained on",
              ""]
    return "\n".join(lines)


def _gate_example(task: str | None) -> str:
    if task == "binary":
        return "min_auc = 0.7  # holdout AUC"
    if task == "multiclass":
        return "min_accuracy = 0.5  # holdout accuracy"
    return "# max_rmse = 10.0  # holdout RMSE, in the target's units"


def _q(text: str) -> str:
    return json.dumps(text)


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "project"
