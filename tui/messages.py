"""Messages that workers post back to their screens: finished facts, past tense."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from mlyard.core.automation.status import AutomationOverview
from mlyard.core.dashboard import Overview
from mlyard.core.data.profile import Profile, ProfileDiff
from mlyard.core.data.quarantine import QuarantinedFile
from mlyard.core.data.versions import VersionRecord
from mlyard.core.models.gates import GateResult
from mlyard.core.models.registry import AliasMove, ModelDetail, VersionSummary
from mlyard.core.monitoring.drift_reports import MonitoringOverview
from mlyard.core.monitoring.shadow_report import ShadowComparison
from mlyard.core.serving.supervisor import (
    LoggedExplanation,
    LoggedRequest,
    ServerProcess,
    ServerStats,
)
from mlyard.core.tracking.compare import Comparison, CurvePoint
from mlyard.core.tracking.record_summary import RecordSummary
from mlyard.core.tracking.run_queries import LogLine, RunDetail, RunsPage
from mlyard.core.tracking.segments import SegmentFigures


@dataclass
class OverviewLoaded(Message):
    overview: Overview


@dataclass
class RunsLoaded(Message):
    page: RunsPage

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsLoaded)


@dataclass
class ComparisonLoaded(Message):
    comparison: Comparison


@dataclass
class CurvesLoaded(Message):
    metric: str
    curves: dict[str, list[CurvePoint]]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CurvesLoaded)


@dataclass
class RunDetailLoaded(Message):
    detail: RunDetail
    record: RecordSummary | None  # reproduce.json, for training runs
    importance: dict[str, dict[str, float]] | None
    log: list[LogLine]
    segments: SegmentFigures | None = None  # holdout figures per group, worst first


@dataclass
class DatasetsLoaded(Message):
    versions: list[VersionRecord]
    quarantined: list[QuarantinedFile]


@dataclass
class ProfileLoaded(Message):
    ref: str
    profile: Profile
    warnings: list[str]


@dataclass
class DiffLoaded(Message):
    old: str
    new: str
    changes: ProfileDiff


@dataclass
class ModelsLoaded(Message):
    rows: list[VersionSummary]
    history: list[AliasMove]


@dataclass
class GatesLoaded(Message):
    detail: ModelDetail
    gates: list[GateResult]
    shadow: ShadowComparison | None  # the version as the champion's shadow, if it was


@dataclass
class ServerStarted(Message):
    process: ServerProcess


@dataclass
class ExplanationLoaded(Message):
    request_id: str
    explanation: LoggedExplanation


@dataclass
class ShadowLoaded(Message):
    comparison: ShadowComparison | None  # the newest champion/shadow pair

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ShadowLoaded)


@dataclass
class ServingLoaded(Message):
    stats: ServerStats
    predictions: list[LoggedRequest]
    at: float  # monotonic time of the reading, for requests per second

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ServingLoaded)


@dataclass
class AutomationLoaded(Message):
    overview: AutomationOverview

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AutomationLoaded)


@dataclass
class JobLogLoaded(Message):
    job_id: int
    lines: list[str]


@dataclass
class MonitoringLoaded(Message):
    overview: MonitoringOverview

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MonitoringLoaded)
