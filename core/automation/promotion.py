"""Promotion, the one door every face uses: `check` a version against the gates and
`promote` it to champion.

Each gathers what the gates judge besides the catalog first, outside the catalog lock
(it reads data and scores models): the candidate and the champion scored on the same
evaluation rows, the newest data's drift against the candidate's training data, an
imported or synced model's metrics measured here, its record as the champion's shadow.
Then the gates are judged (and champion moved) in one unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlyard.core.models import champion, registry
from mlyard.core.models.champion import GatesFailed as GatesFailed  # what promote raises
from mlyard.core.models.gates import Evidence, GateResult, is_segment_gate
from mlyard.core.models.model_text import ModelRefused
from mlyard.core.models.registry import AliasMove, ModelDetail, ModelVersion
from mlyard.core.monitoring import drift_reports, shadow_report
from mlyard.core.training.head_to_head import (
    rescore_if_imported,
    segments_on_evaluation_rows,
    versus_champion,
)
from mlyard.core.workspace import Workspace


@dataclass(frozen=True)
class GateReport:
    version: ModelVersion
    results: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)


@dataclass(frozen=True)
class Promotion:
    move: AliasMove
    results: list[GateResult]


def check(ws: Workspace, ref: str | None = None) -> GateReport:
    """Every gate for a version (default: the newest), without moving anything."""
    ref = ref or "latest"
    version, results = champion.judge(ws, ref, gather_evidence(ws, ref))
    return GateReport(version, results)


@dataclass(frozen=True)
class VersionPanel:
    """One version as the Models screen shows it: its detail, every gate, and its
    record as the champion's shadow (the newest in 30 days), if it was one."""

    detail: ModelDetail
    gates: list[GateResult]
    shadow: shadow_report.ShadowComparison | None


def version_panel(ws: Workspace, ref: str) -> VersionPanel:
    """What the Models screen shows for version `ref`, in one call."""
    detail = registry.show(ws, ref)
    return VersionPanel(detail, check(ws, ref).results, shadow_report.newest(
        ws, "30d", shadow_version=detail.version.version))


def promote(ws: Workspace, ref: str, reason: str | None = None,
            force: bool = False) -> Promotion:
    """Make version `ref` champion if every gate passes (or `force`).

    Raises:
        GatesFailed: a gate failed; nothing moved. Its `results` hold the whole table.
    """
    ws.check_writable(f"promote {ref}")
    move, results = champion.move_if_passed(ws, ref, gather_evidence(ws, ref, force), reason,
                                            force)
    return Promotion(move, results)


def gather_evidence(ws: Workspace, ref: str, force: bool = False) -> Evidence:
    """What the gates judge besides the catalog, for version `ref`. A model that cannot
    be loaded is refused (ModelRefused), unless `force`: then the gate that needed it
    fails, and is forced past like any other."""
    versus = segments = None
    try:
        if "max_regression_vs_champion" in ws.config.gates:
            versus = versus_champion(ws, ref)
        if any(is_segment_gate(gate) for gate in ws.config.gates):
            segments = segments_on_evaluation_rows(ws, ref)
    except ModelRefused:
        if not force:
            raise
    return Evidence(drift=drift_reports.gate_finding(ws, ref),
                    rescored=rescore_if_imported(ws, ref),
                    shadow=shadow_report.finding(ws, ref), versus=versus, segments=segments)
