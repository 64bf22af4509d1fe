"""SQL for alert delivery: `alert.*` events are the outbox, `alert_deliveries` holds every
attempt to hand one to a receiver, and `alert_cursor` how far the events were read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlyard.storage.engine import Connection
from mlyard.storage.monitor_store import Event, events_from_rows

DELIVERED, FAILED, GAVE_UP, SUPPRESSED = "delivered", "failed", "gave up", "suppressed"
NO_RECEIVER = "-"  # the receiver of a suppressed alert's one row: it went to none


@dataclass(frozen=True)
class Attempt:
    event_id: int
    receiver: str  # "webhook <url>" or "command <first word>"
    attempt: int  # 1 for the first try
    ts: float
    outcome: str  # DELIVERED, FAILED (to be retried at next_try), GAVE_UP or SUPPRESSED
    error: str | None = None
    next_try: float | None = None


def cursor(con: Connection) -> int:
    """The last alert event looked at (0: none yet)."""
    row = con.execute("SELECT event_id FROM alert_cursor").fetchone()
    return int(row[0]) if row else 0


def set_cursor(con: Connection, event_id: int) -> None:
    con.execute("INSERT OR REPLACE INTO alert_cursor VALUES (1, ?)", [event_id])


def alerts_after(con: Connection, event_id: int, since: float) -> list[Event]:
    """Alert events after `event_id` and no older than `since`, oldest first."""
    return events_from_rows(con.execute(
        "SELECT event_id, ts, kind, subject, actor, CAST(detail AS VARCHAR) FROM events "
        "WHERE kind LIKE 'alert.%' AND event_id > ? AND ts >= ? ORDER BY event_id",
        [event_id, since]).fetchall())


def events_by_id(con: Connection, event_ids: Sequence[int]) -> dict[int, Event]:
    rows = con.execute(
        "SELECT event_id, ts, kind, subject, actor, CAST(detail AS VARCHAR) FROM events "
        "WHERE event_id IN (SELECT unnest(?::BIGINT[]))", [list(event_ids)]).fetchall()
    return {event.event_id: event for event in events_from_rows(rows)}


def due_retries(con: Connection, now: float) -> list[Attempt]:
    """The last failed attempt of each (alert, receiver) whose retry is due."""
    rows = con.execute(
        "SELECT event_id, receiver, attempt, ts, outcome, error, next_try FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY event_id, receiver "
        "                               ORDER BY attempt DESC) AS newest "
        "  FROM alert_deliveries) WHERE newest = 1 AND outcome = ? AND next_try <= ? "
        "ORDER BY next_try", [FAILED, now]).fetchall()
    return [Attempt(*row) for row in rows]


def next_retry(con: Connection) -> float | None:
    """When the earliest retry still owed falls due (None: none is owed)."""
    row = con.execute(
        "SELECT min(next_try) FROM (SELECT outcome, next_try, row_number() OVER ("
        "  PARTITION BY event_id, receiver ORDER BY attempt DESC) AS newest "
        "  FROM alert_deliveries) WHERE newest = 1 AND outcome = ?", [FAILED]).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def last_sent(con: Connection) -> dict[str, float]:
    """Per alert kind (`alert.drift`...), when the newest alert not suppressed was first
    tried: what a cooldown counts from."""
    rows = con.execute(
        "SELECT e.kind, max(d.ts) FROM alert_deliveries d JOIN events e USING (event_id) "
        "WHERE d.attempt = 1 AND d.outcome <> ? GROUP BY e.kind", [SUPPRESSED]).fetchall()
    return {kind: float(ts) for kind, ts in rows}


def add_attempts(con: Connection, attempts: Sequence[Attempt]) -> None:
    if attempts:
        con.executemany("INSERT OR REPLACE INTO alert_deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(a.event_id, a.receiver, a.attempt, a.ts, a.outcome, a.error,
                          a.next_try) for a in attempts])


def attempts_of(con: Connection, event_ids: Sequence[int]) -> dict[int, list[Attempt]]:
    """Every attempt for these alerts, oldest first."""
    rows = con.execute(
        "SELECT event_id, receiver, attempt, ts, outcome, error, next_try "
        "FROM alert_deliveries WHERE event_id IN (SELECT unnest(?::BIGINT[])) "
        "ORDER BY event_id, ts, attempt", [list(event_ids)]).fetchall()
    found: dict[int, list[Attempt]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(Attempt(*row))
    return found
