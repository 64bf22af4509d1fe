"""`mlyard drift` as one door: compare, store the report, and retrain when the project
says drift should ([monitor] on_drift = "retrain"), so a face or a script cannot forget
the second step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlyard.core.automation.pipeline import retrain_after_drift
from mlyard.core.monitoring import drift_reports
from mlyard.core.workspace import Workspace


@dataclass(frozen=True)
class DriftOutcome:
    report: drift_reports.DriftReport
    retrained: bool  # this check started the retrain the project asks for on drift


def drift_check(ws: Workspace, current: str | None = None, served: str | None = None,
                reference: str = "champion", file: Path | None = None) -> DriftOutcome:
    """Drift of a dataset version (default: the newest), of served traffic (`served`,
    like "24h") or of a file not ingested yet against `reference`'s training data,
    stored and alerted on; a retrain claimed and run when it is wanted (never for a
    file: there is nothing new to train on until it is ingested)."""
    report = drift_reports.drift(ws, current=current, served=served, reference=reference,
                                 file=file)
    return DriftOutcome(report, file is None and retrain_after_drift(ws, [report]))
