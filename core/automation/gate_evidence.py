"""Everything the promotion gates judge besides the catalog, gathered in one place for
every way of promoting (`mlyard models promote` and `check`, the UI, the pipeline): each
piece reads data, scores or reads logs, which is no work for inside the catalog lock."""

from __future__ import annotations

from mlyard.core.models.gates import Evidence
from mlyard.core.monitoring import drift_reports, shadow_report
from mlyard.core.training.rescore import rescore_if_imported
from mlyard.core.workspace import Workspace


def gather_evidence(ws: Workspace, ref: str) -> Evidence:
    """For version `ref`: drift of the newest data against its training data (when the
    `no_severe_drift` gate is on), its metrics on this project's holdout (when it was
    imported) and its record as the champion's shadow (when a shadow gate is on)."""
    return Evidence(drift=drift_reports.gate_finding(ws, ref),
                    rescored=rescore_if_imported(ws, ref),
                    shadow=shadow_report.finding(ws, ref))
