"""Catalog rows of one run (and its model version) as plain data, out and back in.

Export reads every row a run owns; import writes them in one transaction, so a bundle
is either wholly in the catalog or not at all.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mlyard.storage.engine import Connection
from mlyard.storage.errors import CatalogError

# table -> the column that ties its rows to a run
RUN_TABLES = {"runs": "run_id", "params": "run_id", "tags": "run_id", "metrics": "run_id",
              "latest_metrics": "run_id", "artifacts": "run_id", "run_inputs": "run_id",
              "run_logs": "run_id"}


def export_rows(con: Connection, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row a run owns, the dataset versions it used and its model versions."""
    rows = {table: select_rows(con, f"SELECT * FROM {table} WHERE {column} = ?", [run_id])
            for table, column in RUN_TABLES.items()}
    rows["dataset_versions"] = select_rows(
        con, "SELECT v.* FROM dataset_versions v JOIN run_inputs i "
        "ON i.dataset = v.dataset AND i.seq = v.seq WHERE i.run_id = ?", [run_id])
    rows["datasets"] = select_rows(
        con, "SELECT * FROM datasets WHERE name IN (SELECT dataset FROM run_inputs "
        "WHERE run_id = ?)", [run_id])
    rows["model_versions"] = select_rows(con, "SELECT * FROM model_versions WHERE run_id = ?",
                                     [run_id])
    return rows


def import_rows(con: Connection, rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Insert a bundle's rows; dataset and model versions get this catalog's numbers.

    Raises CatalogError when the run is already here.
    """
    run_id = rows["runs"][0]["run_id"]
    if con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone():
        raise CatalogError(f"run {run_id[:8]} is already in this workspace")
    for dataset in rows["datasets"]:
        add_dataset(con, dataset)
    renumbered = {}
    for version in rows["dataset_versions"]:
        renumbered[(version["dataset"], version["seq"])] = add_dataset_version(con, version)[0]
    for table in RUN_TABLES:
        insert_rows(con, table, [{**row, "seq": renumbered[(row["dataset"], row["seq"])]}
                                 if table == "run_inputs" else row for row in rows[table]])
    models = []
    for version in rows["model_versions"]:
        (number,) = con.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions "
                                "WHERE model = ?", [version["model"]]).fetchone() or (1,)
        insert_row(con, "model_versions", {**version, "version": number})
        models.append(f"{version['model']}/{number}")
    return {"run_id": run_id, "model_versions": models,
            "dataset_versions": [f"{d}:v{s}" for (d, _), s in renumbered.items()]}


def add_dataset(con: Connection, dataset: dict[str, Any]) -> None:
    """Another workspace's dataset, unless this catalog has one of that name (whose
    contract stays)."""
    con.execute("INSERT INTO datasets VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                [dataset["name"], dataset["created_at"], dataset["contract"]])


def add_dataset_version(con: Connection, version: dict[str, Any]) -> tuple[int, bool]:
    """The number of this dataset version here (matched by its source's hash, or the next
    one), and whether it was added now."""
    existing = con.execute("SELECT seq FROM dataset_versions WHERE dataset = ? AND "
                           "source_hash = ?", [version["dataset"], version["source_hash"]]
                           ).fetchone()
    if existing:
        return int(existing[0]), False
    (seq,) = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM dataset_versions WHERE "
                         "dataset = ?", [version["dataset"]]).fetchone() or (1,)
    insert_row(con, "dataset_versions", {**version, "seq": seq})
    return int(seq), True


def select_rows(con: Connection, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def insert_row(con: Connection, table: str, row: dict[str, Any]) -> None:
    insert_rows(con, table, [row])


def insert_rows(con: Connection, table: str, rows: list[dict[str, Any]],
                replace: bool = False) -> None:
    """Insert rows from another workspace in one statement (`replace`: over the rows with
    their keys); their column names must be the table's (never trusted as SQL) and the
    same in every row."""
    if not rows:
        return
    columns = list(rows[0])
    known = [d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise CatalogError(f"a row for table {table} has unknown column {unknown[0]!r}")
    if any(list(row) != columns for row in rows):
        raise CatalogError(f"the rows for table {table} do not all have the same columns")
    try:  # the types are the table's: DuckDB casts on insert, and refuses what does not fit
        incoming = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CatalogError(f"a row for table {table} has a value of the wrong type "
                           f"({exc})") from None
    con.register("incoming_rows", incoming)
    try:
        con.execute(f"INSERT {'OR REPLACE ' if replace else ''}INTO {table} "
                    f"({', '.join(columns)}) SELECT {', '.join(columns)} FROM incoming_rows")
    finally:
        con.unregister("incoming_rows")
