"""SQL for the prediction log that serving writes and monitoring reads."""

from __future__ import annotations

import duckdb
import pyarrow as pa

Connection = duckdb.DuckDBPyConnection

PREDICTION_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", pa.float64()),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("rows", pa.int32()),
        ("inputs", pa.string()),
        ("outputs", pa.string()),
    ]
)


def insert_predictions(con: Connection, batch: pa.Table) -> None:
    con.register("prediction_batch", batch)
    try:
        con.execute("INSERT INTO predictions SELECT * FROM prediction_batch")
    finally:
        con.unregister("prediction_batch")


def recent_predictions(con: Connection, model: str,
                       limit: int) -> list[tuple[str, float, int, int, str, str]]:
    """The newest logged requests: (request id, ts, version, rows, inputs, outputs)."""
    return con.execute(
        "SELECT request_id, ts, version, rows, inputs, outputs FROM predictions "
        "WHERE model = ? ORDER BY ts DESC LIMIT ?", [model, limit]).fetchall()


def count_predictions(con: Connection, model: str) -> int:
    """Rows scored, over every logged request."""
    row = con.execute("SELECT coalesce(sum(rows), 0) FROM predictions WHERE model = ?",
                      [model]).fetchone()
    return int(row[0]) if row else 0
