"""Turning a scoring request into model input, checked against the model card.

Accepts MLflow's scoring protocol, so existing clients work unchanged: JSON bodies in the
`dataframe_split`, `dataframe_records`, `instances` and `inputs` forms (NaN and Infinity
literals too, as MLflow's Python clients write them), and CSV. Values are read by the
same rules as ingest and `mlyard predict`. Every problem becomes a ScoringRejected naming
the column and the row (1 = the first row sent), never an exception a server would turn
into a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import is_not, itemgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import polars as pl

from mlyard.core.data.reader import read_csv_body
from mlyard.core.data.values import FAILED, MISSING, json_text, parse_column, scalar_reader
from mlyard.core.errors import IngestRefused, MlyardError
from mlyard.core.models.features import Feature, FeatureSpec
from mlyard.core.serving.prediction_log import Keys


class ScoringRejected(MlyardError):
    """A request the model cannot score; `status` is the HTTP status to answer with."""

    title = "Bad request"

    def __init__(self, msg: str, status: int = 400, error_code: str = "BAD_REQUEST") -> None:
        super().__init__(msg)
        self.status = status
        self.error_code = error_code


def parse_body(body: bytes, content_type: str, wanted: list[str]) -> pl.DataFrame:
    """The columns named in `wanted` (those present) from a JSON or CSV body in any of
    MLflow's input forms; values stay as sent (text from CSV), typing is `typed_features`.
    """
    request = json_request(body, content_type)
    return _csv_frame(body) if request is None else rows_frame(request.rows, wanted)


def rows_frame(rows: JsonRows, wanted: list[str]) -> pl.DataFrame:
    """The columns named in `wanted` (those present) of parsed JSON rows."""
    if not rows.height:
        raise ScoringRejected("no rows to score")
    present = [name for name in wanted if name in rows.first_names()]
    return pl.DataFrame([pl.Series(name, *_typed_json(name, values)) for name, values
                         in zip(present, rows.values(present), strict=True)])


def typed_features(frame: pl.DataFrame, spec: FeatureSpec, where: str = "",
                   first_row: int = 1) -> pl.DataFrame:
    """The model's features read by ingest's rules (core/data/values.py), typed as at
    training; the first value that does not fit is named by row (1 = the first data row)
    and column."""
    if frame.height == 0:
        raise ScoringRejected(f"{where}no rows to score")
    missing = [name for name in spec.names if name not in frame.columns]
    if missing:
        raise ScoringRejected(f"{where}missing feature column{'s' if len(missing) > 1 else ''}"
                              f" {', '.join(map(repr, missing))}; the model needs "
                              f"{', '.join(spec.names)}")
    parsed = {f.name: parse_column(f.name, f.type, frame.schema[f.name], levels=f.categories,
                                   closed=f.closed) for f in spec.features}
    failed = frame.select([item.failed().any().alias(name) for name, item in parsed.items()])
    for name, bad in failed.row(0, named=True).items():
        if bad:
            row, value = frame.with_row_index("__row", offset=first_row) \
                .filter(parsed[name].failed()).select("__row", name).row(0)
            raise ScoringRejected(f"{where}row {row}, column {name!r}: {_shown(value)} is not "
                                  f"{parsed[name].expected}")
    return frame.select([item.typed.alias(name) for name, item in parsed.items()])


def _shown(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first_error = exc
    try:  # NaN and Infinity are not JSON, but MLflow's clients send them (Python's json)
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ScoringRejected(f"body is not valid JSON: {first_error}") from None


def _json_columns(names: list[str], rows: JsonRows) -> list[tuple[list[Any], pl.DataType]]:
    """Several columns' JSON values, each with the type it reads as."""
    return [_typed_json(name, values) for name, values
            in zip(names, rows.values(names), strict=True)]


def _typed_json(name: str, values: list[Any]) -> tuple[list[Any], pl.DataType]:
    """A column's JSON values and the type they read as: numbers stay numbers (a float
    NaN is missing), anything mixed is read as text by the same rules a CSV cell is."""
    kinds = set(map(type, values))  # whole-column checks, not one per value: a hot path
    kinds.discard(type(None))
    if dict in kinds or list in kinds:
        index, value = next((i, v) for i, v in enumerate(values, start=1)
                            if isinstance(v, (dict, list)))
        raise ScoringRejected(f"row {index}, column {name!r}: expected a plain value, "
                              f"got a JSON {'object' if isinstance(value, dict) else 'list'}")
    if kinds and kinds <= {int, float} and (int not in kinds or _within_int64(values, kinds)):
        if float in kinds:
            return ([None if v is None else float(v) for v in values] if int in kinds
                    else values), pl.Float64()
        return values, pl.Int64()
    if kinds == {bool}:
        return values, pl.Boolean()
    if kinds <= {str}:
        return values, pl.String()  # already text: the common case, kept cheap
    return [None if v is None else json_text(v) for v in values], pl.String()


_not_none = partial(is_not, None)


def _within_int64(values: list[Any], kinds: set[type]) -> bool:
    """Every JSON integer among `values` fits 64 bits (as the column path reads them)."""
    ints = values if kinds == {int} and None not in values else \
        list(filter(_not_none, values)) if kinds == {int} else [
            v for v in values if type(v) is int]
    return -2**63 < min(ints) and max(ints) < 2**63  # min/max: C loops, not a generator


def _number_block(columns: list[tuple[Feature, list[Any], pl.DataType]]
                  ) -> tuple[np.ndarray, dict[int, int]]:
    """Columns of JSON numbers at once (one numpy pass for all of them, as numpy's cost
    per call outweighs a row or a few), by the scalar rules: NaN is missing, infinity
    refused, an int column takes whole numbers within 64 bits. Returns the values (a row
    per column) and {column: first bad row} for the columns with a value that does not
    fit."""
    block = np.array([values for _, values, _ in columns], dtype=np.float64)  # None: NaN
    bad = np.isinf(block)
    whole = [index for index, (feature, _, dtype) in enumerate(columns)
             if feature.type == "int" and not dtype.is_integer()]
    if whole:
        sub = block[whole]
        bad[whole] |= np.isfinite(sub) & ((sub != np.floor(sub)) | (np.abs(sub) >= 2.0**63))
    if not bad.any():
        return block, {}
    return block, {int(index): int(np.argmax(bad[index]))
                   for index in np.flatnonzero(bad.any(axis=1))}


@dataclass(frozen=True)
class JsonRows:
    """A request's rows as they were sent: an object per row (`dataframe_records`,
    `instances`), or a list per column (`dataframe_split`, an object of columns), which
    are read by column as they come, never turned into an object per row first."""

    records: list[dict[str, Any]] | None = None
    columns: dict[str, list[Any]] | None = None

    @property
    def height(self) -> int:
        if self.records is not None:
            return len(self.records)
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def first_names(self) -> Collection[str]:
        """The columns of the first row (every row of a column form has them all)."""
        if self.records is not None:
            return self.records[0].keys() if self.records else ()
        return self.columns.keys() if self.columns else ()

    def first(self) -> dict[str, Any]:
        if self.records is not None:
            return self.records[0]
        return {name: values[0] for name, values in (self.columns or {}).items()}

    def values(self, names: list[str]) -> list[list[Any]]:
        """These columns' values, in one pass over the rows; a row without one of them
        is refused by its number."""
        if self.columns is not None:
            missing = next((name for name in names if name not in self.columns), None)
            if missing is not None:
                raise ScoringRejected(f"row 1: missing column {missing!r}")
            return [self.columns[name] for name in names]
        rows = self.records or []
        try:
            gathered = map(itemgetter(*names), rows) if len(names) > 1 else (
                (row[names[0]],) for row in rows)
            return [list(column) for column in zip(*gathered, strict=True)] or \
                [[] for _ in names]
        except KeyError:
            name = next(n for n in names if any(n not in r for r in rows))
            index = next(i for i, row in enumerate(rows, start=1) if name not in row)
            raise ScoringRejected(f"row {index}: missing column {name!r}") from None

    @classmethod
    def of(cls, records: list[dict[str, Any]]) -> JsonRows:
        return cls(records=records)


@dataclass(frozen=True)
class JsonRequest:
    """A JSON scoring request: its rows and what its MLflow-style `params` ask for."""

    rows: JsonRows
    explain: bool = False


def json_request(body: bytes, content_type: str) -> JsonRequest | None:
    """A JSON body in any of MLflow's input forms, or None for CSV."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "text/csv":
        return None
    if kind != "application/json":
        raise ScoringRejected(
            f"content type {kind or '(none)'!r} is not supported; use application/json "
            "or text/csv", status=415, error_code="BAD_REQUEST")
    payload = _json(body)
    if not isinstance(payload, dict):
        raise ScoringRejected("expected a JSON object with one of dataframe_split, "
                              "dataframe_records, instances or inputs")
    forms = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs")
             if k in payload]
    if len(forms) != 1:
        raise ScoringRejected("expected exactly one of dataframe_split, dataframe_records, "
                              f"instances or inputs; got {sorted(payload) or 'none'}")
    data = payload[forms[0]]
    rows = _split_rows(data) if forms[0] == "dataframe_split" else _record_rows(data, forms[0])
    return JsonRequest(rows, _explain(payload.get("params")))


def _explain(params: Any) -> bool:
    """`params.explain`, the one request param the server knows; any other is refused
    rather than ignored, so a misspelt one does not silently do nothing."""
    if params is None:
        return False
    if not isinstance(params, dict):
        raise ScoringRejected('params must be a JSON object, such as {"explain": true}')
    unknown = sorted(set(params) - {"explain"})
    if unknown:
        raise ScoringRejected(f"unknown request param {unknown[0]!r}; the server knows: "
                              "explain")
    explain = params.get("explain", False)
    if not isinstance(explain, bool):
        raise ScoringRejected(f"params.explain must be true or false, got {_shown(explain)}")
    return explain


# A request read for scoring: the model's input matrix, its typed rows as JSON for the
# log, and its values of each key column the log keeps (the id, then segment columns) as
# text. A plain tuple: a NamedTuple's constructor cost a one-row request 0.3 µs.
ReadRows = tuple[np.ndarray, str, Keys]


def key_text(value: Any) -> str | None:
    """A key's value as the log keeps it: text as sent, a number or bool as a CSV cell
    would hold it."""
    return value if value is None or type(value) is str else json_text(value)


def small_request(rows: JsonRows, spec: FeatureSpec, keys: tuple[str, ...] = ()) -> ReadRows:
    """A request of a few rows read one value at a time by the same rules as
    `typed_features` (no polars query); `keys` as `RowReader.keys`."""
    if not rows.height:
        raise ScoringRejected("no rows to score")
    missing = [name for name in spec.names if name not in rows.first_names()]
    if missing:
        raise ScoringRejected(f"missing feature column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(map(repr, missing))}; the model needs "
                              f"{', '.join(spec.names)}")
    matrix = np.empty((rows.height, len(spec.features)), dtype=np.float64)
    columns = [(feature, *typed) for feature, typed
               in zip(spec.features, _json_columns(spec.names, rows), strict=True)]
    numeric = [position for position, (feature, _, dtype) in enumerate(columns)
               if feature.type in {"int", "float"} and dtype.is_numeric()]
    bad_rows: dict[int, int] = {}
    with_nan: set[int] = set()
    if numeric:
        block, bad = _number_block([columns[position] for position in numeric])
        matrix[:, numeric] = block.T
        bad_rows = {numeric[index]: row for index, row in bad.items()}
        with_nan = {numeric[index] for index in np.flatnonzero(np.isnan(block).any(axis=1))}
    logged: dict[str, list[Any]] = {}
    for position, (feature, values, dtype) in enumerate(columns):  # problems in column order
        if position in bad_rows:
            row = bad_rows[position]
            expected = parse_column(feature.name, feature.type, dtype).expected
            raise ScoringRejected(f"row {row + 1}, column {feature.name!r}: "
                                  f"{_shown(values[row])} is not {expected}")
        if position in numeric:
            logged[feature.name] = _logged_numbers(
                values, dtype, feature.type == "float", position in with_nan,
                matrix[:, position])
            continue
        read = scalar_reader(feature.type, feature.categories, feature.closed)
        codes = spec.category_codes.get(feature.name)
        assert read is not None  # every feature type has a scalar reader
        # Levels repeat: each distinct value is read once. Text (or null) is its own key;
        # other values are keyed by type too, as 1 == True == 1.0 in a dict.
        levels: list[Any] = values if dtype == pl.String else list(
            zip(map(type, values), values, strict=True))
        seen: dict[Any, tuple[Any, float]] = {}
        for key in dict.fromkeys(levels):
            value = key if dtype == pl.String else key[1]
            typed = read(value)
            if typed is FAILED:
                expected = parse_column(feature.name, feature.type, dtype,
                                        levels=feature.categories,
                                        closed=feature.closed).expected
                raise ScoringRejected(f"row {levels.index(key) + 1}, column {feature.name!r}: "
                                      f"{_shown(value)} is not {expected}")
            seen[key] = (None, np.nan) if typed is MISSING else (typed, codes.get(
                typed, np.nan) if codes is not None else float(typed))
        if all(key == typed for key, (typed, _) in seen.items()):
            logged[feature.name] = values  # every value reads as itself (known text)
        else:
            logged[feature.name] = [seen[key][0] for key in levels]
        codes_of = {key: code for key, (_, code) in seen.items()}
        matrix[:, position] = list(map(codes_of.__getitem__, levels))
    for name in keys:
        if name not in spec.names and name in rows.first_names():
            [sent] = rows.values([name])  # logged as text, as sent (the id, segments)
            logged[name] = [None if v is None else json_text(v) for v in sent]
    # Rows as objects (what drift reads back): a Struct per row, built in C and encoded
    # as the object a dict would be, a third of the time of 100 dicts.
    record = _record_type(tuple(logged))
    return (matrix, LOG_ENCODER.encode(list(map(record, *logged.values()))).decode(),
            tuple(_key_texts(logged.get(name), rows.height) for name in keys))


def _key_texts(values: list[Any] | None, height: int) -> list[str | None]:
    if values is None:
        return [None] * height
    return values if all(value is None or type(value) is str for value in values) else \
        list(map(key_text, values))


LOG_ENCODER = msgspec.json.Encoder()  # the log's rows, both readers; NaN as null


@lru_cache(maxsize=64)
def _record_type(names: tuple[str, ...]) -> type[msgspec.Struct]:
    """A row of the log with these columns, in this order (any text as a name)."""
    return msgspec.defstruct("Record", [(f"f{i}", object) for i in range(len(names))],
                             rename={f"f{i}": name for i, name in enumerate(names)},
                             gc=False)


def _logged_numbers(values: list[Any], dtype: pl.DataType, floats: bool, with_nan: bool,
                    read: np.ndarray) -> list[Any]:
    """A numeric feature's JSON numbers as the log holds them: floats or ints as the
    feature is typed, NaN and null as null. `read` is the column as the model gets it."""
    if floats:  # NaN where missing, which the log's JSON writes as null
        floated: list[Any] = read.tolist()
        return floated
    if dtype == pl.Int64:  # JSON integers and nulls: logged as sent
        return values
    if not with_nan:
        return list(map(int, values))
    return [None if v is None or v != v else int(v) for v in values]


def _split_rows(data: Any) -> JsonRows:
    if not isinstance(data, dict) or "columns" not in data or "data" not in data:
        raise ScoringRejected("dataframe_split needs 'columns' and 'data'")
    columns, values = data["columns"], data["data"]
    if not isinstance(columns, list) or not isinstance(values, list):
        raise ScoringRejected("dataframe_split 'columns' and 'data' must be lists")
    width = len(columns)
    for index, row in enumerate(values, start=1):
        if type(row) is not list or len(row) != width:
            raise ScoringRejected(f"dataframe_split row {index}: expected a list of "
                                  f"{width} values")
    by_column = [list(column) for column in zip(*values, strict=True)] if values else \
        [[] for _ in columns]
    return JsonRows(columns=dict(zip(map(str, columns), by_column, strict=True)))


def _record_rows(data: Any, form: str) -> JsonRows:
    if isinstance(data, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise ScoringRejected(f"{form} as an object needs equally long lists per column")
        return JsonRows(columns={str(k): v for k, v in data.items()})
    if not isinstance(data, list):
        raise ScoringRejected(f"{form} must be a list of rows or an object of columns")
    for index, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise ScoringRejected(f"{form} row {index}: expected an object of "
                                  "column: value")
    return JsonRows(records=data)


def _csv_frame(body: bytes) -> pl.DataFrame:
    """The body read as ingest and `mlyard predict` read a file with these bytes."""
    try:
        return read_csv_body(body)[0]
    except IngestRefused as refusal:
        raise ScoringRejected(refusal.msg) from None
    except pl.exceptions.PolarsError as exc:
        raise ScoringRejected(f"body is not readable CSV: {str(exc).splitlines()[0]}") from None
