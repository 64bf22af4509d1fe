"""SQL for projects and the event log (who did what, when and why)."""

from __future__ import annotations

import json
import time
from typing import Any

import duckdb

Connection = duckdb.DuckDBPyConnection


def register_project(con: Connection, name: str) -> None:
    con.execute(
        "INSERT INTO projects VALUES (?, ?) ON CONFLICT (name) DO NOTHING", [name, time.time()]
    )


def add_event(
    con: Connection, kind: str, subject: str, actor: str | None, detail: dict[str, Any]
) -> None:
    con.execute(
        "INSERT INTO events (ts, kind, subject, actor, detail) VALUES (?, ?, ?, ?, ?)",
        [time.time(), kind, subject, actor, json.dumps(detail)],
    )

