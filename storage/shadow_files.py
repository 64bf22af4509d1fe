"""A shadow's answers beside the champion's, one record per request, kept as the
prediction log is (`prediction_files`: append-only Parquet, a folder per model and day,
compacted and dropped the same way) under `.mlyard/logs/shadow/`.

A record carries both models' outputs and scoring times, so comparing them reads one
small log and never joins the (much larger) prediction log's inputs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlyard.storage import prediction_files

SHADOW_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),  # the champion's, as its prediction log has it
        ("ts", pa.float64()),
        ("model", pa.string()),
        ("champion_version", pa.int32()),
        ("version", pa.int32()),  # the shadow's
        ("rows", pa.int32()),
        # The rows' ids ([data] id_column) as a JSON array, so labels that arrive later
        # can be joined; null when requests carry none.
        ("ids", pa.string()),
        ("champion_outputs", pa.string()),  # JSON arrays, one element per row
        ("outputs", pa.string()),  # null when the shadow could not score the request
        ("champion_seconds", pa.float64()),  # parsing and scoring, each model alone
        ("seconds", pa.float64()),
        ("error", pa.string()),  # why the shadow could not score it
    ]
)


def write(root: Path, batch: pa.Table) -> list[Path]:
    return prediction_files.write(root, batch, schema=SHADOW_SCHEMA)


def read(root: Path, model: str, since: float = 0.0, until: float | None = None
         ) -> pa.Table:
    """Every record of `model` logged in [since, until), oldest first."""
    until = until or time.time() + 1
    tables = [pq.read_table(path, filters=[("ts", ">=", since), ("ts", "<", until)])
              for path in prediction_files.files(root, model, since)]
    if not tables:
        return SHADOW_SCHEMA.empty_table()
    return pa.concat_tables([t.cast(SHADOW_SCHEMA) for t in tables]).sort_by("ts")
