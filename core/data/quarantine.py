"""Files refused at ingest, each with the reason it was refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlyard.core.workspace import Workspace

REASON_SUFFIX = ".reason.json"


@dataclass
class QuarantinedFile:
    path: Path  # the copy in quarantine
    source: str  # where it came from
    reason: str
    refused_at: str


def list_quarantined(ws: Workspace) -> list[QuarantinedFile]:
    """Newest first; a reason file that cannot be read is shown as such, not skipped."""
    folder = ws.quarantine_dir
    if not folder.is_dir():
        return []
    found = []
    for reason_file in sorted(folder.glob(f"*{REASON_SUFFIX}"), reverse=True):
        copy = reason_file.with_name(reason_file.name[: -len(REASON_SUFFIX)])
        try:
            record = json.loads(reason_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {"reason": f"unreadable reason file {reason_file.name}"}
        found.append(QuarantinedFile(copy, str(record.get("source", "?")),
                                     str(record.get("reason", "?")),
                                     str(record.get("refused_at", "?"))))
    return found
