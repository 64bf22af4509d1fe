"""A one-row request read straight into the model's input, for the values clients send.

Most scoring traffic is one row of plain values: numbers for numeric features, a known
level for a category. `small_request` reads any request by the shared rules, column by
column (~65 µs for ten features); for such a row this reads each value with one type
check and one dictionary lookup (~10 µs). Anything else (a number sent as text, a
missing column, an unknown level, a bool feature) makes `read` return None and the
caller takes `small_request`, so every value still reads, and every refusal is worded,
exactly as by the column path (tests/test_values_scalar.py holds the two together).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mlyard.core.models.features import FeatureSpec
from mlyard.core.serving.request import LOG_ENCODER, ReadRows, key_text

# A value's log entry and its matrix value, or None: not a value this reader takes.
_Read = Callable[[Any], tuple[Any, float] | None]
_MISSING = (None, math.nan)
_INT64 = 2**63


class RowReader:
    """`keys`: the columns the log keeps beside each row (the id, then segment columns,
    `mlyard.core.config.logged_keys`); those that are not features are logged as sent
    (`passed`), never scored."""

    def __init__(self, spec: FeatureSpec, keys: tuple[str, ...] = ()) -> None:
        self.keys = keys
        self.passed = tuple(name for name in keys if name not in spec.names)
        # Keys that are number features are logged as numbers: their text is made here.
        self._numbers = any(feature.name in keys and feature.type in {"int", "float"}
                            for feature in spec.features)
        self.readers: list[tuple[str, _Read]] = []
        for feature in spec.features:
            read = _reader(feature.type, spec.category_codes.get(feature.name))
            if read is None:  # a feature no plain value reads fast: every row takes the rules
                self.readers = []
                return
            self.readers.append((feature.name, read))

    def read(self, row: dict[str, Any]) -> ReadRows | None:
        """The row as `small_request([row], ...)` reads it, or None to use that."""
        if not self.readers:
            return None
        logged: dict[str, Any] = {}
        values = []
        try:
            for name, read in self.readers:
                result = read(row[name])
                if result is None:
                    return None
                logged[name] = result[0]
                values.append(result[1])
        except KeyError:  # a missing column: refused by the rules, which name them all
            return None
        for name in self.passed:
            if name in row:
                value = row[name]
                if type(value) is not str:
                    return None  # the rules say how a number or a null is logged
                logged[name] = value
        # Each key a 1-tuple (one row), made in C: a generator of lists cost 3 µs a request.
        kept = map(logged.get, self.keys)
        return (np.array(values, dtype=np.float64).reshape(1, -1),
                LOG_ENCODER.encode([logged]).decode(),
                tuple(zip(map(key_text, kept) if self._numbers else kept)))


def _reader(kind: str, codes: dict[str, float] | None) -> _Read | None:
    if kind == "float":
        return _float
    if kind == "int":
        return _int
    if kind == "category" and codes is not None:
        # Only a level the model knows: an empty or new value takes the rules.
        known = {level: (level, code) for level, code in codes.items() if level.strip()}
        return lambda value: _MISSING if value is None else (
            known.get(value) if type(value) is str else None)
    return None


def _float(value: Any) -> tuple[Any, float] | None:
    kind = type(value)
    if kind is float:
        if value != value:
            return _MISSING  # NaN, as MLflow's clients send a missing value
        return (value, value) if -math.inf < value < math.inf else None
    if kind is int and -_INT64 < value < _INT64:
        return float(value), float(value)
    return _MISSING if value is None else None


def _int(value: Any) -> tuple[Any, float] | None:
    if type(value) is int and -_INT64 < value < _INT64:
        return value, float(value)
    return _MISSING if value is None else None
