"""The automated pipeline: ingest the watched folders, retrain, then gates and promotion.

Watchers, schedules, cron lines and people all run it through `run_pipeline`, each step
recorded as a job; training goes through the project's training slot, so it never runs
twice at once whoever triggered it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from mlyard.core import compute
from mlyard.core.automation import promotion
from mlyard.core.automation.jobs import PARTIAL, Job, TrainingBusy, job, training_slot
from mlyard.core.data import ingest
from mlyard.core.data.scaffold import data_files
from mlyard.core.errors import IngestRefused, MlyardError
from mlyard.core.models import registry
from mlyard.core.monitoring import drift_reports
from mlyard.core.training import trainer
from mlyard.core.training.cluster import train_on_cluster
from mlyard.core.workspace import Workspace
from mlyard.storage.meta_store import NewEvent

log = logging.getLogger("mlyard.pipeline")

STEPS = ("ingest", "train", "promote")


class FileLine(NamedTuple):
    """A file, and what happened to it in words (the watcher's recent files)."""

    path: str
    said: str


@dataclass
class IngestSummary:
    new_versions: list[str] = field(default_factory=list)
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)  # one line each: file and reason
    outcomes: list[FileLine] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # one line per new version checked


@dataclass
class PipelineResult:
    job_ids: list[int] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # step -> how it ended
    ingest: IngestSummary | None = None
    run_id: str | None = None
    model_version: int | None = None
    failure: MlyardError | None = None  # why the step that failed failed

    @property
    def failed(self) -> bool:
        return "failed" in self.statuses.values()


def watched_folders(ws: Workspace) -> list[Path]:
    """`[data] watch`, relative to mlyard.toml."""
    return [(ws.project_dir / folder).resolve() for folder in ws.config.data.watch]


def ingest_files(ws: Workspace, files: list[Path]) -> IngestSummary:
    """Ingest each file; a refused one is quarantined and the others go on."""
    summary = IngestSummary()
    for path, result in ingest.ingest_files(ws, files):
        if isinstance(result, IngestRefused):
            summary.refused.append(result.msg)
            summary.outcomes.append(FileLine(str(path), "refused (quarantined)"))
            log.warning("refused: %s", result.msg)
            continue
        if result.created:
            summary.new_versions.append(result.version.ref)
            summary.outcomes.append(FileLine(str(path), f"-> {result.version.ref}"))
            log.info("%s -> %s (%d rows)", path, result.version.ref, result.version.rows)
        else:
            summary.unchanged += 1
            summary.outcomes.append(FileLine(str(path), f"unchanged ({result.version.ref})"))
    reports = drift_reports.after_ingest(ws, summary.new_versions)
    for report in reports:
        line = (f"{report.current_label}: {report.severity} drift against "
                f"{report.model}/{report.version} (report {report.report_id})")
        summary.drift.append(line)
        log.info("%s", line)
    retrain_after_drift(ws, reports)
    return summary


def retrain_after_drift(ws: Workspace, reports: list[drift_reports.DriftReport]) -> bool:
    """Run the train pipeline when a report newly wants a retrain ([monitor] on_drift =
    "retrain", once per reference model and data); return whether it ran."""
    wanted = [r for r in reports if drift_reports.claim_retrain(ws, r)]
    if not wanted:
        return False
    log.warning("severe drift in %s: retraining", wanted[0].current_label)
    result = run_pipeline(ws, "train", "drift", ingest=False, wait=False)
    if result.failure is not None:
        log.error("the retrain after drift failed: %s", result.failure.msg)
    return True


def run_pipeline(ws: Workspace, until: str, trigger: str, ingest: bool = True,
                 files: list[Path] | None = None, wait: bool | None = None,
                 on_wait: Callable[[str], None] | None = None) -> PipelineResult:
    """Run the steps up to `until` (ingest, train or promote), each recorded as a job.

    Args:
        ingest: run the ingest step first (the watcher has already ingested its files).
        files: what to ingest (default: every data file in the watched folders).
        wait: when the project is already training, wait (True) or record the train
            step as skipped and stop (False); default: `[automation] on_busy`.
    """
    if wait is None:
        wait = ws.config.automation.on_busy == "wait"
    result = PipelineResult()
    steps = STEPS[: STEPS.index(until) + 1]
    pipeline_id: int | None = None
    for step in steps if ingest else steps[1:]:
        try:
            with job(ws, step, trigger, pipeline_id) as current:
                pipeline_id = pipeline_id or current.job_id
                result.job_ids.append(current.job_id)
                result.statuses[step] = "failed"  # until the step returns or skips
                if step == "ingest":
                    _ingest_step(ws, current, result, files)
                elif step == "train":
                    _train_step(ws, current, result, wait, on_wait)
                else:
                    _promote_step(ws, current, result)
                result.statuses[step] = PARTIAL if current.refusals else "succeeded"
        except MlyardError as exc:  # recorded by its job; the caller reads the result
            result.failure = exc
        if result.statuses[step] not in ("succeeded", PARTIAL):
            break
    return result


def _ingest_step(ws: Workspace, current: Job, result: PipelineResult,
                 files: list[Path] | None) -> None:
    if files is None:
        files = [f for folder in watched_folders(ws) if folder.is_dir()
                 for f in data_files(folder)]
    summary = ingest_files(ws, files)
    result.ingest = summary
    current.detail.update(files=len(files), new_versions=summary.new_versions,
                          unchanged=summary.unchanged, refused=summary.refused,
                          drift=summary.drift)
    current.refusals += summary.refused


def _train_step(ws: Workspace, current: Job, result: PipelineResult, wait: bool,
                on_wait: Callable[[str], None] | None) -> None:
    try:
        with training_slot(ws, wait=wait, who=f"job {current.job_id}", on_wait=on_wait):
            trained = _train(ws)
    except TrainingBusy as busy:
        result.statuses["train"] = "skipped"
        current.skip(busy.msg)
    current.run_id = result.run_id = trained.run_id
    version = trained.model_version
    if version is None:
        version = registry.register(ws, trained.run_id).version
    result.model_version = version
    current.detail.update(run_id=trained.run_id, model_version=version,
                          metrics=trained.metrics,
                          outcome=f"trained {ws.project}/{version}")
    log.info("trained run %s -> model %s/%s %s", trained.run_id, ws.project, version,
             trained.metrics)


def _train(ws: Workspace) -> trainer.TrainResult:
    """Train as `mlyard train` would: here, or on the Dask cluster `[compute]` names."""
    if not compute.wants_dask(ws, None):
        return trainer.train(ws, trainer.plan(ws))
    with compute.dask_client(ws) as client:
        return train_on_cluster(ws, trainer.plan(ws), client)


def _promote_step(ws: Workspace, current: Job, result: PipelineResult) -> None:
    assert result.model_version is not None
    ref = str(result.model_version)
    try:
        promoted = promotion.promote(ws, ref, reason=f"pipeline ({current.job_id})")
    except promotion.GatesFailed as refused:
        current.alert = NewEvent("alert.gate", f"{ws.project}/{ref}", "mlyard pipeline", {
            "severity": "error", "job_id": current.job_id,
            "failed": [f"gate {r.gate} failed ({r.detail})" for r in refused.results
                       if not r.passed]})
        raise
    current.run_id = result.run_id
    versus = next((g.detail for g in promoted.results
                   if g.gate == "max_regression_vs_champion"), None)
    outcome = f"champion -> {ws.project}/{promoted.move.to_version}" + \
        (f": {versus}" if versus else f"; {len(promoted.results)} gates passed")
    current.detail.update(champion=promoted.move.to_version, outcome=outcome,
                          gates={g.gate: g.detail for g in promoted.results})
    log.info("%s", outcome)
