"""What an alert says: one readable line (`text`, which chat webhooks show as it is) and
the structured fields a script reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlyard.storage.monitor_store import Event

MAX_NAMES = 5  # drifted columns or findings named in the line before "and N more"


def alert_kind(event: Event) -> str:
    """`drift`, `quality`, `refused`, `job`, `gate`, `server`, `spool`, `workspace` or
    `test`."""
    return event.kind.removeprefix("alert.")


def severity(event: Event) -> str:
    return str(event.detail.get("severity", "error"))


def payload(event: Event, project: str) -> dict[str, Any]:
    """The JSON body a webhook gets and a command reads on standard input."""
    return {"text": text(event, project), "kind": alert_kind(event),
            "severity": severity(event), "project": project, "subject": event.subject,
            "event_id": event.event_id,
            "time": dt.datetime.fromtimestamp(event.ts, dt.UTC).isoformat(timespec="seconds"),
            "detail": event.detail}


def text(event: Event, project: str) -> str:
    return f"mlyard {project}: {describe(event)}"


def describe(event: Event) -> str:
    """What happened, in one line (the alert's text without the project)."""
    detail, kind = event.detail, alert_kind(event)
    if kind == "drift":
        what = f"{severity(event)} drift: {detail.get('current', '?')} against model " \
               f"{event.subject}"
        if detail.get("drifted"):
            what += f" ({_some(detail['drifted'])})"
    elif kind == "quality":
        what = f"data quality warning on {detail.get('current', event.subject)}: " \
               f"{_some(detail.get('findings', []), '; ')}"
    elif kind == "refused":
        what = f"file refused and quarantined: {event.subject}: " \
               f"{_some(detail.get('findings', []), '; ')}"
    elif kind == "job":
        what = f"{detail.get('step', 'job')} job {event.subject} failed " \
               f"({detail.get('trigger', '?')}): {detail.get('error', '?')}"
    elif kind == "gate":
        what = f"{event.subject} not promoted: {_some(detail.get('failed', []), '; ')}"
    elif kind == "server":
        what = f"server for {event.subject} degraded: {detail.get('reason', '?')}"
    elif kind == "spool":
        what = f"unreadable spool segment {event.subject}: {detail.get('reason', '?')}"
    elif kind == "workspace":
        what = f"{detail.get('was', event.subject)} set aside: {detail.get('reason', '?')}"
    elif kind == "segment":
        what = f"model {event.subject} does worse for a group: " \
               f"{_some(detail.get('findings', []), '; ')}"
    elif kind == "test":
        what = "test alert from `mlyard alerts test`: this receiver works"
    else:
        what = f"{kind}: {event.subject}"
    return what


def _some(items: list[Any], separator: str = ", ") -> str:
    shown = separator.join(str(item) for item in items[:MAX_NAMES])
    more = len(items) - MAX_NAMES
    return shown + (f"{separator}and {more} more" if more > 0 else "")
