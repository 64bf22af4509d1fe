"""`mlyard predict`: score a CSV or Parquet file in batches into a Parquet file.

Batches keep memory flat, so a file larger than memory scores as well. Values are
checked against the model card exactly as the server checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from mlyard.core.data.reader import BATCH_ROWS, read_batches
from mlyard.core.data.sniff import sniff
from mlyard.core.models.features import FeatureSpec
from mlyard.core.models.loading import load_model
from mlyard.core.serving.request import ScoringRejected
from mlyard.core.workspace import Workspace

# Input rows and their checked features in; the same rows and their predictions out, in
# the order they came. Scoring here maps each batch; scoring on a cluster keeps several
# in flight.
Batches = Iterator[tuple[pl.DataFrame, pl.DataFrame]]
Scorer = Callable[[Batches], Batches]


def predict_file(ws: Workspace, ref: str, source: Path, target: Path) -> int:
    """Write every input row with its prediction; return the number of rows scored."""
    model = load_model(ws, ref)

    def score(batches: Batches) -> Batches:
        for rows, features in batches:
            yield rows, prediction_frame(model.predict(features), model.spec)

    return write_scored(model.spec, source, target, score)


def write_scored(spec: FeatureSpec, source: Path, target: Path, score: Scorer,
                 batch_rows: int = BATCH_ROWS) -> int:
    """Read `source` in batches checked against the model card, score them with `score`
    and write each input row with its predictions to `target`; return the row count.

    The output is written under a `.partial` name and renamed only when every batch is
    done, so a failure at any point (a bad value, a lost worker) leaves no output.
    """
    tmp = target.with_name(target.name + ".partial")
    writer: pq.ParquetWriter | None = None
    rows = 0

    def checked() -> Batches:
        offset = 0
        for batch in read_batches(sniff(source), batch_rows):
            yield batch, _typed(batch, spec, offset, source)
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
    return rows


def _typed(batch: pl.DataFrame, spec: FeatureSpec, offset: int, source: Path) -> pl.DataFrame:
    missing = [f.name for f in spec.features if f.name not in batch.columns]
    if missing:
        raise ScoringRejected(f"{source}: missing feature column{'s' if len(missing) > 1 else ''}"
                              f" {', '.join(map(repr, missing))}")
    columns = []
    for feature in spec.features:
        text = pl.col(feature.name).str.strip_chars()
        present = text.is_not_null() & (text != "")
        if feature.type in {"int", "float"}:
            typed: pl.Expr = pl.when(present).then(text.cast(pl.Float64, strict=False))
            bad = present & (typed.is_null() | typed.is_infinite() | typed.is_nan())
        elif feature.type == "bool":
            lower = text.str.to_lowercase()
            typed = pl.when(lower.is_in(["true", "1", "yes"])).then(True) \
                .when(lower.is_in(["false", "0", "no"])).then(False)
            bad = present & typed.is_null()
        else:
            typed = pl.when(present).then(pl.col(feature.name))
            bad = present & ~pl.col(feature.name).is_in(feature.categories or [])
        first_bad = batch.with_row_index("__row", offset=offset + 1).filter(bad).head(1)
        if first_bad.height:
            row, value = first_bad.select("__row", feature.name).row(0)
            raise ScoringRejected(f"{source}: row {row}, column {feature.name!r}: {value!r} "
                                  f"does not fit the model's {feature.type} feature")
        columns.append(typed.alias(feature.name))
    return batch.select(columns)


def prediction_frame(output: np.ndarray, spec: FeatureSpec) -> pl.DataFrame:
    """A model's output as columns: `prediction`, or `prediction_<class>` per class."""
    if output.ndim == 2:
        labels = spec.classes or [str(i) for i in range(output.shape[1])]
        return pl.DataFrame([pl.Series(f"prediction_{label}", output[:, i])
                             for i, label in enumerate(labels)])
    return pl.DataFrame([pl.Series("prediction", output)])
