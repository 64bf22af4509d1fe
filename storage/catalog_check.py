"""What `mlyard doctor` asks of the catalog and the spool: does every table read whole,
which objects its rows name, and which waiting spool segments could never be loaded."""

from __future__ import annotations

from pathlib import Path

import duckdb

from mlyard.storage import spool
from mlyard.storage.catalog import Catalog, read_checked_segment, segment_kind_known
from mlyard.storage.errors import CatalogError


def check_tables(catalog: Catalog) -> int:
    """Read every row of every table (DuckDB checks each block it reads); return how many
    tables there are. Raises CatalogError naming the table that fails."""
    with catalog.session(load_spool=False) as con:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY table_name").fetchall()]
        for table in tables:
            try:
                con.execute(f'SELECT count(hash(t)) FROM "{table}" t').fetchall()
            except duckdb.Error as exc:
                raise CatalogError(f"{catalog.path}: table {table} cannot be read "
                                   f"({str(exc).splitlines()[0]})") from exc
    return len(tables)


def unreadable_segments(catalog: Catalog) -> list[tuple[Path, str]]:
    """Sealed segments of a known kind that cannot be read or have the wrong columns."""
    found = []
    for path in spool.sealed_segments(catalog.spool_dir):
        if not segment_kind_known(path):
            continue  # left for the newer mlyard that wrote it
        batch, problem = read_checked_segment(path)
        if batch is None:
            found.append((path, problem or "unreadable"))
    return found


def object_references(catalog: Catalog) -> dict[str, list[str]]:
    """Every object the catalog names -> the rows that name it, in words."""
    named: dict[str, list[str]] = {}
    with catalog.session(load_spool=False) as con:
        for digest, what in con.execute(
                "SELECT object_hash, 'run ' || left(run_id, 8) || ' ' || name FROM artifacts "
                "UNION ALL SELECT model_hash, 'model ' || model || '/' || version "
                "FROM model_versions "
                "UNION ALL SELECT card_hash, 'model card ' || model || '/' || version "
                "FROM model_versions "
                "UNION ALL SELECT snapshot_hash, 'dataset ' || dataset || ':v' || seq "
                "FROM dataset_versions").fetchall():
            named.setdefault(str(digest), []).append(str(what))
    return named
