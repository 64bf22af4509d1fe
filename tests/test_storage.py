"""The catalog file, its lock, the spool and the object store, with real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from mlyard.core.tracking import active_run, run_queries
from mlyard.core.workspace import open_workspace
from mlyard.storage import migrations, spool
from mlyard.storage.catalog import Catalog
from mlyard.storage.errors import CatalogError, ObjectCorrupt, StoreLocked
from mlyard.storage.lock import CatalogLock
from mlyard.storage.objects import ObjectStore
from mlyard.storage.runs_store import METRIC_SCHEMA, count_metric_points
from tests.conftest import mlyard_process, wait_for

HOLD_LOCK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mlyard.storage.catalog import Catalog
    with Catalog(Path(sys.argv[1])).session():
        print("holding", flush=True)
        sys.stdin.readline()  # until the test releases it
""")


def hold_lock(root: Path, cwd: Path) -> subprocess.Popen[str]:
    """A process holding the catalog lock until `release(holder)`."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root)], cwd=cwd,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    holder.communicate("\n", timeout=60)
    assert holder.returncode == 0


def test_busy_catalog_gives_a_clear_error_after_the_bounded_wait(tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    open_workspace(tmp_path)
    holder = hold_lock(tmp_path / ".mlyard", tmp_path)
    # It gives up on its own while the lock is still held, and says why.
    result = mlyard_process("runs", "list", cwd=tmp_path, env={"MLYARD_LOCK_TIMEOUT": "0.5"})
    release(holder)
    assert result.returncode == 1
    assert "catalog still locked by another mlyard process after 0.5s" in result.stderr


def test_a_waiting_reader_gets_in_once_the_lock_is_released(tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    open_workspace(tmp_path)
    holder = hold_lock(tmp_path / ".mlyard", tmp_path)
    reader = subprocess.Popen([sys.executable, "-m", "mlyard", "runs", "list", "--json"],
                              cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    # The reader starts while the lock is held; however far it got, it gets in afterwards.
    release(holder)
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0 and out.strip() == "[]"


def test_metrics_flushed_while_locked_go_to_the_spool_and_are_loaded_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    ws = open_workspace(tmp_path)
    run = active_run.start_run(workspace=ws, flush_interval=60)
    holder = hold_lock(ws.root, tmp_path)
    for step in range(100):
        run.log_metric("loss", float(step), step=step)
    run.log_lines("line while locked")
    run.flush()
    segments = [s for s in spool.sealed_segments(ws.catalog.spool_dir)
                if spool.segment_kind(s) == "metrics"]
    assert len(segments) == 1
    assert len(spool.sealed_segments(ws.catalog.spool_dir)) == 2
    release(holder)
    kept = segments[0].with_name("copy-of-segment")
    shutil.copy(segments[0], kept)
    run.end()
    with ws.catalog.session() as con:
        assert count_metric_points(con, run.run_id) == 100
    assert [t.line for t in run_queries.log_tail(ws, run.run_id, 10)] == ["line while locked"]
    # A crash between commit and unlink leaves the loaded segment behind: not loaded twice.
    shutil.copy(kept, segments[0])
    with ws.catalog.session() as con:
        assert count_metric_points(con, run.run_id) == 100
    assert not segments[0].exists()


def test_partial_segment_from_a_crashed_writer_is_ignored(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    batch = pa.table([["r"], ["k"], [1.0], [0], [0.0]], schema=METRIC_SCHEMA)
    sealed = spool.write_segment(catalog.spool_dir, "metrics", batch)
    sealed.rename(sealed.with_suffix(spool.PENDING_SUFFIX))
    with catalog.session() as con:
        assert count_metric_points(con) == 0


def test_migrations_are_recorded_and_a_newer_catalog_is_refused(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    with catalog.session() as con:
        rows = con.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
        assert rows == [(i, name) for i, (name, _) in enumerate(migrations.MIGRATIONS, 1)]
        con.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
    with pytest.raises(CatalogError, match="newer mlyard"):
        with catalog.session():
            pass


def test_a_first_release_catalog_is_upgraded_in_place(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    full = list(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "MIGRATIONS", full[:1])
    catalog = Catalog(tmp_path)
    with catalog.session() as con:
        con.execute("INSERT INTO projects VALUES ('kept', 0)")
    monkeypatch.setattr(migrations, "MIGRATIONS", full)
    with catalog.session() as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone() == (len(full),)
        assert con.execute("SELECT name FROM projects").fetchall() == [("kept",)]
        assert con.execute("SELECT count(*) FROM model_versions").fetchone() == (0,)


def test_a_file_that_is_not_a_catalog_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "catalog.duckdb").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CatalogError, match="cannot open the catalog"):
        with Catalog(tmp_path).session():
            pass


def test_objects_are_verified_on_read(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    digest = store.put_bytes(b"model bytes")
    assert store.put_bytes(b"model bytes") == digest
    assert store.read_bytes(digest) == b"model bytes"
    path = store.path_for(digest)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(ObjectCorrupt, match="was changed on disk"):
        store.read_bytes(digest)
    assert not list((tmp_path / "objects" / "tmp").iterdir())


def test_lock_errors_are_typed(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path, tmp_path)
    with pytest.raises(StoreLocked):
        with Catalog(tmp_path).session(timeout=0.2):
            pass
    release(holder)


def test_an_unreadable_spool_segment_is_moved_aside_and_blocks_nobody(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    with catalog.session():
        pass
    catalog.spool_dir.mkdir(parents=True, exist_ok=True)
    garbage = catalog.spool_dir / "metrics-00000000000000000001-garbage.arrow"
    garbage.write_bytes(b"not an arrow file at all")
    wrong = spool.write_segment(catalog.spool_dir, "logs",
                                pa.table({"something": ["else"]}))
    future = catalog.spool_dir / "traces-00000000000000000002-newer.arrow"
    future.write_bytes(b"a kind this version does not know")
    good = spool.write_segment(catalog.spool_dir, "metrics", pa.table(
        [pa.array(["r1"]), pa.array(["loss"]), pa.array([0.5]), pa.array([0], pa.int64()),
         pa.array([1.0])], schema=METRIC_SCHEMA))
    with catalog.session() as con:  # works, and loads the good segment
        assert count_metric_points(con, "r1") == 1
        events = con.execute("SELECT subject, CAST(detail AS VARCHAR) FROM events "
                             "WHERE kind = 'alert.spool' ORDER BY subject").fetchall()
    bad = catalog.spool_dir / "bad"
    assert sorted(p.name for p in bad.glob("*.arrow")) == sorted([garbage.name, wrong.name])
    reason = json.loads((bad / (wrong.name + ".reason.json")).read_text())["reason"]
    assert "do not match" in reason
    assert [subject for subject, _ in events] == sorted([garbage.name, wrong.name])
    assert future.exists() and not good.exists()  # left for a newer mlyard; loaded


def test_a_run_that_had_to_drop_points_ends_failed_and_warns_the_script(tmp_path: Path,
                                                                        ) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    ws = open_workspace(tmp_path)
    run = active_run.start_run(workspace=ws, flush_interval=60)
    run._buffer.max_pending = 50
    holder = hold_lock(ws.root, tmp_path)  # the catalog is busy ...
    ws.catalog.spool_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(ws.catalog.spool_dir)
    ws.catalog.spool_dir.write_text("")  # ... and the spool cannot be written
    for step in range(100):
        run.log_metric("loss", float(step), step=step)
    with pytest.raises(OSError):
        run.flush()
    release(holder)
    ws.catalog.spool_dir.unlink()
    with pytest.warns(UserWarning, match="50 metric points or log lines could not be stored"):
        run.end()
    detail = run_queries.show_run(ws, run.run_id)
    assert detail.run.status == "failed" and "could not be stored" in (detail.run.error or "")
    assert detail.metric_points["loss"] == 50  # the newest 50 were kept and written


MANY_RUNS_THEN_EXIT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mlyard.core.tracking import active_run
    from mlyard.core.workspace import open_workspace
    ws = open_workspace(Path(sys.argv[1]))
    for index in range(int(sys.argv[2])):
        with active_run.start_run(workspace=ws, params={"index": index}) as run:
            run.log_metrics({"loss": 1.0 / (index + 1), "auc": 0.5}, step=0)
    left = active_run.start_run(workspace=ws, name="left open")  # ended by the exit hook
    left.log_metric("loss", 0.25)
""")


def _read_catalog_file(path: Path, sql: str) -> list[tuple[object, ...]]:
    """The catalog file as any tool would read it, without loading the spool first, but
    under the catalog's lock as every process sharing the file must (the background loader
    may still be closing its connection when the spool is already empty)."""
    import duckdb

    with CatalogLock(path.parent / "catalog.lock").hold(30.0), \
            duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_runs_a_script_ended_are_in_the_catalog_file_when_it_exits(tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    ws = open_workspace(tmp_path)
    done = subprocess.run([sys.executable, "-c", MANY_RUNS_THEN_EXIT, str(tmp_path), "60"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not spool.sealed_segments(ws.catalog.spool_dir)
    statuses = _read_catalog_file(ws.catalog.path,
                                  "SELECT status, count(*) FROM runs GROUP BY ALL")
    assert dict(statuses) == {"finished": 61}
    [(params, points, ends)] = _read_catalog_file(ws.catalog.path, """
        SELECT (SELECT count(*) FROM params WHERE key = 'index'),
               (SELECT count(*) FROM metrics),
               (SELECT count(*) FROM events WHERE kind = 'run.finished')""")
    assert (params, points, ends) == (60, 121, 61)
    listed = run_queries.list_runs(ws, filters=["params.index = 59"])
    assert [r.metrics for r in listed] == [{"loss": 1 / 60, "auc": 0.5}]


def test_an_ended_run_reads_as_ended_at_once_and_reaches_the_catalog_file_soon(
        tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    ws = open_workspace(tmp_path)
    with active_run.start_run(workspace=ws, params={"lr": 0.1}, name="quick") as run:
        run.log_metric("loss", 0.5)
    # Any unit of work loads the spool first, so every reader sees the run ended ...
    assert run_queries.show_run(ws, run.run_id).run.status == "finished"
    # ... and without readers, this process loads it into the file shortly after.
    with active_run.start_run(workspace=ws, name="unread") as unread:
        unread.log_metric("loss", 0.25)
    wait_for(lambda: not spool.sealed_segments(ws.catalog.spool_dir),
             what="the spool loaded into the catalog")
    assert _read_catalog_file(ws.catalog.path, "SELECT name, status FROM runs ORDER BY 1"
                              ) == [("quick", "finished"), ("unread", "finished")]


def test_a_long_run_is_listed_as_running_before_it_ends(tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    ws = open_workspace(tmp_path)
    run = active_run.start_run(workspace=ws, params={"lr": 0.1}, name="long")
    try:
        listed = wait_for(lambda: run_queries.list_runs(ws), what="the run stored")
        assert [(r.name, r.status, r.params) for r in listed] == [
            ("long", "running", {"lr": "0.1"})]
    finally:
        run.end()
    assert run_queries.show_run(ws, run.run_id).run.status == "finished"


def test_a_spooled_run_that_cannot_be_loaded_is_moved_aside_and_blocks_nobody(
        tmp_path: Path) -> None:
    from mlyard.storage.runs_store import RunRecord, ended_run_table

    catalog = Catalog(tmp_path)
    with catalog.session():
        pass

    def ended(run_id: str, stored: bool) -> pa.Table:
        record = RunRecord(run_id, "p", None, "finished", 1.0, 2.0, 2.0, 1, "h", "u", None,
                           params={"a": "1"})
        return ended_run_table(record, stored, None)

    first = spool.write_segment(catalog.spool_dir, "runs", ended("r1", stored=False))
    again = spool.write_segment(catalog.spool_dir, "runs", ended("r1", stored=False))
    other = spool.write_segment(catalog.spool_dir, "runs", ended("r2", stored=False))
    with catalog.session() as con:  # the duplicate cannot go in; the other two do
        assert con.execute("SELECT run_id FROM runs ORDER BY 1").fetchall() == [("r1",),
                                                                                ("r2",)]
    assert [p.name for p in (catalog.spool_dir / "bad").glob("*.arrow")] == [again.name]
    assert not first.exists() and not other.exists()
