"""`mlyard init`: write a working `mlyard.toml` inferred from a folder of data.

Each inferred key gets a comment saying what it was inferred from, so a person can check
the guesses in one read and edit what is wrong.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import polars as pl

from mlyard.core.config import ColumnContract, DataConfig, load_config
from mlyard.core.data.contract import infer_contract
from mlyard.core.data.reader import collect, scan_inferred
from mlyard.core.data.sniff import CSV_SUFFIXES, PARQUET_SUFFIXES, SniffResult, sniff
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


def init_project(project_dir: Path, data_dir: Path | None, target: str | None = None,
                 name: str | None = None, force: bool = False) -> Path:
    """Write `mlyard.toml` in `project_dir`; refuse to overwrite one unless `force`."""
    config_path = project_dir / CONFIG_NAME
    if config_path.exists() and not force:
        raise UsageError(f"{config_path} already exists; pass --force to overwrite it")
    project_name = name or _slug(project_dir.resolve().name)
    if data_dir is None:
        text = _render(project_name, ["data"], None, {})
    else:
        text = _render(project_name, [os.path.relpath(data_dir.resolve(), project_dir.resolve())],
                       *_infer(data_dir, target))
    project_dir.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_name(config_path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    load_config(tmp)  # what we write must load; fail before replacing anything
    os.replace(tmp, config_path)
    return config_path


def _infer(data_dir: Path, target: str | None) -> tuple[dict[str, str], dict[str, ColumnContract]]:
    if not data_dir.is_dir():
        raise UsageError(f"{data_dir}: not a folder")
    files = data_files(data_dir)
    if not files:
        raise UsageError(f"{data_dir}: no .csv or .parquet files to infer a contract from")
    sniffed = [sniff(path) for path in files]
    frame = pl.concat([scan_inferred(s) for s in sniffed], how="vertical_relaxed")
    schema = frame.collect_schema()
    columns = list(schema)
    roles: dict[str, str] = {}
    roles["target"] = target or _guess_target(columns, data_dir)
    if roles["target"] not in schema:
        raise UsageError(f"--target {roles['target']!r} is not a column of {files[0]}; "
                         f"columns: {', '.join(columns)}")
    id_column = _guess_id(frame, columns, roles["target"], sniffed[0])
    if id_column:
        roles["id_column"] = id_column
    time_column = next((c for c, t in schema.items()
                        if (t == pl.Date or isinstance(t, pl.Datetime)) and c != roles["target"]),
                       None)
    if time_column:
        roles["time_column"] = time_column
    data = DataConfig(target=roles["target"], id_column=id_column, time_column=time_column)
    contract = infer_contract(frame, data, sniffed[0])
    roles["task"] = _task_for(frame, roles["target"], contract[roles["target"]], sniffed[0])
    return roles, contract


def _guess_target(columns: list[str], data_dir: Path) -> str:
    lowered = {c.lower(): c for c in columns}
    for candidate in TARGET_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    raise UsageError(f"{data_dir}: cannot tell which column is the target; pass --target COLUMN "
                     f"(columns: {', '.join(columns)})")


def _guess_id(frame: pl.LazyFrame, columns: list[str], target: str,
              sniffed: SniffResult) -> str | None:
    for column in columns:
        lowered = column.lower()
        if column != target and (lowered == "id" or lowered.endswith(("_id", "id"))):
            counts = collect(frame.select(pl.len(), pl.col(column).n_unique()), sniffed).row(0)
            if counts[0] == counts[1]:
                return column
    return None


def _task_for(frame: pl.LazyFrame, target: str, column: ColumnContract,
              sniffed: SniffResult) -> str:
    distinct = collect(frame.select(pl.col(target).drop_nulls().n_unique()), sniffed).item()
    if column.type == "bool" or distinct == 2:
        return "binary"
    if column.type in {"category", "int", "string"} and distinct <= MAX_CLASSES:
        return "multiclass"
    if column.type in {"int", "float"}:
        return "regression"
    raise UsageError(f"target {target!r} has {distinct} distinct {column.type} values: "
                     "neither a class label nor a number to regress on")


def _render(name: str, watch: list[str], roles: dict[str, str] | None,
            contract: dict[str, ColumnContract]) -> str:
    lines = [
        "# mlyard project file. Every key has a default; see docs/config.md.",
        "",
        "[project]",
        f"name = {_q(name)}",
        "",
        "[data]",
        f"watch = {json.dumps(watch)}  # folders of incoming CSV/Parquet files",
    ]
    if roles:
        lines.append(f"target = {_q(roles['target'])}  # the column to predict")
        if "id_column" in roles:
            lines.append(f"id_column = {_q(roles['id_column'])}  # unique per row: "
                         "dedupe key, never a feature")
        if "time_column" in roles:
            lines.append(f"time_column = {_q(roles['time_column'])}  # dates found: time-based "
                         "split, never a feature")
    for column_name, column in contract.items():
        lines += ["", f"[data.columns.{_key(column_name)}]", f"type = {_q(column.type)}"]
        if column.min is not None:
            lines.append(f"min = {column.min:g}  # no negative values seen")
        if column.max is not None:
            lines.append(f"max = {column.max:g}")
        lines.append(f"max_null_rate = {column.max_null_rate:g}  # "
                     + ("share missing seen, plus a margin" if column.max_null_rate
                        else "none missing seen: refuse any"))
        if column.categories is not None:
            lines.append(f"categories = {json.dumps(column.categories)}  # every value seen; "
                         "others are refused")
    lines += ["", "[train]"]
    if roles:
        lines.append(f"task = {_q(roles['task'])}  # inferred from the target's values")
    lines += ["seed = 42", "holdout_fraction = 0.2", "valid_fraction = 0.2", "",
              "[gates]  # what `mlyard models promote` and `mlyard check` require",
              _gate_example(roles["task"] if roles else None),
              "max_regression_vs_champion = 0.005  # primary metric may not get worse by more",
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
