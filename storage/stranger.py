"""Opening another workspace's catalog, which is a stranger's file.

A DuckDB file carries SQL of its own: a view over `read_csv('/proc/self/environ')`, a
macro, a column default or a check that calls a function run when we read or write it.
So a catalog mlyard did not make here (a folder remote of `mlyard sync`, the workspace a
sync agent serves) is opened on a connection of its own with DuckDB's access to files,
the environment and extensions turned off and that setting locked; its schema is brought
up to date, and before any of its rows is read, every object in it is held against what
mlyard's own migrations create: a view, a macro, a type, or a table, column, default,
index or constraint mlyard would not have made, and nothing is read at all.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from mlyard.storage.engine import Connection
from mlyard.storage.errors import CatalogError
from mlyard.storage.migrations import apply_migrations

STRANGER_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,  # no files, no environment, no network
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "memory_limit": "64MB",
    "lock_configuration": True,  # and no SQL of theirs can turn it back on
}

# What a catalog holds, object by object, as text: (kind, name, definition).
_OBJECTS = {
    "view": "SELECT 'view', view_name, sql FROM duckdb_views() WHERE NOT internal",
    "macro": "SELECT 'macro', function_name, coalesce(macro_definition, '') "
             "FROM duckdb_functions() WHERE function_type IN ('macro', 'table_macro') "
             "AND NOT internal",
    "type": "SELECT 'type', type_name, logical_type FROM duckdb_types() WHERE NOT internal "
            "AND database_name NOT IN ('system', 'temp')",
    "table": "SELECT 'table', table_name, '' FROM duckdb_tables() WHERE NOT internal",
    "column": "SELECT 'column', table_name || '.' || column_name, data_type || ' ' || "
              "coalesce(column_default, '') FROM duckdb_columns() WHERE NOT internal",
    "sequence": "SELECT 'sequence', sequence_name, '' FROM duckdb_sequences()",
    "index": "SELECT 'index', index_name, coalesce(sql, '') FROM duckdb_indexes()",
    "constraint": "SELECT 'constraint', table_name, constraint_type || ' ' || "
                  "coalesce(constraint_text, '') FROM duckdb_constraints()",
}
_ours: frozenset[tuple[str, str, str]] | None = None
_ours_guard = threading.Lock()


def open_locked(path: Path) -> Connection:
    """A connection to another workspace's catalog that cannot reach anything else."""
    try:
        return duckdb.connect(str(path), config=STRANGER_CONFIG)
    except duckdb.Error as exc:
        raise CatalogError(f"{path}: cannot open the catalog ({_first_line(exc)})") from None


def check_only_ours(con: Connection, path: Path) -> None:
    """Refuse (CatalogError, one line) a catalog holding anything mlyard's migrations do
    not create; run after bringing its schema up to date, so an older one compares."""
    foreign = sorted(_objects(con) - _our_objects(), key=_order)
    if foreign:
        kind, name, _ = foreign[0]
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise CatalogError(f"{path}: holds a {kind} {name!r}{more} that mlyard does not "
                           "create; not opened (SQL stored in another workspace's catalog "
                           "would run here)")


def _objects(con: Connection) -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for query in _OBJECTS.values():
        found.update((str(kind), str(name), str(text))
                     for kind, name, text in con.execute(query).fetchall())
    return found


def _our_objects() -> frozenset[tuple[str, str, str]]:
    """Everything mlyard's migrations create, read off a fresh in-memory catalog."""
    global _ours
    with _ours_guard:
        if _ours is None:
            fresh = duckdb.connect(":memory:", config=STRANGER_CONFIG)
            try:
                apply_migrations(fresh, "a fresh catalog", {})
                _ours = frozenset(_objects(fresh))
            finally:
                fresh.close()
        return _ours


def _order(item: tuple[str, str, str]) -> tuple[int, str]:
    return list(_OBJECTS).index(item[0]), item[1]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
