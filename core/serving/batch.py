"""`mlyard predict` and `mlyard explain`: score a CSV or Parquet file in batches into a
Parquet file.

Batches keep memory flat, so a file larger than memory scores as well. Values are read
by the rules ingest and the server use (core/data/values.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from mlyard.core.data.reader import BATCH_ROWS, read_typed_batches
from mlyard.core.data.sniff import sniff
from mlyard.core.data.values import parse_column
from mlyard.core.models.explain import Explanations, explain_matrix
from mlyard.core.models.features import FeatureSpec, encode
from mlyard.core.models.loading import load_model
from mlyard.core.serving.request import ScoringRejected, typed_features
from mlyard.core.workspace import Workspace

# Input rows and their checked features in; the same rows and their predictions out, in
# the order they came. Scoring here maps each batch; scoring on a cluster keeps several
# in flight.
Batches = Iterator[tuple[pl.DataFrame, pl.DataFrame]]
Scorer = Callable[[Batches], Batches]


@dataclass
class Scored:
    """What a scored file came to: its rows, and what was noticed reading it (a row
    index column dropped)."""

    rows: int
    notes: list[str] = field(default_factory=list)


def predict_file(ws: Workspace, ref: str, source: Path, target: Path) -> Scored:
    """Write every input row with its prediction."""
    model = load_model(ws, ref)

    def score(batches: Batches) -> Batches:
        for rows, features in batches:
            yield rows, prediction_frame(model.predict(features), model.spec)

    return write_scored(model.spec, source, target, score)


def explain_file(ws: Workspace, ref: str, source: Path, target: Path) -> Scored:
    """`predict_file` with each row's feature contributions and base value beside its
    prediction (see core/models/explain.py)."""
    model = load_model(ws, ref)

    def score(batches: Batches) -> Batches:
        for rows, features in batches:
            matrix = encode(features, model.spec)
            predictions = prediction_frame(model.predict_matrix(matrix), model.spec)
            yield rows, pl.concat([predictions, explanation_frame(
                explain_matrix(model, matrix))], how="horizontal")

    return write_scored(model.spec, source, target, score)


def write_scored(spec: FeatureSpec, source: Path, target: Path, score: Scorer,
                 batch_rows: int = BATCH_ROWS) -> Scored:
    """Read `source` in batches checked against the model card, score them with `score`
    and write each input row with its predictions to `target`.

    Values are read by ingest's rules: a Parquet column keeps its type, a CSV column the
    contract's type at training (text when the contract does not know it). The output is
    written under a `.partial` name and renamed only when every batch is done, so a
    failure at any point (a bad value, a lost worker) leaves no output.
    """
    tmp = target.with_name(target.name + ".partial")
    writer: pq.ParquetWriter | None = None
    rows = 0
    sniffed = sniff(source)

    def checked() -> Batches:
        offset = 0
        for batch in read_typed_batches(sniffed, batch_rows):
            typed = typed_features(batch, spec, f"{source}: ", offset + 1)
            yield _typed_inputs(batch, typed, spec, source, offset), typed
            offset += batch.height

    try:
        for batch, predictions in score(checked()):
            table = batch.with_columns(predictions.get_columns()).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            rows += batch.height
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:
        raise ScoringRejected(f"{source}: no rows to score")
    writer.close()
    tmp.replace(target)
    return Scored(rows, sniffed.warnings)


def _typed_inputs(batch: pl.DataFrame, features: pl.DataFrame, spec: FeatureSpec,
                  source: Path, offset: int) -> pl.DataFrame:
    """The input columns with the features as the model read them and every other
    column the contract knows typed the same way."""
    typed: list[pl.Expr | pl.Series] = list(features.get_columns())
    for name, column in spec.inputs.items():
        if name in batch.columns and name not in features.columns:
            parsed = parse_column(name, column.type, batch.schema[name],
                                  time_format=column.format)
            bad = batch.with_row_index("__row", offset=offset + 1).filter(parsed.failed())
            if bad.height:
                row, value = bad.select("__row", name).row(0)
                raise ScoringRejected(f"{source}: row {row}, column {name!r}: {value!r} is "
                                      f"not {parsed.expected}")
            typed.append(parsed.typed.alias(name))
    return batch.with_columns(typed)


def explanation_frame(explained: Explanations) -> pl.DataFrame:
    """Contributions as columns: `contribution_<feature>` and `base_value`, or per class
    `contribution_<class>_<feature>` and `base_value_<class>`."""
    columns = []
    for index, label in enumerate(explained.outputs or [None]):
        suffix = "" if label is None else f"_{label}"
        columns.append(pl.Series(f"base_value{suffix}",
                                 np.full(len(explained.contributions),
                                         explained.base_value[index])))
        columns.extend(pl.Series(f"contribution{suffix}_{name}",
                                 explained.contributions[:, index, position])
                       for position, name in enumerate(explained.features))
    return pl.DataFrame(columns)


def prediction_frame(output: np.ndarray, spec: FeatureSpec) -> pl.DataFrame:
    """A model's output as columns: `prediction`, or `prediction_<class>` per class."""
    if output.ndim == 2:
        labels = spec.classes or [str(i) for i in range(output.shape[1])]
        return pl.DataFrame([pl.Series(f"prediction_{label}", output[:, i])
                             for i, label in enumerate(labels)])
    return pl.DataFrame([pl.Series("prediction", output)])
