"""Delivering alerts: the `alert.*` events are an outbox, read past a cursor.

One process delivers at a time (whoever holds `.mlyard/alerts.lock`): the daemon holds it
for as long as it runs, and when no daemon runs, each `mlyard` command that may have
raised an alert delivers on its way out. Sending happens with the catalog closed, and
every attempt is recorded afterwards, so a receiver that never answers holds up nothing
but its own alert. A process that dies between sending and recording sends again next
time: an alert may arrive twice, never not at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
from filelock import FileLock, Timeout

from mlyard.core.alerts.message import alert_kind, payload, severity
from mlyard.core.alerts.receivers import DeliveryFailed, Receiver, receivers
from mlyard.core.config import AlertsConfig
from mlyard.core.workspace import Workspace
from mlyard.storage import alerts_store, meta_store
from mlyard.storage.alerts_store import (
    DELIVERED,
    FAILED,
    GAVE_UP,
    NO_RECEIVER,
    SUPPRESSED,
    Attempt,
)
from mlyard.storage.monitor_store import Event, recent_events

log = logging.getLogger("mlyard.alerts")

# An alert older than this when first looked at is history, not news: turning alerts on
# in a project with months of events must not send them all.
MAX_AGE = 86400.0
COURIER_SECONDS = 2.0  # how often the daemon looks for new alerts and due retries


def deliver_pending(ws: Workspace, wait: float | None = None) -> list[Attempt]:
    """Deliver new alerts and due retries, then keep retrying for up to `wait` seconds
    (default `[alerts] wait`); return the attempts made. Does nothing when no receiver is
    configured, or when another process (the daemon) is delivering."""
    config = ws.config.alerts
    if not receivers(config):
        return []
    lock = _lock(ws)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return []
    try:
        deadline = time.monotonic() + (config.seconds("wait") if wait is None else wait)
        made: list[Attempt] = []
        while True:
            attempts, next_try = deliver_once(ws)
            made += attempts
            if next_try is None:
                return made
            delay = max(0.0, next_try - time.time())
            if time.monotonic() + delay > deadline:
                return made
            time.sleep(delay)  # until the earliest retry's backoff has passed
    finally:
        lock.release()


def deliver_once(ws: Workspace) -> tuple[list[Attempt], float | None]:
    """One pass (the caller holds the lock): new alerts past the cursor, then retries
    that are due. Returns the attempts and when the next retry falls due."""
    config, now = ws.config.alerts, time.time()
    targets = {receiver.name: receiver for receiver in receivers(config)}
    with ws.catalog.session() as con:
        new = alerts_store.alerts_after(con, alerts_store.cursor(con), now - MAX_AGE)
        retries = alerts_store.due_retries(con, now)
        sent = alerts_store.last_sent(con)
        retried = alerts_store.events_by_id(con, [r.event_id for r in retries])
    records: list[Attempt] = []
    sends: list[tuple[Event, Receiver, int]] = []
    for event in new:
        if not wanted(event, config):
            continue
        since = now - sent.get(event.kind, float("-inf"))
        if since < config.seconds("cooldown"):
            records.append(Attempt(event.event_id, NO_RECEIVER, 1, now, SUPPRESSED,
                                   f"a {alert_kind(event)} alert was sent {since:.0f}s ago "
                                   "([alerts] cooldown)"))
            continue
        sent[event.kind] = now
        sends += [(event, receiver, 1) for receiver in targets.values()]
    for retry in retries:
        receiver = targets.get(retry.receiver)
        if receiver is None or retry.event_id not in retried:
            records.append(Attempt(retry.event_id, retry.receiver, retry.attempt + 1, now,
                                   GAVE_UP, "the receiver is no longer in [alerts]"))
        else:
            sends.append((retried[retry.event_id], receiver, retry.attempt + 1))
    records += _send_all(ws.project, sends, config)
    with ws.catalog.session() as con:
        alerts_store.add_attempts(con, records)
        if new:
            alerts_store.set_cursor(con, new[-1].event_id)
        next_try = alerts_store.next_retry(con)
    return records, next_try


def wanted(event: Event, config: AlertsConfig) -> bool:
    """Whether `[alerts]` asks for this alert (a test alert is sent by `send_test`)."""
    kind = alert_kind(event)
    if kind not in config.kinds:
        return False
    return kind != "drift" or config.drift_severity == "moderate" or \
        severity(event) == "severe"


def send_test(ws: Workspace) -> list[Attempt]:
    """Send one test alert to every receiver now, once each, and record the attempts."""
    config = ws.config.alerts
    with ws.catalog.session() as con:
        meta_store.add_event(con, "alert.test", ws.project, "mlyard alerts test",
                             {"severity": "info"})
        event = recent_events(con, "alert.test", 1)[0]
    # No retries: the person who asked reads the outcome now.
    attempts = _send_all(ws.project, [(event, receiver, 1) for receiver in receivers(config)],
                         config, retries=0)
    with ws.catalog.session() as con:
        alerts_store.add_attempts(con, attempts)
    return attempts


def _send_all(project: str, sends: Sequence[tuple[Event, Receiver, int]],
              config: AlertsConfig, retries: int | None = None) -> list[Attempt]:
    """Every send at once, so a pass takes one `timeout` at most however many
    receivers are slow; the attempts in the order of `sends`."""
    def one(send: tuple[Event, Receiver, int]) -> Attempt:
        event, receiver, number = send
        return _attempt(project, event, receiver, number, config, retries)

    if len(sends) <= 1:
        return [one(send) for send in sends]
    with ThreadPoolExecutor(max_workers=min(len(sends), 8),
                            thread_name_prefix="mlyard-alert") as pool:
        return list(pool.map(one, sends))


def _attempt(project: str, event: Event, receiver: Receiver, number: int,
             config: AlertsConfig, retries: int | None = None) -> Attempt:
    """Send `event` to `receiver` once; what happened, as the record of attempt `number`.
    Whatever the receiver does ends here as a recorded attempt, so it is retried on its
    own schedule and never re-sent to the others."""
    body = payload(event, project)
    started = time.time()
    try:
        receiver.send(orjson.dumps(body), body["text"], config.seconds("timeout"))
        return Attempt(event.event_id, receiver.name, number, started, DELIVERED)
    except DeliveryFailed as failed:
        reason = failed.reason
    except Exception as exc:  # a stranger's answer: nothing it does may escape
        reason = f"failed: {type(exc).__name__}"
    allowed = config.retries if retries is None else retries
    if number > allowed:
        log.error("alert %d to %s: %s; gave up after %d attempts", event.event_id,
                  receiver.name, reason, number)
        return Attempt(event.event_id, receiver.name, number, started, GAVE_UP, reason)
    backoff = config.seconds("backoff") * 2 ** (number - 1)
    log.warning("alert %d to %s: %s; retrying in %.0fs", event.event_id, receiver.name,
                reason, backoff)
    return Attempt(event.event_id, receiver.name, number, started, FAILED, reason,
                   time.time() + backoff)


def _lock(ws: Workspace) -> FileLock:
    ws.root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(ws.root / "alerts.lock"), thread_local=False)


class Courier:
    """The daemon's deliverer: a thread that holds the alerts lock while the daemon runs
    (one-off commands then leave delivery to it) and makes a pass every few seconds."""

    def __init__(self, ws: Workspace, interval: float = COURIER_SECONDS) -> None:
        self.ws = ws
        self.interval = interval
        self._lock = _lock(ws)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlyard-alerts", daemon=True)

    def start(self) -> None:
        if receivers(self.ws.config.alerts):
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # A pass sending to a receiver that does not answer may take a while; past
            # this the process's exit frees the lock and the next process retries.
            self._thread.join(timeout=30)

    def _run(self) -> None:
        held = False
        try:
            while not self._stop.is_set():
                held = held or self._take()
                if held:
                    self._pass()
                self._stop.wait(self.interval)
        finally:
            if held:
                self._lock.release()

    def _take(self) -> bool:
        try:
            self._lock.acquire(timeout=0)  # a one-off command may be delivering right now
        except Timeout:
            return False
        return True

    def _pass(self) -> None:
        try:
            deliver_once(self.ws)
        except Exception:  # a busy catalog, a full disk: try again on the next pass
            log.exception("alert delivery pass failed; trying again in %.0fs",
                          self.interval)


@dataclass(frozen=True)
class Delivery:
    """How an alert's delivery stands, for `mlyard alerts` and the Monitoring screen."""

    state: str  # delivered, retrying, gave up, suppressed, pending, not sent
    detail: str  # per receiver: its last outcome and error


def delivery_states(ws: Workspace, events: Sequence[Event]) -> dict[int, Delivery]:
    """The delivery state of each of `events` (alert events)."""
    config = ws.config.alerts
    with ws.catalog.session() as con:
        attempts = alerts_store.attempts_of(con, [e.event_id for e in events])
        looked_at = alerts_store.cursor(con)
    configured = bool(receivers(config))
    states = {}
    for event in events:
        newest: dict[str, Attempt] = {}
        for attempt in attempts.get(event.event_id, []):
            newest[attempt.receiver] = attempt
        states[event.event_id] = _state(list(newest.values()), configured and wanted(
            event, config) and event.event_id > looked_at)
    return states


def _state(newest: list[Attempt], pending: bool) -> Delivery:
    if not newest:
        return Delivery("pending" if pending else "not sent", "")
    detail = "; ".join(f"{a.receiver}: {a.outcome}" + (f" ({a.error})" if a.error else "")
                       for a in newest)
    outcomes = {a.outcome for a in newest}
    if SUPPRESSED in outcomes:
        return Delivery(SUPPRESSED, newest[0].error or "")
    for state in (GAVE_UP, FAILED):
        if state in outcomes:
            return Delivery("retrying" if state == FAILED else state, detail)
    return Delivery(DELIVERED, detail)
