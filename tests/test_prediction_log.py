"""Served predictions live in Parquet files beside the catalog: traffic cannot grow the
catalog, a failing disk loses nothing silently, and old data is compacted and expired."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow as pa
import pytest
from filelock import FileLock

from mlyard.core.serving.prediction_log import Prediction, PredictionLog
from mlyard.core.workspace import open_workspace
from mlyard.storage import prediction_files
from mlyard.storage.buffered_writer import BufferedWriter
from mlyard.storage.catalog import Catalog
from mlyard.storage.prediction_files import PREDICTION_SCHEMA
from tests.conftest import mlyard, wait_for
from tests.test_serve import Server, features_of, rows, trained  # noqa: F401  (a fixture)

DAY = 86_400.0


def requests(count: int, ts: float, model: str = "churn") -> list[tuple[object, ...]]:
    return [(f"r{i}-{ts}", ts + i * 0.001, model, 1, 2, '[{"a":1},{"a":2}]', "[0.1,0.9]")
            for i in range(count)]


def predictions(count: int, ts: float) -> list[Prediction]:
    """Requests as the server logs them: each with its two typed rows and outputs."""
    frame = pl.DataFrame({"a": [1.0, 2.0]})
    return [(f"r{i}-{ts}", ts + i * 0.001, "churn", 1, 2, frame, "[0.1,0.9]", ())
            for i in range(count)]


def table(rows_: list[tuple[object, ...]]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(PREDICTION_SCHEMA.names, r, strict=True))
                                 for r in rows_], schema=PREDICTION_SCHEMA)


def test_big_requests_leave_the_catalog_small_and_every_command_working(
        trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.chdir(trained)
    ws = open_workspace(trained)
    before = ws.catalog.path.stat().st_size
    logged_before = prediction_files.count_rows(ws.catalog.predictions_dir, "churn")
    body = {"instances": features_of(rows(trained, 5000), trained).to_dicts()}
    with Server(trained, "champion") as running, httpx.Client(timeout=120) as client:
        for _ in range(8):  # 40,000 rows, about 7 MB of JSON
            assert client.post(f"{running.url}/invocations", json=body).status_code == 200
        wait_for(lambda: client.get(f"{running.url}/health").json()
                 ["prediction_log"]["pending"] == 0, what="the log written")
    assert prediction_files.count_rows(ws.catalog.predictions_dir, "churn") \
        == logged_before + 40_000
    assert ws.catalog.path.stat().st_size - before < 1_000_000
    for command in (["runs", "list"], ["models", "list"], ["data", "list"]):
        assert mlyard(*command).exit_code == 0


def test_a_log_that_cannot_be_written_keeps_its_rows_says_so_and_catches_up(
        tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    ws = open_workspace(tmp_path)
    ws.catalog.predictions_dir.parent.mkdir(parents=True, exist_ok=True)
    ws.catalog.predictions_dir.write_text("in the way")  # every write now fails
    log = PredictionLog(ws.catalog, flush_interval=0.05)
    log.start()
    try:
        log.add(predictions(300, time.time()))
        wait_for(lambda: log.failures >= 2, what="writes failing")
        assert log.pending == 300 and log.dropped == 0 and log.last_error
        ws.catalog.predictions_dir.unlink()  # the disk is back
        wait_for(lambda: log.pending == 0 and log.failures == 0, what="the log caught up")
    finally:
        log.close()
    assert prediction_files.count_rows(ws.catalog.predictions_dir, "churn") == 600


def test_a_writer_whose_store_raises_anything_keeps_running(tmp_path: Path) -> None:
    class Flaky(BufferedWriter):
        calls = 0
        stored = 0

        def store(self, batches: dict[str, pa.Table], now: float) -> bool:
            self.calls += 1
            if self.calls <= 3:
                raise RuntimeError("Out of Memory Error: could not allocate block")
            self.stored += sum(b.num_rows for b in batches.values())
            return True

    writer = Flaky(Catalog(tmp_path), "flaky", {"predictions": table}, flush_interval=0.02)
    writer.start()
    try:
        writer.add_rows("predictions", requests(10, time.time()))
        wait_for(lambda: writer.calls > 3 and writer.pending == 0)
        assert writer.stored == 10 and writer.dropped == 0
    finally:
        writer.stop()


class Counting(BufferedWriter):
    """A writer that only counts the rows of each flush (idle ticks flush none)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flushed: list[int] = []

    def store(self, batches: dict[str, pa.Table], now: float) -> bool:
        self.flushed.append(sum(b.num_rows for b in batches.values()))
        return True


def test_after_a_quiet_spell_the_first_rows_are_written_at_once_then_once_an_interval(
        tmp_path: Path) -> None:
    """A lone request is stored before a script's next line reads it; a steady stream
    is still batched by the interval (here an hour, so only the quiet rule can write)."""
    writer = Counting(Catalog(tmp_path), "counting", {"predictions": table},
                      flush_interval=3600.0)
    writer.start()
    try:
        writer.add_rows("predictions", requests(1, time.time()))
        wait_for(lambda: writer.flushed == [1], timeout=30, what="the first row written")
        for _ in range(5):  # not quiet any more: these wait for the interval
            writer.add_rows("predictions", requests(1, time.time()))
        assert writer.pending == 5 and writer.flushed == [1]
    finally:
        writer.stop()


def test_a_lone_request_after_idle_ticks_is_written_at_once(tmp_path: Path) -> None:
    """The writer ticks every interval even with nothing to write; those ticks are not
    flushes, so a request after a quiet spell is still written at once (they counted:
    a request right after `serve --detach` waited for the next tick, and a `feedback`
    started at once found nothing logged)."""
    writer = Counting(Catalog(tmp_path), "counting", {"predictions": table},
                      flush_interval=120.0, first_flush=0.05)
    writer.start()
    try:
        wait_for(lambda: writer.flushed == [0], timeout=30, what="an idle tick")
        writer.add_rows("predictions", requests(1, time.time()))
        # The next tick is 30 s away (the longest the writer sleeps): well before it.
        wait_for(lambda: writer.flushed == [0, 1], timeout=15, what="the lone row written")
    finally:
        writer.stop()


def test_past_its_cap_a_failing_log_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text("")
    ws = open_workspace(tmp_path)
    ws.catalog.predictions_dir.parent.mkdir(parents=True, exist_ok=True)
    ws.catalog.predictions_dir.write_text("in the way")
    log = PredictionLog(ws.catalog)
    log.max_pending = 100
    log.add(predictions(150, time.time()))
    with pytest.raises(OSError):
        log.flush()
    assert (log.pending, log.dropped) == (100, 50)


def test_old_days_are_compacted_and_expired_and_reads_see_each_row_once(
        tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    now = time.time()
    for days_ago in (0, 1, 1, 1, 40):
        prediction_files.write(root, table(requests(10, now - days_ago * DAY)))
    assert len(prediction_files.read(root, "churn")) == 50
    catalog = Catalog(tmp_path / "ws")
    catalog.predictions_dir = root
    log = PredictionLog(catalog, keep_seconds=30 * DAY)
    log.housekeeping(now)
    days = prediction_files.day_dirs(root, "churn")
    assert len(days) == 2  # the 40-day-old day is gone
    assert [len(list(d.glob("*.parquet"))) for d in days] == [1, 1]  # yesterday merged
    assert len(prediction_files.read(root, "churn")) == 40
    since = now - 1.5 * DAY
    assert len(prediction_files.read(root, "churn", since)) == 40


def test_an_interrupted_compaction_is_finished_without_double_counting(tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    yesterday = time.time() - DAY
    first = prediction_files.write(root, table(requests(5, yesterday)))[0]
    second = prediction_files.write(root, table(requests(5, yesterday + 1)))[0]
    day = first.parent
    # Killed after the merged file was renamed into place, before the sources went.
    merged = prediction_files.write(root, table(requests(5, yesterday) +
                                                requests(5, yesterday + 1)), name="merged")[0]
    (day / prediction_files.MANIFEST).write_text(
        '{"merged": "%s", "sources": ["%s", "%s"]}' % (merged.name, first.name, second.name))
    assert len(prediction_files.read(root, "churn")) == 10  # readers skip the sources
    prediction_files.compact(root, "churn", before_day=prediction_files.day_of(time.time()))
    assert sorted(p.name for p in day.iterdir()) == [merged.name]


def test_todays_flushes_are_gathered_into_one_file_and_reads_see_each_row_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server flushing every second would leave 86,400 files by night, each opened by
    every reader: the log merges today's flushes a few hundred at a time, beside what it
    merged before, and the day's end makes one file of all."""
    monkeypatch.setattr(prediction_files, "GATHER_AT", 4)
    catalog = Catalog(tmp_path)
    root = catalog.predictions_dir
    start = (time.time() // DAY) * DAY + 1  # today, from its first second
    log = PredictionLog(catalog, housekeeping_interval=None)

    def flush(count: int, first: int) -> None:
        for second in range(first, first + count):
            prediction_files.write(root, table(requests(2, start + second)))

    flush(3, 0)
    log.gather(start)
    assert len(prediction_files.files(root, "churn")) == 3  # too few to bother
    flush(2, 3)
    log.gather(start)
    assert len(prediction_files.files(root, "churn")) == 1
    flush(5, 5)
    day = prediction_files.model_dir(root, "churn") / f"date={prediction_files.day_of(start)}"
    with FileLock(day.parent / prediction_files.LOCK, timeout=0):  # another server merging
        log.gather(start)
        assert len(prediction_files.files(root, "churn")) == 6
    log.gather(start)
    assert len(prediction_files.files(root, "churn")) == 2  # the earlier merge stays
    assert [ts for ts, *_ in prediction_files.read(root, "churn")] == sorted(
        start + second + i * 0.001 for second in range(10) for i in range(2))
    assert prediction_files.count_rows(root, "churn") == 40
    assert prediction_files.compact(root, "churn", prediction_files.day_of(start + DAY)) == 1
    assert len(prediction_files.files(root, "churn")) == 1
    assert prediction_files.count_rows(root, "churn") == 40


def test_an_unfinished_merge_is_undone_without_touching_a_flush_being_written(
        tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    yesterday = time.time() - DAY
    sources = [prediction_files.write(root, table(requests(5, yesterday + i)))[0]
               for i in range(2)]
    day = sources[0].parent
    # Killed mid-merge: its manifest and half-written file are there, and a server is
    # writing its next flush under a temporary name right now.
    (day / prediction_files.MANIFEST).write_text(
        '{"merged": "9-compacted.parquet", "sources": ["%s", "%s"]}'
        % (sources[0].name, sources[1].name))
    (day / ("9-compacted" + prediction_files.PENDING)).write_bytes(b"half")
    flushing = day / ("8-flush" + prediction_files.PENDING)
    flushing.write_bytes(b"being written")
    assert prediction_files.compact(root, "churn", prediction_files.day_of(time.time())) == 1
    assert flushing.exists()
    assert not (day / ("9-compacted" + prediction_files.PENDING)).exists()
    assert len(prediction_files.read(root, "churn")) == 10


def test_predictions_an_older_mlyard_kept_in_the_catalog_move_to_the_files(
        tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    with catalog.session() as con:  # as a catalog at schema 7 held them
        con.execute("CREATE TABLE predictions (request_id VARCHAR, ts DOUBLE, model VARCHAR, "
                    "version INTEGER, rows INTEGER, inputs VARCHAR, outputs VARCHAR)")
        con.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        requests(25_000, time.time() - 100))
        con.execute("DELETE FROM schema_migrations WHERE version >= 8")
        con.execute("DROP TABLE alert_deliveries; DROP TABLE alert_cursor; "  # from 10
                    "DROP TABLE workspace_identity; "  # from 11
                    "DROP TABLE segment_performance")  # from 12
    with catalog.session() as con:
        tables = {t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    assert "predictions" not in tables
    assert prediction_files.count_rows(catalog.predictions_dir, "churn") == 50_000
    assert len(prediction_files.read(catalog.predictions_dir, "churn")) == 25_000


def test_a_read_capped_in_rows_keeps_the_newest_requests_in_time_order(tmp_path: Path) -> None:
    root = tmp_path / "predictions"
    now = time.time() - 100
    for start in (0, 10, 20):  # three flushes of ten requests, two rows each
        prediction_files.write(root, table(requests(10, now + start)))
    read = prediction_files.read(root, "churn", max_rows=25)
    assert len(read) == 12  # 24 rows; a 13th request would pass 25
    stamps = [ts for ts, *_ in read]
    assert stamps == sorted(stamps) and stamps[-1] == pytest.approx(now + 20 + 0.009)


def test_a_client_resending_one_large_body_costs_the_disk_about_one_copy(
        tmp_path: Path) -> None:
    """Retries and load tests repeat a body: a flush is written as one piece, so its
    compression sees the repeats (a chunk per request was compressed alone: 10x the
    disk)."""
    import orjson

    log = PredictionLog(Catalog(tmp_path), enabled=True)
    body = orjson.dumps([{"amount": index * 0.37, "plan": f"plan-{index % 7}", "age": index}
                         for index in range(30_000)]).decode()  # ~1.4 MB of rows as logged
    now = time.time()
    log.add([(f"r{i}", now + i * 0.001, "churn", 1, 30_000, body, "[0.5]", ())
             for i in range(10)])
    log.flush()
    written = sum(f.stat().st_size for f in (tmp_path / "logs").rglob("*.parquet"))
    single = len(body)
    assert prediction_files.count_rows(tmp_path / "logs" / "predictions", "churn") == 300_000
    # Ten copies in a fraction of one body's bytes: zstd finds each repeat in the same
    # page (written a request per chunk, each is compressed alone: ~10x this).
    assert written < single / 5, (written, single)


def test_a_large_request_is_logged_as_sent_whatever_its_text(tmp_path: Path) -> None:
    """Large requests' JSON is turned into Arrow when logged, from its bytes: a slip in
    the offsets or the encoding would show as other text (or none) read back."""
    import orjson

    log = PredictionLog(Catalog(tmp_path), enabled=True)
    bodies = [orjson.dumps([{"plan": f"plän-{i}-€-{'x' * (i % 5)}", "age": i}
                            for i in range(200 + size)]).decode() for size in range(3)]
    now = time.time()
    log.add([(f"r{i}", now + i * 0.001, "churn", 1, 200 + i, body, "[0.5]", ())
             for i, body in enumerate([*bodies, '[{"a":1}]'])])
    log.flush()
    read = prediction_files.read(tmp_path / "logs" / "predictions", "churn")
    assert [inputs for _, _, inputs, _ in read] == [*bodies, '[{"a":1}]']


def test_each_rows_id_and_segments_are_kept_beside_it_through_compaction(
        tmp_path: Path) -> None:
    """The server keeps each row's keys (id, segments) in their own columns: read back
    as sent whether a request's were logged as lists (a few rows) or converted to Arrow
    (a large request), and a day written by servers keeping different keys compacts
    into one file that loses none (a key one server did not keep is null there)."""
    catalog = Catalog(tmp_path)
    start = (time.time() // DAY - 1) * DAY + 60  # yesterday: a day compaction takes
    ids = [f"k{i}" for i in range(100)]
    log = PredictionLog(catalog, keys=("id", "region"), housekeeping_interval=None)
    log.add([("r0", start, "churn", 1, 1, '[{"a":1}]', "[0.5]", (["k"], ["north"])),
             ("r1", start + 1, "churn", 1, 100, "[]", "[0.1]", (ids, [None] * 100)),
             ("r2", start + 2, "churn", 1, 2, "[]", "[0.2,0.3]", (["a", None], ["é", "s"]))])
    log.flush()
    other = PredictionLog(catalog, keys=("id",), housekeeping_interval=None)
    other.add([("r3", start + 3, "churn", 1, 1, "[]", "[0.4]", (["z"],))])
    other.flush()
    root = catalog.predictions_dir

    def kept() -> tuple[list[object], list[object]]:
        keyed, unkeyed = prediction_files.read_keyed(root, "churn", "id", ("region",))
        assert unkeyed is None and keyed is not None
        keyed = keyed.sort_by("ts")
        return keyed.column("key:id").to_pylist(), keyed.column("key:region").to_pylist()

    want = ([["k"], ids, ["a", None], ["z"]], [["north"], [None] * 100, ["é", "s"], None])
    assert len(prediction_files.files(root, "churn")) == 2 and kept() == want
    assert prediction_files.compact(root, "churn", prediction_files.day_of(time.time())) == 1
    assert len(prediction_files.files(root, "churn")) == 1 and kept() == want
