"""The rows the server logged, read back for joining labels: each with its id, its
prediction and its segment columns.

The server keeps the id and the segment columns in columns of their own
(`mlyard.storage.prediction_files.key_column`), so only the outputs' JSON is decoded;
logs written before it did (or by a server without an id column) are read from the rows'
JSON, in bulk by polars, or request by request where polars cannot (NaN in an old log,
class probabilities).
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any

import orjson
import polars as pl

from mlyard.core.workspace import Workspace
from mlyard.storage import prediction_files
from mlyard.storage.prediction_files import key_column


def logged_predictions(ws: Workspace, model: str, id_column: str,
                       carried: tuple[str, ...] = ()) -> pl.DataFrame:
    """Every logged row that carried an id: (ts, version, id, prediction, and the
    `carried` columns as logged, null where a request did not send one)."""
    keyed, unkeyed = prediction_files.read_keyed(ws.catalog.predictions_dir, model,
                                                 id_column, carried)
    frames = []
    if keyed is not None:
        frames.append(_from_keys(pl.DataFrame(pl.from_arrow(keyed)), id_column, carried))
    if unkeyed is not None:
        try:  # the log's JSON decoded by polars, in bulk
            frames.append(_decoded(pl.DataFrame(pl.from_arrow(unkeyed)), id_column, carried))
        except pl.exceptions.PolarsError:  # NaN in an old log, or class probabilities
            frames.append(_read_by_request(unkeyed, id_column, carried))
    if not frames:
        return pl.DataFrame(schema={"ts": pl.Float64, "version": pl.Int64,
                                    id_column: pl.String, "prediction": pl.Float64,
                                    **dict.fromkeys(carried, pl.String)})
    return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]


def _from_keys(requests: pl.DataFrame, id_column: str, carried: tuple[str, ...]
               ) -> pl.DataFrame:
    """`logged_predictions` from the key columns the server kept beside the rows: only
    the outputs' JSON is decoded, never the rows'."""
    names = dict.fromkeys([id_column, *carried])
    rows = requests.select(
        "ts", "version", _outputs(requests.get_column("outputs")),
        *(pl.col(key_column(name)).alias(name) if key_column(name) in requests.columns
          else pl.lit(None, pl.List(pl.String)).alias(name) for name in names))
    # The id's list has a value per scored row, as does the outputs'.
    rows = rows.with_columns(pl.col(name).fill_null(pl.col(id_column).list.eval(
        pl.lit(None, pl.String))) for name in carried if name != id_column)
    return rows.explode(["outputs", *names]).rename({"outputs": "prediction"}).select(
        pl.col("ts").cast(pl.Float64), pl.col("version").cast(pl.Int64), id_column,
        "prediction", *carried).filter(pl.col(id_column).is_not_null())


def _outputs(outputs: pl.Series) -> pl.Series:
    """The outputs' JSON: a number per row, or (classes) a list of probabilities."""
    try:
        return outputs.str.json_decode(pl.List(pl.Float64()))
    except pl.exceptions.PolarsError:
        return outputs.str.json_decode(pl.List(pl.List(pl.Float64())))


def _decoded(requests: pl.DataFrame, id_column: str, carried: tuple[str, ...]
             ) -> pl.DataFrame:
    """`logged_predictions` from a log written before the server kept key columns (or by
    one without an id column): the rows' JSON decoded in bulk, ~1 s for 1,000,000 rows
    where request by request in Python took 10 s."""
    fields = {id_column: pl.String(), **{name: pl.String() for name in carried}}
    rows = requests.select(
        "ts", "version",
        pl.col("inputs").str.json_decode(pl.List(pl.Struct(fields))),
        pl.col("outputs").str.json_decode(pl.List(pl.Float64())))
    # As before: a request whose first row has no id is left out; rows beyond the
    # shorter of inputs and outputs too.
    count = pl.min_horizontal(pl.col("inputs").list.len(), pl.col("outputs").list.len())
    rows = rows.filter(pl.col("inputs").list.first().struct.field(id_column).is_not_null()) \
        .with_columns(pl.col("inputs").list.head(count), pl.col("outputs").list.head(count)) \
        .explode(["inputs", "outputs"]).unnest("inputs").rename({"outputs": "prediction"})
    return rows.select(pl.col("ts").cast(pl.Float64), pl.col("version").cast(pl.Int64),
                       id_column, "prediction", *carried).filter(
        pl.col(id_column).is_not_null())


def _read_by_request(requests: pl.DataFrame, id_column: str,
                     carried: tuple[str, ...]) -> pl.DataFrame:
    stamps, versions, ids, outputs = [], [], [], []
    extra: dict[str, list[str | None]] = {name: [] for name in carried}
    for ts, version, inputs, output in requests.select(
            "ts", "version", "inputs", "outputs").iter_rows():
        rows = _json(inputs)
        if not rows or id_column not in rows[0]:
            continue
        values = _json(output)
        count = min(len(rows), len(values))
        rows = rows[:count]
        stamps.extend([ts] * count)
        versions.extend([version] * count)
        ids.extend([value if type(value) is str else str(value)
                    for value in map(itemgetter(id_column), rows)])
        outputs.extend(values[:count])
        for name, column in extra.items():
            column.extend([None if sent is None else sent if type(sent) is str else str(sent)
                           for sent in (row.get(name) for row in rows)])
    return pl.DataFrame({"ts": stamps, "version": versions, id_column: ids,
                         "prediction": pl.Series(outputs, dtype=pl.List(pl.Float64))
                         if outputs and isinstance(outputs[0], list) else outputs, **extra},
                        schema_overrides={"ts": pl.Float64, "version": pl.Int64,
                                          id_column: pl.String,
                                          **dict.fromkeys(carried, pl.String)})


def _json(text: str) -> Any:
    """orjson for what the log wrote; the json module for NaN in logs of old versions."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
