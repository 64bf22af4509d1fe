"""SQL for runs and everything logged to them: params, tags, metrics, artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from mlyard.storage import meta_store
from mlyard.storage.engine import Connection
from mlyard.storage.errors import CatalogError, NotFound

METRIC_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("key", pa.string()),
        ("value", pa.float64()),
        ("step", pa.int64()),
        ("ts", pa.float64()),
    ]
)

LOG_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("seq", pa.int64()),
        ("ts", pa.float64()),
        ("stream", pa.string()),
        ("line", pa.string()),
    ]
)

RUN_COLUMNS = (
    "run_id, project, name, status, start_time, end_time, heartbeat, pid, host, user_name, error"
)

_KEYS = pa.list_(pa.string())
_POINTS = pa.list_(pa.struct(list(METRIC_SCHEMA)[1:]))  # key, value, step, ts
# An ended run as a spool segment row: `is_new` rows are stored whole (the row, its params
# and tags), the others (whose start was stored while they ran) only record the outcome;
# with the metric points the run logged since its last flush (one file and one fsync per
# run's end, not two).
RUN_SEGMENT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()), ("project", pa.string()), ("name", pa.string()),
        ("status", pa.string()), ("start_time", pa.float64()), ("end_time", pa.float64()),
        ("heartbeat", pa.float64()), ("pid", pa.int64()), ("host", pa.string()),
        ("user_name", pa.string()), ("error", pa.string()), ("is_new", pa.bool_()),
        ("param_keys", _KEYS), ("param_values", _KEYS), ("tag_keys", _KEYS),
        ("tag_values", _KEYS), ("points", _POINTS),
    ]
)


class RunRecord(msgspec.Struct, gc=False):
    """A run with its params, latest metrics and tags. A Struct that the cycle collector
    does not track (it holds only strings and numbers): building the 10,000 of a full
    listing costs a third of what a dataclass does, and no collector passes over them."""

    run_id: str
    project: str
    name: str | None
    status: str
    start_time: float
    end_time: float | None
    heartbeat: float
    pid: int | None
    host: str | None
    user_name: str | None
    error: str | None
    params: dict[str, str] = msgspec.field(default_factory=dict)
    metrics: dict[str, float | None] = msgspec.field(default_factory=dict)
    tags: dict[str, str] = msgspec.field(default_factory=dict)


@dataclass(frozen=True)
class RunFilter:
    """One condition: `field` is `status`, `name`, or a key under `params`/`metrics`/`tags`."""

    kind: str  # "params" | "metrics" | "tags" | "attr"
    key: str
    op: str  # = != < <= > >=
    value: str | float


@dataclass(frozen=True)
class RunSort:
    kind: str  # "params" | "metrics" | "attr"
    key: str
    descending: bool = False


_OPS = {"=", "!=", "<", "<=", ">", ">="}
RUN_ATTRIBUTES = frozenset(
    {"status", "name", "start_time", "end_time", "run_id", "host", "user_name", "duration"}
)


def insert_run(con: Connection, run: RunRecord) -> None:
    """Store a run not stored before, with its params and tags."""
    con.execute(
        f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id, run.project, run.name, run.status, run.start_time, run.end_time,
            run.heartbeat, run.pid, run.host, run.user_name, run.error,
        ],
    )
    # Plain inserts: the run is new, and an upsert costs DuckDB several times as much.
    for table, items in (("params", run.params), ("tags", run.tags)):
        if items:
            con.execute(f"INSERT INTO {table} SELECT ?, unnest(?::VARCHAR[]), "
                        "unnest(?::VARCHAR[])", [run.run_id, list(items), list(items.values())])


@contextmanager
def _registered(con: Connection, name: str, batch: pa.Table) -> Iterator[None]:
    """`batch` readable as `name` for the block. Not unregistered when the block fails:
    DuckDB refuses even that in an aborted transaction, which would hide the real error;
    the unit's cursor, closed at its end, drops the name with it."""
    con.register(name, batch)
    yield
    con.unregister(name)


def ended_run_table(run: RunRecord, stored: bool, points: pa.Table | None) -> pa.Table:
    """An ended run as a spool segment: whether it is stored yet, and its last metric
    points (a METRIC_SCHEMA table, or None)."""
    columns: dict[str, Any] = {name: [getattr(run, name)] for name in RUN_COLUMNS.split(", ")}
    columns["is_new"] = [not stored]
    for kind, items in (("param", run.params), ("tag", run.tags)):
        columns[f"{kind}_keys"] = [[] if stored else list(items)]
        columns[f"{kind}_values"] = [[] if stored else list(items.values())]
    rows = points.select(METRIC_SCHEMA.names[1:]).combine_chunks() if points is not None \
        else pa.table([pa.array([], f.type) for f in list(METRIC_SCHEMA)[1:]],
                      names=METRIC_SCHEMA.names[1:])
    columns["points"] = pa.ListArray.from_arrays(
        pa.array([0, rows.num_rows], pa.int32()), pa.StructArray.from_arrays(
            [rows.column(name).combine_chunks() for name in rows.column_names],
            fields=list(_POINTS.value_type)))
    return pa.table(columns, schema=RUN_SEGMENT_SCHEMA)


def load_ended_runs(con: Connection, batch: pa.Table) -> None:
    """Apply a segment of ended runs: new ones whole, the others their outcome; each end
    is a `run.<status>` event."""
    with _registered(con, "run_batch", batch):
        con.execute(f"INSERT INTO runs SELECT {RUN_COLUMNS} FROM run_batch WHERE is_new")
        for table, kind in (("params", "param"), ("tags", "tag")):
            con.execute(f"INSERT INTO {table} SELECT run_id, unnest({kind}_keys), "
                        f"unnest({kind}_values) FROM run_batch WHERE is_new")
        con.execute(
            "UPDATE runs SET status = b.status, end_time = b.end_time, error = b.error, "
            "heartbeat = greatest(runs.heartbeat, b.heartbeat) "
            "FROM run_batch AS b WHERE NOT b.is_new AND runs.run_id = b.run_id")
    points = batch.column("points").combine_chunks()
    flat = points.flatten()
    if len(flat):
        insert_metrics(con, pa.table(
            [batch.column("run_id").combine_chunks().take(pc.list_parent_indices(points)),
             *(flat.field(name) for name in METRIC_SCHEMA.names[1:])], schema=METRIC_SCHEMA))
    ends = [r for r in batch.select(["end_time", "status", "run_id", "user_name", "error"])
            .to_pylist() if r["end_time"] is not None]
    meta_store.add_events(con, [meta_store.NewEvent(f"run.{e['status']}", e["run_id"],
                                                    e["user_name"], {"error": e["error"]})
                                for e in ends],
                          times=[e["end_time"] for e in ends])


def finish_run(
    con: Connection, run_id: str, status: str, end_time: float, error: str | None
) -> None:
    con.execute(
        "UPDATE runs SET status = ?, end_time = ?, heartbeat = greatest(heartbeat, ?), error = ? "
        "WHERE run_id = ?",
        [status, end_time, end_time, error, run_id],
    )


def touch_heartbeat(con: Connection, run_id: str, ts: float) -> None:
    con.execute(
        "UPDATE runs SET heartbeat = greatest(heartbeat, ?) WHERE run_id = ?", [ts, run_id]
    )


@dataclass(frozen=True)
class RunningRun:
    run_id: str
    pid: int | None
    host: str | None
    start_time: float
    heartbeat: float


def running_runs(con: Connection, unless_tagged: str) -> list[RunningRun]:
    """Every run still marked running (but those with the tag `unless_tagged`)."""
    rows = con.execute(
        "SELECT run_id, pid, host, start_time, heartbeat FROM runs WHERE status = 'running' "
        "AND run_id NOT IN (SELECT run_id FROM tags WHERE key = ?)", [unless_tagged]
    ).fetchall()
    return [RunningRun(*row) for row in rows]


def mark_crashed(con: Connection, run_ids: list[str]) -> None:
    con.execute(
        "UPDATE runs SET status = 'crashed', end_time = heartbeat "
        "WHERE status = 'running' AND list_contains(?, run_id)",
        [run_ids],
    )


def set_params(con: Connection, run_id: str, params: dict[str, str]) -> None:
    """Record params; logging a different value for a key already logged is an error."""
    existing = dict(
        con.execute(
            "SELECT key, value FROM params WHERE run_id = ? AND list_contains(?, key)",
            [run_id, list(params)],
        ).fetchall()
    )
    for key, value in params.items():
        if key in existing and existing[key] != value:
            raise CatalogError(
                f"param {key!r} of run {run_id[:8]} is already {existing[key]!r}; "
                f"params cannot change (got {value!r}); log a metric or tag instead"
            )
    fresh = [k for k in params if k not in existing]
    if fresh:
        # One statement over two lists: executemany runs one statement per row (~2 ms
        # for ten params, a fifth of creating a run).
        con.execute("INSERT INTO params SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                    [run_id, fresh, [params[k] for k in fresh]])


def get_tags(con: Connection, run_id: str) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM tags WHERE run_id = ?", [run_id]).fetchall())


def set_tags(con: Connection, run_id: str, tags: dict[str, str]) -> None:
    if not tags:
        return
    con.execute(
        "INSERT INTO tags SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]) "
        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        [run_id, list(tags), list(tags.values())],
    )


def insert_metrics(con: Connection, batch: pa.Table) -> None:
    """Append metric points and move each key's latest value (highest step, then time)."""
    with _registered(con, "metric_batch", batch):
        con.execute("INSERT INTO metrics SELECT run_id, key, value, step, ts FROM metric_batch")
        con.execute(
            """
            INSERT INTO latest_metrics
            SELECT run_id, key, arg_max(value, (step, ts)), max(step), max(ts)
            FROM metric_batch GROUP BY run_id, key
            ON CONFLICT (run_id, key) DO UPDATE SET
                value = CASE WHEN excluded.step >= step THEN excluded.value ELSE value END,
                step = greatest(step, excluded.step),
                ts = greatest(ts, excluded.ts)
            """
        )
        con.execute(
            """
            UPDATE runs SET heartbeat = greatest(runs.heartbeat, b.ts)
            FROM (SELECT run_id, max(ts) AS ts FROM metric_batch GROUP BY run_id) AS b
            WHERE runs.run_id = b.run_id
            """
        )


def insert_logs(con: Connection, batch: pa.Table) -> None:
    """Append a run's output lines (numbered by the writer, so order survives spooling)."""
    with _registered(con, "log_batch", batch):
        con.execute("INSERT INTO run_logs SELECT run_id, seq, ts, stream, line FROM log_batch")


@dataclass(frozen=True)
class LogLine:
    seq: int  # the line's place in the run's output
    ts: float
    stream: str  # stdout, stderr, train, or a name the script chose
    line: str


def log_tail(con: Connection, run_id: str, limit: int) -> list[LogLine]:
    """The last `limit` lines a run logged, oldest first."""
    rows = con.execute("SELECT seq, ts, stream, line FROM run_logs WHERE run_id = ? "
                       "ORDER BY seq DESC LIMIT ?", [run_id, limit]).fetchall()
    return [LogLine(*row) for row in reversed(rows)]


def add_artifact(
    con: Connection, run_id: str, name: str, object_hash: str, size: int, ts: float
) -> None:
    con.execute(
        "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, name) DO UPDATE "
        "SET object_hash = excluded.object_hash, size = excluded.size, "
        "created_at = excluded.created_at",
        [run_id, name, object_hash, size, ts],
    )


@dataclass(frozen=True)
class Artifact:
    name: str
    blake3: str  # the object's hash in the object store
    size: int
    created_at: float


def list_artifacts(con: Connection, run_id: str) -> list[Artifact]:
    rows = con.execute(
        "SELECT name, object_hash, size, created_at FROM artifacts WHERE run_id = ? ORDER BY name",
        [run_id],
    ).fetchall()
    return [Artifact(*row) for row in rows]


def artifact_hashes(con: Connection, run_id: str) -> dict[str, str]:
    """Artifact name -> object hash, for readers that open artifacts by name."""
    return {a.name: a.blake3 for a in list_artifacts(con, run_id)}


def resolve_run_id(con: Connection, ref: str, project: str | None = None) -> str:
    """A full run id from `latest`, a unique id prefix (4+ characters) or a run name.

    A name used by several runs means the newest of them, as `latest` does.
    """
    if ref == "latest":
        row = con.execute(
            "SELECT run_id FROM runs WHERE ? IS NULL OR project = ? "
            "ORDER BY start_time DESC LIMIT 1", [project, project]).fetchone()
        if row is None:
            raise NotFound("no runs yet, so there is no latest run")
        return str(row[0])
    if len(ref) >= 4:
        rows = con.execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?) LIMIT 2",
                           [ref.lower()]).fetchall()
        if len(rows) > 1:
            raise NotFound(f"{ref!r} matches more than one run id; give more of it")
        if rows:
            return str(rows[0][0])
    row = con.execute("SELECT run_id FROM runs WHERE name = ? ORDER BY start_time DESC LIMIT 1",
                      [ref]).fetchone()
    if row is None:
        raise NotFound(f"no run matches {ref!r} (by id prefix or name)")
    return str(row[0])


def metric_history(
    con: Connection, run_id: str, key: str
) -> list[tuple[int, float | None, float]]:
    return con.execute(
        "SELECT step, value, ts FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, ts",
        [run_id, key],
    ).fetchall()


def metric_keys(con: Connection, run_id: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT key FROM latest_metrics WHERE run_id = ? ORDER BY key", [run_id]
        ).fetchall()
    ]


def count_metric_points(con: Connection, run_id: str | None = None) -> int:
    row = con.execute(
        "SELECT count(*) FROM metrics WHERE ? IS NULL OR run_id = ?", [run_id, run_id]
    ).fetchone()
    return int(row[0]) if row else 0


def latest_metrics_for(con: Connection, run_ids: list[str]) -> dict[str, dict[str, float | None]]:
    """Each run's latest value of every metric."""
    found: dict[str, dict[str, float | None]] = {run_id: {} for run_id in run_ids}
    for run_id, key, value in con.execute(
        "SELECT run_id, key, value FROM latest_metrics WHERE list_contains(?, run_id)", [run_ids]
    ).fetchall():
        found[run_id][key] = value
    return found


def metric_point_counts(con: Connection, run_id: str) -> dict[str, int]:
    return dict(
        con.execute(
            "SELECT key, count(*) FROM metrics WHERE run_id = ? GROUP BY key ORDER BY key",
            [run_id],
        ).fetchall()
    )


def query_runs(
    con: Connection,
    project: str | None,
    filters: list[RunFilter],
    sort: RunSort | None,
    limit: int | None,
    offset: int = 0,
) -> list[RunRecord]:
    """Runs matching every filter, sorted, with their params, latest metrics and tags."""
    where, args = _where_sql(project, filters)
    join_sql, join_args, order_sql = _order_sql(sort)
    # Each selected run's place in the answer, so the rows of params, metrics and tags
    # find their run by list index rather than by hashing 100,000 run-id strings.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE selected_runs AS
        SELECT run_id, pos FROM (
            SELECT r.run_id, row_number() OVER (ORDER BY {order_sql}) - 1 - ? AS pos
            FROM runs r {join_sql} WHERE {where})
        WHERE pos >= 0 AND (? IS NULL OR pos < ?)
        """,
        [offset, *join_args, *args, limit, limit],
    )
    selected = con.sql(
        f"SELECT {', '.join('r.' + c.strip() for c in RUN_COLUMNS.split(','))} "
        "FROM runs r JOIN selected_runs s USING (run_id) ORDER BY s.pos"
    ).to_arrow_table()
    columns = (column.to_pylist() for column in selected.columns)
    runs = list(map(RunRecord, *columns))
    for table, attr in (("params", "params"), ("latest_metrics", "metrics"), ("tags", "tags")):
        # Arrow then to_pylist is about twice as fast as fetchall for 100k rows.
        found = con.sql(
            f"SELECT s.pos, t.key, t.value FROM {table} t JOIN selected_runs s USING (run_id)"
        ).to_arrow_table()
        positions, values = found.column(0).to_pylist(), found.column(2).to_pylist()
        # A handful of keys repeat across every run: each is made a str once and shared.
        coded = pc.dictionary_encode(found.column(1)).combine_chunks()
        keys = list(map(coded.dictionary.to_pylist().__getitem__, coded.indices.to_pylist()))
        targets = [getattr(run, attr) for run in runs]
        for pos, key, value in zip(positions, keys, values, strict=True):
            targets[pos][key] = value
    return runs


def count_runs(con: Connection, project: str | None, filters: list[RunFilter]) -> int:
    where, args = _where_sql(project, filters)
    row = con.execute(f"SELECT count(*) FROM runs r WHERE {where}", args).fetchone()
    return int(row[0]) if row else 0


def status_counts(con: Connection, project: str | None) -> dict[str, int]:
    return dict(con.execute("SELECT status, count(*) FROM runs WHERE ? IS NULL OR project = ? "
                            "GROUP BY status ORDER BY status", [project, project]).fetchall())


def known_keys(con: Connection, project: str | None) -> tuple[list[str], list[str]]:
    """Every param key and every metric key used by the project's runs."""
    keys = []
    for table in ("params", "latest_metrics"):
        keys.append([r[0] for r in con.execute(
            f"SELECT DISTINCT t.key FROM {table} t JOIN runs r USING (run_id) "
            "WHERE ? IS NULL OR r.project = ? ORDER BY 1", [project, project]).fetchall()])
    return keys[0], keys[1]


def _where_sql(project: str | None, filters: list[RunFilter]) -> tuple[str, list[Any]]:
    where, args = ["(? IS NULL OR r.project = ?)"], [project, project]
    for flt in filters:
        clause, clause_args = _filter_sql(flt)
        where.append(clause)
        args.extend(clause_args)
    return " AND ".join(where), args


def _filter_sql(flt: RunFilter) -> tuple[str, list[Any]]:
    if flt.op not in _OPS:
        raise CatalogError(f"unknown comparison {flt.op!r}; use one of {' '.join(sorted(_OPS))}")
    numeric = isinstance(flt.value, float)
    if flt.kind == "attr":
        if flt.key not in RUN_ATTRIBUTES:
            raise CatalogError(f"cannot filter on {flt.key!r}; use one of {sorted(RUN_ATTRIBUTES)}")
        return f"{_attr_expr(flt.key)} {flt.op} ?", [flt.value]
    if flt.kind not in {"params", "metrics", "tags"}:
        raise CatalogError(f"unknown field group {flt.kind!r}")
    table = "latest_metrics" if flt.kind == "metrics" else flt.kind
    cast = flt.kind != "metrics" and numeric
    value_expr = "try_cast(t.value AS DOUBLE)" if cast else "t.value"
    return (
        f"r.run_id IN (SELECT t.run_id FROM {table} t WHERE t.key = ? "
        f"AND {value_expr} {flt.op} ?)",
        [flt.key, flt.value],
    )


def _order_sql(sort: RunSort | None) -> tuple[str, list[Any], str]:
    """(join, join args, ORDER BY) for a sort; params sort numerically where they parse."""
    if sort is None:
        return "", [], "r.start_time DESC, r.run_id"
    direction = "DESC" if sort.descending else "ASC"
    if sort.kind == "attr":
        if sort.key not in RUN_ATTRIBUTES:
            raise CatalogError(f"cannot sort on {sort.key!r}; use one of {sorted(RUN_ATTRIBUTES)}")
        return "", [], f"{_attr_expr(sort.key)} {direction} NULLS LAST, r.run_id"
    table = {"metrics": "latest_metrics", "params": "params"}.get(sort.kind)
    if table is None:
        raise CatalogError(f"cannot sort on {sort.kind}.{sort.key}")
    join = f"LEFT JOIN (SELECT run_id, value FROM {table} WHERE key = ?) k ON k.run_id = r.run_id"
    if sort.kind == "params":
        order = (f"try_cast(k.value AS DOUBLE) {direction} NULLS LAST, "
                 f"k.value {direction} NULLS LAST, r.run_id")
    else:
        order = f"k.value {direction} NULLS LAST, r.run_id"
    return join, [sort.key], order


def _attr_expr(key: str) -> str:
    if key == "duration":
        return "(coalesce(r.end_time, r.heartbeat) - r.start_time)"
    return f"r.{key}"
