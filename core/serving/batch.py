"""`mlyard predict`: score a CSV or Parquet file in batches into a Parquet file.

Batches keep memory flat, so a file larger than memory scores as well. Values are
checked against the model card exactly as the server checks them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from mlyard.core.data.reader import read_batches
from mlyard.core.data.sniff import sniff
from mlyard.core.models.features import FeatureSpec
from mlyard.core.models.loading import load_model
from mlyard.core.serving.request import ScoringRejected
from mlyard.core.workspace import Workspace


def predict_file(ws: Workspace, ref: str, source: Path, target: Path) -> int:
    """Write every input row with its prediction; return the number of rows scored."""
    model = load_model(ws, ref)
    sniffed = sniff(source)
    tmp = target.with_name(target.name + ".partial")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for batch in read_batches(sniffed):
            features = _typed(batch, model.spec, rows, source)
            output = model.predict(features)
            table = batch.with_columns(_prediction_columns(output, model.spec)).to_arrow()
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


def _prediction_columns(output: np.ndarray, spec: FeatureSpec) -> list[pl.Series]:
    if output.ndim == 2:
        labels = spec.classes or [str(i) for i in range(output.shape[1])]
        return [pl.Series(f"prediction_{label}", output[:, i]) for i, label in enumerate(labels)]
    return [pl.Series("prediction", output)]
