"""Which columns a model sees and how they become numbers, the same at training and
scoring time.

The spec is saved in the model card, so a model never depends on how categories happen
to be ordered in the data it is later asked to score: codes come from the contract's
category list (plus levels first seen in the training data), and a level the model never
saw becomes missing rather than a wrong code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from mlyard.core.config import ColumnContract, Config
from mlyard.core.errors import UsageError

FEATURE_TYPES = {"int", "float", "bool", "category"}


@dataclass
class Feature:
    name: str
    type: str  # int | float | bool | category
    categories: list[str] | None = None
    closed: bool = False  # other levels are refused (else scored as missing)


@dataclass
class Input:
    type: str
    format: str | None = None


@dataclass
class FeatureSpec:
    features: list[Feature]
    target: str
    target_type: str
    classes: list[str] | None  # class labels in code order, for category targets
    skipped: dict[str, str]  # column -> why it is not a feature
    # Every contract column's type and date format at training, so `mlyard predict`
    # types the columns it passes through as ingest would.
    inputs: dict[str, Input] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FeatureSpec:
        return cls(features=[Feature(**f) for f in raw["features"]], target=raw["target"],
                   target_type=raw["target_type"], classes=raw.get("classes"),
                   skipped=raw.get("skipped", {}),
                   inputs={k: Input(**v) for k, v in raw.get("inputs", {}).items()})

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @cached_property
    def category_codes(self) -> dict[str, dict[str, float]]:
        """Level -> code per category feature (the codes `encode` gives)."""
        return {f.name: {level: float(code) for code, level in enumerate(f.categories or [])}
                for f in self.features if f.type == "category"}

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.type == "category"]


def build_spec(config: Config, types: dict[str, str], contract: dict[str, ColumnContract],
               frame: pl.DataFrame) -> FeatureSpec:
    """Features are the contract's numeric, boolean and category columns minus roles."""
    data = config.data
    target = data.target
    if not target or target not in types:
        raise UsageError(f"set [data] target in {config.project.name}'s mlyard.toml to one of "
                         f"the dataset's columns ({', '.join(types)})")
    roles = {data.id_column: "id column", data.time_column: "time column", target: "target"}
    roles.update({name: "excluded in [data] exclude" for name in data.exclude})
    roles.update({name: "a segment (role = \"segment\")" for name, column in contract.items()
                  if column.role == "segment"})
    features: list[Feature] = []
    skipped: dict[str, str] = {}
    for name, kind in types.items():
        if name in roles:
            skipped[name] = roles[name]
        elif kind not in FEATURE_TYPES:
            skipped[name] = f"{kind} columns are not used as features"
        else:
            categories = _categories(name, contract, frame) if kind == "category" else None
            closed = bool(contract[name].closed) if name in contract else False
            features.append(Feature(name, kind, categories, closed))
    if not features:
        raise UsageError("no feature columns: every column is a role, excluded or text")
    target_type = types[target]
    classes = _categories(target, contract, frame) if target_type in {"category", "string"} \
        else None
    if config.train.task == "binary" and classes is not None and len(classes) > 2:
        shown = ", ".join(map(repr, classes[:8]))
        raise UsageError(f"target {target!r} has {len(classes)} classes ({shown}) but [train] "
                         "task is \"binary\"; set task = \"multiclass\"")
    inputs = {name: Input(column.type, column.format or (
                  data.time_format if column.type in {"date", "datetime"} else None))
              for name, column in contract.items()}
    return FeatureSpec(features, target, target_type, classes, skipped, inputs)


def encode(frame: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The feature matrix as float64; missing values and unknown categories are NaN."""
    missing = [name for name in spec.names if name not in frame.columns]
    if missing:
        raise UsageError(f"missing feature column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))}")
    columns = []
    for feature in spec.features:
        col = pl.col(feature.name)
        if feature.type == "category":
            codes = list(range(len(feature.categories or [])))
            columns.append(col.cast(pl.String).replace_strict(
                feature.categories or [], codes, default=None, return_dtype=pl.Float64))
        else:
            columns.append(col.cast(pl.Float64, strict=False))
    return frame.select(columns).to_numpy().astype(np.float64, copy=False)


def encode_target(frame: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Labels as float64: class codes for category targets, the values otherwise."""
    target = frame.get_column(spec.target)
    if spec.classes is not None:
        return target.cast(pl.String).replace_strict(
            spec.classes, list(range(len(spec.classes))), return_dtype=pl.Float64).to_numpy()
    return target.cast(pl.Float64).to_numpy()


def unseen_levels(values: pl.Series, known: list[str]) -> dict[str, int]:
    """Rows per level that is not in `known` (a model's levels or classes), most first."""
    text = values.cast(pl.String).drop_nulls()
    counts = text.filter(~text.is_in(known)).value_counts(sort=True)
    return {str(level): int(count) for level, count in counts.iter_rows()}


def _categories(name: str, contract: dict[str, ColumnContract],
                frame: pl.DataFrame) -> list[str]:
    """The contract's levels in its order, then levels only the data has, sorted: codes
    stay stable as levels are added."""
    declared = contract.get(name)
    known = list(declared.categories or []) if declared is not None else []
    seen = {str(v) for v in frame.get_column(name).drop_nulls().unique().to_list()}
    return known + sorted(seen - set(known))
