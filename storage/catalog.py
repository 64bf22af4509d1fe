"""The only place that opens `catalog.duckdb`.

Every access is a short unit of work: take the lock, open, transact, close. No process
keeps the file open while idle, so the TUI, a training run, the daemon and a cron job
can all share one catalog. Whoever holds the lock first loads any spooled segments left
by writers that found it busy.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mlyard.storage import meta_store, prediction_files, spool
from mlyard.storage.engine import ENGINE_CONFIG, Connection, engine_unit
from mlyard.storage.errors import CatalogError
from mlyard.storage.lock import CatalogLock
from mlyard.storage.migrations import PREDICTIONS_OUT, apply_migrations
from mlyard.storage.regular_files import is_regular, kind_of
from mlyard.storage.runs_store import (
    LOG_SCHEMA,
    METRIC_SCHEMA,
    RUN_SEGMENT_SCHEMA,
    insert_logs,
    insert_metrics,
    load_ended_runs,
)
from mlyard.storage.stranger import check_only_ours, open_locked

CHECKPOINT_HEADROOM = "2GB"
FOLD_ROWS = 200_000  # spooled rows per loading transaction: the engine's memory is capped

_SEGMENT_LOADERS = {"metrics": insert_metrics, "logs": insert_logs, "runs": load_ended_runs,
                    "events": meta_store.insert_event_segment}
_SEGMENT_SCHEMAS = {"metrics": METRIC_SCHEMA, "logs": LOG_SCHEMA, "runs": RUN_SEGMENT_SCHEMA,
                    "predictions": prediction_files.PREDICTION_SCHEMA,
                    "events": meta_store.EVENT_SCHEMA}
_left_for_newer: set[str] = set()  # warned about once per process

log = logging.getLogger("mlyard.catalog")


def read_checked_segment(path: Path) -> tuple[pa.Table | None, str | None]:
    """A sealed segment's rows, or None and why it cannot be loaded."""
    expected = _SEGMENT_SCHEMAS.get(spool.segment_kind(path))
    if expected is None:
        return None, "a kind this version does not know"
    if not is_regular(path):  # opening a FIFO would wait for a writer forever
        return None, f"{kind_of(path)}, not a regular file"
    try:
        batch = spool.read_segment(path)
    except (pa.ArrowException, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if batch.schema.names != expected.names or any(
            not batch.schema.field(n).type.equals(expected.field(n).type)
            for n in expected.names):
        return None, f"columns {batch.schema.names} do not match {expected.names}"
    return batch, None


def segment_kind_known(path: Path) -> bool:
    return spool.segment_kind(path) in _SEGMENT_SCHEMAS


def insert_batch(con: Connection, kind: str, batch: pa.Table) -> None:
    """Insert rows of a spool kind: the path a buffered flush and a spooled segment share."""
    _SEGMENT_LOADERS[kind](con, batch)


class Catalog:
    """Short, locked units of work against one workspace's DuckDB file."""

    def __init__(self, workspace_dir: Path, stranger: bool = False) -> None:
        self.workspace_dir = workspace_dir
        # Another workspace's catalog (storage/stranger.py): its own locked connection.
        self.stranger = stranger
        self.path = workspace_dir / "catalog.duckdb"
        self.spool_dir = workspace_dir / "spool"
        self.predictions_dir = workspace_dir / "logs" / "predictions"
        self.shadow_dir = workspace_dir / "logs" / "shadow"  # see shadow_files
        self.labels_dir = workspace_dir / "logs" / "labels"  # see label_files
        self.outcomes_dir = workspace_dir / "runs"  # see run_outcomes
        self.lock = CatalogLock(workspace_dir / "catalog.lock")
        # One alias per catalog file, so units on different catalogs never collide.
        self._alias = "catalog_" + hashlib.blake2s(str(self.path.resolve()).encode(),
                                                    digest_size=6).hexdigest()

    @contextmanager
    def session(self, timeout: float | None = None,
                load_spool: bool = True) -> Iterator[Connection]:
        """One transaction under the lock; commits on success, rolls back on error.
        `load_spool=False` leaves waiting spool segments where they are (`mlyard doctor`
        without --repair changes nothing).

        Raises StoreLocked when another process holds the catalog past `timeout`, and
        CatalogError (one line) when DuckDB cannot read or write the file.
        """
        try:
            with self.lock.hold(timeout), self._connected(load_spool) as con, \
                    _transaction(con):
                yield con
        except (duckdb.IOException, duckdb.OutOfMemoryException,
                duckdb.PermissionException, duckdb.TransactionException) as exc:
            # A commit that cannot write its log (a full disk) is a TransactionException.
            raise CatalogError(f"{self.path}: could not read or write the catalog "
                               f"({_first_line(exc)}); check free disk space and write "
                               "access, then run the command again") from exc

    @contextmanager
    def try_session(self) -> Iterator[Connection | None]:
        """Like `session`, but yields None at once if the lock is busy."""
        with self.lock.try_hold() as taken:
            if not taken:
                yield None
                return
            with self._connected() as con, _transaction(con):
                yield con

    def ingest_spool(self, con: Connection) -> int:
        """Load every sealed segment not loaded before; return how many rows were added.

        Segments are loaded many at a time (a unit of work costs the same for one row or
        thousands), each kind in one statement, up to `FOLD_ROWS` rows per transaction.
        A segment that cannot be read or has the wrong columns is moved to `spool/bad/`
        with its reason and an `alert.spool` event: it never blocks anyone's work. One of
        a kind this version does not know (written by a newer mlyard) is left for it.
        """
        paths = spool.sealed_segments(self.spool_dir)
        if not paths:
            return 0
        seen = {name for (name,) in con.execute(
            "SELECT name FROM spool_segments WHERE list_contains(?, name)",
            [[path.name for path in paths]]).fetchall()}
        added = rows = 0
        chunk: list[tuple[Path, pa.Table]] = []
        for path in paths:
            if path.name in seen:  # loaded, then the process stopped before removing it
                path.unlink(missing_ok=True)
                continue
            if not segment_kind_known(path):
                if path.name not in _left_for_newer:
                    _left_for_newer.add(path.name)
                    log.warning("%s: a spool segment of kind %r, from a newer mlyard; "
                                "left for it", path, spool.segment_kind(path))
                continue
            batch, problem = read_checked_segment(path)
            if batch is None:
                self._quarantine_segment(con, path, problem or "unreadable")
                continue
            chunk.append((path, batch))
            rows += _rows_in(batch)  # a running count: summing the chunk each time was
            if rows >= FOLD_ROWS:  # quadratic in the segments waiting
                added += self._load_or_set_aside(con, chunk)
                chunk, rows = [], 0
        return added + self._load_or_set_aside(con, chunk)

    def _load_or_set_aside(self, con: Connection, chunk: list[tuple[Path, pa.Table]]) -> int:
        """Load a chunk; when its rows break a constraint, load its segments one by one
        and move aside the ones that cannot be loaded, so no segment blocks the rest."""
        try:
            return self._load_segments(con, chunk)
        except (duckdb.ConstraintException, duckdb.ConversionException,
                duckdb.InvalidInputException) as exc:
            if len(chunk) == 1:
                self._quarantine_segment(con, chunk[0][0],
                                         f"its rows could not be loaded: {_first_line(exc)}")
                return 0
            return sum(self._load_or_set_aside(con, [item]) for item in chunk)

    def _load_segments(self, con: Connection, chunk: list[tuple[Path, pa.Table]]) -> int:
        """Load segments in one transaction that also records their names."""
        if not chunk:
            return 0
        by_kind: dict[str, list[pa.Table]] = {}
        con.begin()
        try:
            for path, batch in chunk:
                kind = spool.segment_kind(path)
                if kind == "predictions":  # spooled by an older mlyard: to the files
                    prediction_files.write(self.predictions_dir, batch, name=path.stem)
                else:
                    by_kind.setdefault(kind, []).append(batch)
            for kind, tables in by_kind.items():
                insert_batch(con, kind, pa.concat_tables(tables))
            con.execute("INSERT INTO spool_segments SELECT unnest(?::VARCHAR[]), ?, "
                        "unnest(?::BIGINT[])", [[path.name for path, _ in chunk], time.time(),
                                                [batch.num_rows for _, batch in chunk]])
            con.commit()
        except Exception:
            con.rollback()
            raise
        for path, _ in chunk:
            path.unlink(missing_ok=True)
        return sum(batch.num_rows for _, batch in chunk)

    def _quarantine_segment(self, con: Connection, path: Path, reason: str) -> None:
        moved = spool.quarantine(path, reason)
        meta_store.add_event(con, "alert.spool", path.name, "mlyard", {
            "severity": "error", "moved_to": str(moved), "reason": reason})
        log.error("%s: unreadable spool segment moved to %s (%s)", path, moved, reason)

    @contextmanager
    def _connected(self, load_spool: bool = True) -> Iterator[Connection]:
        """Attach the catalog file to this process's in-memory DuckDB for one unit of work.

        Attaching takes about 2 ms where opening a fresh database takes about 10 ms, and
        detaching releases the file for other processes just the same.
        """
        self.workspace_dir.mkdir(parents=True, exist_ok=True)
        if self.stranger:
            with self._stranger(load_spool) as con:
                yield con
            return
        with engine_unit() as con:
            try:
                con.execute(f"ATTACH ? AS {self._alias}", [str(self.path)])
            except duckdb.Error as exc:
                raise CatalogError(
                    f"{self.path}: cannot open the catalog ({_first_line(exc)}); "
                    "`mlyard doctor` says what is wrong") from exc
            try:
                con.execute(f"USE {self._alias}")
                apply_migrations(con, str(self.path), {
                    PREDICTIONS_OUT: lambda c: _move_predictions_out(c, self.predictions_dir)})
                if load_spool:
                    self.ingest_spool(con)
                yield con
            finally:
                con.execute("USE memory")
                _detach(con, self._alias, self.path)

    @contextmanager
    def _stranger(self, load_spool: bool) -> Iterator[Connection]:
        con = open_locked(self.path)
        try:
            apply_migrations(con, str(self.path), {
                PREDICTIONS_OUT: lambda c: _move_predictions_out(c, self.predictions_dir)})
            check_only_ours(con, self.path)
            if load_spool:
                self.ingest_spool(con)
            yield con
        finally:
            con.close()


def _rows_in(segment: pa.Table) -> int:
    """Rows a segment adds: an ended run's segment carries its last metric points too."""
    rows = int(segment.num_rows)
    if "points" in segment.column_names:
        rows += int(pc.sum(pc.list_value_length(segment["points"])).as_py() or 0)
    return rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _detach(con: Connection, alias: str, path: Path) -> None:
    """Detach, checkpointing what the unit wrote. Should that checkpoint ever need more
    memory than the engine's cap, it gets the headroom for this once rather than leave a
    catalog that no process can open."""
    try:
        con.execute(f"DETACH {alias}")
    except duckdb.OutOfMemoryException:
        con.execute(f"SET memory_limit = '{CHECKPOINT_HEADROOM}'")
        try:
            con.execute(f"DETACH {alias}")
        finally:
            con.execute(f"SET memory_limit = '{ENGINE_CONFIG['memory_limit']}'")
    except duckdb.IOException as exc:
        if "CHECKPOINT during DETACH failed" not in str(exc):
            raise
        # Committed work is safe in the write-ahead log, which the next unit replays; only
        # folding it into the file failed (a full disk). Not a reason to fail this unit,
        # nor every later one while the disk stays full.
        log.info("%s: could not checkpoint the catalog (%s); its changes are kept in "
                 "the write-ahead log until there is space", path, _first_line(exc))


def _move_predictions_out(con: Connection, root: Path) -> None:
    """Copy the prediction log an older mlyard kept in the catalog to the Parquet files,
    in chunks (the engine's memory is capped); the migration then drops the table. The
    files are named by chunk, so an interrupted copy is redone without duplicates."""
    chunk_rows = 20_000
    [(count,)] = con.execute("SELECT count(*) FROM predictions").fetchall()
    for number in range(0, int(count) // chunk_rows + 1):
        # Materialised a chunk at a time: a streaming reader would hold the connection.
        chunk = con.sql("SELECT * FROM predictions ORDER BY ts, request_id LIMIT ? OFFSET ?",
                        params=[chunk_rows, number * chunk_rows]).to_arrow_table()
        if chunk is not None and chunk.num_rows:
            prediction_files.write(root, chunk, name=f"from-catalog-{number:06d}")


@contextmanager
def _transaction(con: Connection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()
