"""Turning a scoring request into model input, checked against the model card.

Accepts MLflow's scoring protocol, so existing clients work unchanged: JSON bodies in the
`dataframe_split`, `dataframe_records`, `instances` and `inputs` forms, and CSV. Every
problem becomes a ScoringRejected naming the column and the row, never an exception a
server would turn into a 500.
"""

from __future__ import annotations

import io
import math
from typing import Any

import orjson
import polars as pl

from mlyard.core.errors import MlyardError
from mlyard.core.models.features import FeatureSpec


class ScoringRejected(MlyardError):
    """A request the model cannot score; `status` is the HTTP status to answer with."""

    title = "Bad request"

    def __init__(self, msg: str, status: int = 400, error_code: str = "BAD_REQUEST") -> None:
        super().__init__(msg)
        self.status = status
        self.error_code = error_code


def parse_body(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """Rows as dicts from a JSON or CSV body in any of MLflow's input forms."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "text/csv":
        return _csv_rows(body)
    if kind != "application/json":
        raise ScoringRejected(
            f"content type {kind or '(none)'!r} is not supported; use application/json "
            "or text/csv", status=415, error_code="BAD_REQUEST")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ScoringRejected(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ScoringRejected("expected a JSON object with one of dataframe_split, "
                              "dataframe_records, instances or inputs")
    forms = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs")
             if k in payload]
    if len(forms) != 1:
        raise ScoringRejected("expected exactly one of dataframe_split, dataframe_records, "
                              f"instances or inputs; got {sorted(payload) or 'none'}")
    data = payload[forms[0]]
    if forms[0] == "dataframe_split":
        return _split_rows(data)
    return _record_rows(data, forms[0])


def to_frame(rows: list[dict[str, Any]], spec: FeatureSpec) -> pl.DataFrame:
    """A frame of the model's features, typed as at training; bad values are named."""
    if not rows:
        raise ScoringRejected("no rows to score")
    missing = [f.name for f in spec.features if f.name not in rows[0]]
    if missing:
        raise ScoringRejected(f"missing feature column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(map(repr, missing))}; the model needs "
                              f"{', '.join(spec.names)}")
    columns: dict[str, list[Any]] = {}
    for feature in spec.features:
        values = []
        for index, row in enumerate(rows):
            if feature.name not in row:
                raise ScoringRejected(f"row {index}: missing feature {feature.name!r}")
            values.append(_check(feature.name, feature.type, feature.categories,
                                 row[feature.name], index))
        columns[feature.name] = values
    dtypes = {"int": pl.Float64, "float": pl.Float64, "bool": pl.Boolean, "category": pl.String}
    return pl.DataFrame({f.name: pl.Series(f.name, columns[f.name], dtypes[f.type])
                         for f in spec.features})


def _check(name: str, kind: str, categories: list[str] | None, value: Any, row: int) -> Any:
    if value is None:
        return None
    if kind in {"int", "float"}:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value) if isinstance(value, str) and value.strip() else None
            except ValueError:
                value = None
            if value is None:
                raise ScoringRejected(f"row {row}, column {name!r}: expected a number")
        number = float(value)
        if not math.isfinite(number):
            raise ScoringRejected(f"row {row}, column {name!r}: {value!r} is not a finite "
                                  "number")
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes"}:
            return True
        if text in {"false", "0", "no"}:
            return False
        raise ScoringRejected(f"row {row}, column {name!r}: expected true or false")
    text = value if isinstance(value, str) else str(value)
    if categories is not None and text not in categories:
        shown = ", ".join(map(repr, categories[:8]))
        raise ScoringRejected(f"row {row}, column {name!r}: unknown category {text!r}; "
                              f"expected one of {shown}")
    return text


def _split_rows(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or "columns" not in data or "data" not in data:
        raise ScoringRejected("dataframe_split needs 'columns' and 'data'")
    columns, values = data["columns"], data["data"]
    if not isinstance(columns, list) or not isinstance(values, list):
        raise ScoringRejected("dataframe_split 'columns' and 'data' must be lists")
    rows = []
    for index, row in enumerate(values):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ScoringRejected(f"dataframe_split row {index}: expected a list of "
                                  f"{len(columns)} values")
        rows.append(dict(zip(map(str, columns), row, strict=True)))
    return rows


def _record_rows(data: Any, form: str) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise ScoringRejected(f"{form} as an object needs equally long lists per column")
        count = lengths.pop()
        return [{str(k): v[i] for k, v in data.items()} for i in range(count)]
    if not isinstance(data, list):
        raise ScoringRejected(f"{form} must be a list of rows or an object of columns")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise ScoringRejected(f"{form} row {index}: expected an object of "
                                  "column: value")
    return data


def _csv_rows(body: bytes) -> list[dict[str, Any]]:
    try:
        frame = pl.read_csv(io.BytesIO(body), infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise ScoringRejected(f"body is not readable CSV: {str(exc).splitlines()[0]}") from None
    return frame.to_dicts()
