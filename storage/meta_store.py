"""SQL for projects and the event log (who did what, when and why)."""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

import pyarrow as pa

from mlyard.storage.engine import Connection


def register_project(con: Connection, name: str) -> None:
    con.execute(
        "INSERT INTO projects VALUES (?, ?) ON CONFLICT (name) DO NOTHING", [name, time.time()]
    )


def workspace_id(con: Connection) -> str:
    """This catalog's own random identity (made by its migrations, once)."""
    row = con.execute("SELECT id FROM workspace_identity").fetchone()
    return str(row[0]) if row else ""


# Events written where no catalog is at hand (a file set aside while a folder was read):
# a spool segment the next unit of work loads like any other.
EVENT_SCHEMA = pa.schema([("ts", pa.float64()), ("kind", pa.string()),
                          ("subject", pa.string()), ("actor", pa.string()),
                          ("detail", pa.string())])


def event_segment(kind: str, subject: str, actor: str, detail: dict[str, Any]) -> pa.Table:
    return pa.table({"ts": [time.time()], "kind": [kind], "subject": [subject],
                     "actor": [actor], "detail": [json.dumps(detail)]}, schema=EVENT_SCHEMA)


def insert_event_segment(con: Connection, batch: pa.Table) -> None:
    con.register("event_batch", batch)
    con.execute("INSERT INTO events (ts, kind, subject, actor, detail) "
                "SELECT ts, kind, subject, actor, detail FROM event_batch")
    con.unregister("event_batch")


def add_event(
    con: Connection, kind: str, subject: str, actor: str | None, detail: dict[str, Any]
) -> None:
    con.execute(
        "INSERT INTO events (ts, kind, subject, actor, detail) VALUES (?, ?, ?, ?, ?)",
        [time.time(), kind, subject, actor, json.dumps(detail)],
    )



class NewEvent(NamedTuple):
    """An event to record (the catalog gives it its id and, by default, the time); read
    back, events are monitor_store.Event."""

    kind: str
    subject: str
    actor: str | None
    detail: dict[str, Any]


def add_events(con: Connection, events: list[NewEvent], times: list[float] | None = None
               ) -> None:
    """Several events in one statement (a batch of ingested files, of ended runs), at
    `times` (default: now)."""
    if events:
        kinds, subjects, actors, details = zip(*events, strict=True)
        con.execute("INSERT INTO events (ts, kind, subject, actor, detail) SELECT "
                    "unnest(?::DOUBLE[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                    [times or [time.time()] * len(events), list(kinds), list(subjects),
                     list(actors), [json.dumps(d) for d in details]])
