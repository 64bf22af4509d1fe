"""SQL for the tuning journal: Optuna's log of study operations, one row per entry."""

from __future__ import annotations

import json
import time
from typing import Any

from mlyard.storage.engine import Connection


def append(con: Connection, entries: list[dict[str, Any]]) -> None:
    """Append entries after the last one; the caller's transaction keeps numbers unique."""
    row = con.execute("SELECT coalesce(max(seq), -1) FROM tune_journal").fetchone()
    first = int(row[0]) + 1 if row else 0
    now = time.time()
    con.executemany("INSERT INTO tune_journal VALUES (?, ?, ?)",
                    [[first + i, now, json.dumps(e)] for i, e in enumerate(entries)])


def read_from(con: Connection, seq: int) -> list[dict[str, Any]]:
    rows = con.execute("SELECT entry FROM tune_journal WHERE seq >= ? ORDER BY seq",
                       [seq]).fetchall()
    return [json.loads(entry) for (entry,) in rows]
