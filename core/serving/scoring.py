"""One request scored by one model: parsed, checked against its card, predicted, and
explained when asked; shared by the server's request path and its shadow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
import pyarrow as pa

from mlyard.core.models.explain import explain_matrix
from mlyard.core.models.features import encode
from mlyard.core.models.loading import LoadedModel
from mlyard.core.serving.prediction_log import KEYS_NOW, Inputs, Keys
from mlyard.core.serving.request import (
    ScoringRejected,
    json_request,
    parse_body,
    rows_frame,
    small_request,
    typed_features,
)
from mlyard.core.serving.row_reader import RowReader

# Requests of up to this many JSON rows are read one value at a time (about 7 µs a
# row; measured faster than the polars path up to 500 rows), larger ones and CSV through
# polars (a millisecond or more, but it leaves the GIL to other requests).
SMALL_REQUEST = 1000


def score_rows(body: bytes, content_type: str, model: LoadedModel, reader: RowReader,
               may_explain: bool = True) -> Scored | ScoringRejected:
    """Parse, check and score one request: the rows to log, the predictions and any
    explanations asked for (unless `may_explain` is off, as for a shadow), or why the
    request cannot be scored (the server's 4xx answer)."""
    wanted = model.spec.names + list(reader.passed)
    try:
        request = json_request(body, content_type)
        rows = request.rows if request is not None else None
        explain = may_explain and request is not None and request.explain
        if rows is not None and 0 < rows.height <= SMALL_REQUEST:
            read = reader.read(rows.first()) if rows.height == 1 and not explain else None
            matrix, logged, keys = read or small_request(rows, model.spec, reader.keys)
            output = model.predict_matrix(matrix, threads=1)
            values = output.tolist() if isinstance(output, np.ndarray) else list(output)
            return Scored(logged, values, keys,
                          _explained(model, matrix) if explain else None)
        # JSON parsed above is not parsed again; CSV is read as a frame.
        sent = rows_frame(rows, wanted) if rows is not None else parse_body(body, content_type,
                                                                          wanted)
        frame = typed_features(sent, model.spec)
        matrix = encode(frame, model.spec)
        output = model.predict_matrix(matrix, threads=1)
        extra = _explained(model, matrix) if explain else None
    except ScoringRejected as rejected:
        return rejected
    except RecursionError:
        return ScoringRejected("the request nests values too deeply; send rows of plain "
                               "values")
    except (ValueError, TypeError, pl.exceptions.PolarsError, lgb.basic.LightGBMError) as exc:
        return ScoringRejected(f"cannot score these rows: {exc}")
    values = output.tolist() if isinstance(output, np.ndarray) else list(output)
    # Logged (never scored): labels arriving later are joined by id, and figures broken
    # down by segment.
    frame = frame.with_columns([sent.get_column(name).cast(pl.String)
                                for name in reader.passed if name in sent.columns])
    keys = tuple(_key_values(frame, name) for name in reader.keys)
    return Scored(frame, values, keys, extra)


@dataclass(frozen=True)
class Scored:
    """A scored request: its typed rows for the log, the predictions, its key columns
    for the log (`RowReader.keys`), and the explanations when the request asked for
    them (`params.explain`)."""

    inputs: Inputs
    values: list[Any]
    keys: Keys
    explanations: dict[str, Any] | None = None


def _key_values(frame: pl.DataFrame, name: str) -> list[str | None] | pa.Array:
    """A key column's values as text for the log: Arrow for a large request, as the log
    would make them (`PredictionLog.add`), a list for a few rows."""
    if name not in frame.columns:
        return [None] * frame.height
    text = frame.get_column(name).cast(pl.String)
    return text.to_arrow().cast(pa.string()) if frame.height > KEYS_NOW else text.to_list()


def _explained(model: LoadedModel, matrix: np.ndarray) -> dict[str, Any]:
    explained = explain_matrix(model, matrix, threads=1)
    return {"explanations": explained.rows_json(), "base_value": explained.base_value_json()}
