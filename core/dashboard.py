"""The project at a glance, for the dashboard: one call, one unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from mlyard.core.data import quarantine
from mlyard.core.data.quarantine import QuarantinedFile
from mlyard.core.models import registry
from mlyard.core.tracking.run_queries import reconcile_crashed
from mlyard.core.workspace import Workspace
from mlyard.storage import automation_store, datasets_store, models_store, monitor_store, runs_store
from mlyard.storage.automation_store import JobRecord
from mlyard.storage.datasets_store import VersionRecord
from mlyard.storage.monitor_store import ReportRecord
from mlyard.storage.runs_store import RunRecord


@dataclass
class AliasSummary:
    alias: str
    version: int
    metric: float | None


@dataclass
class Overview:
    project: str
    primary_metric: str
    latest_runs: list[RunRecord]
    status_counts: dict[str, int]
    aliases: list[AliasSummary]
    model_versions: int
    datasets: list[VersionRecord]  # newest first
    dataset_versions: int
    quarantined: list[QuarantinedFile]
    schedules: int = 0
    last_job: JobRecord | None = None
    last_report: ReportRecord | None = None


def project_overview(ws: Workspace, runs: int = 8, datasets: int = 5) -> Overview:
    metric = f"holdout.{registry.primary_metric(ws)}"
    model = registry.model_name(ws)
    with ws.catalog.session() as con:
        reconcile_crashed(con, ws.catalog.outcomes_dir)
        latest = runs_store.query_runs(con, ws.project, [], None, runs)
        counts = runs_store.status_counts(con, ws.project)
        alias_map = models_store.aliases(con, model)
        versions = models_store.list_versions(con, model)
        by_number = {v.version: v.run_id for v in versions}
        metrics = runs_store.latest_metrics_for(con, list(by_number.values()))
        all_versions = datasets_store.list_versions(con, ws.config.dataset_name)
        schedules = len(automation_store.list_schedules(con, ws.project))
        jobs = automation_store.list_jobs(con, ws.project, 1)
        reports = monitor_store.list_reports(con, ws.project, 1)
    aliases = [AliasSummary(alias, number, metrics.get(by_number.get(number, ""), {}).get(metric))
               for alias, number in sorted(alias_map.items(), key=_alias_order)]
    return Overview(ws.project, metric, latest, counts, aliases, len(versions),
                    list(reversed(all_versions))[:datasets], len(all_versions),
                    quarantine.list_quarantined(ws), schedules, jobs[0] if jobs else None,
                    reports[0] if reports else None)


def _alias_order(item: tuple[str, int]) -> tuple[int, str]:
    return ({"champion": 0, "challenger": 1}.get(item[0], 2), item[0])
