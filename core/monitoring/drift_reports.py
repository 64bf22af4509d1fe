"""Drift of new data and of served traffic against a model's training reference, stored
as reports in the catalog, with alerts that can trigger a retrain.

The reference is a sketch stored with the model (see core.reference); the current data is
a dataset version or the inputs the server logged over a time window. Each report keeps
one row per column in the catalog, so every feature has a drift time series.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl

from mlyard.core.alerts.delivery import delivery_states
from mlyard.core.alerts.message import describe
from mlyard.core.data import versions
from mlyard.core.data.checked_file import read_checked
from mlyard.core.data.quality import check_quality
from mlyard.core.durations import parse_every
from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.models import registry
from mlyard.core.models.features import FeatureSpec, unseen_levels
from mlyard.core.models.gates import DriftFinding
from mlyard.core.models.loading import LoadedModel, load_model
from mlyard.core.models.reference import load_reference, prediction_series, target_series
from mlyard.core.monitoring import performance, report_view
from mlyard.core.monitoring.drift_stats import Chart, ColumnDrift, column_drift
from mlyard.core.monitoring.performance import SegmentRow
from mlyard.core.monitoring.report_view import ColumnView, CurrentData, ReportView
from mlyard.core.workspace import Workspace
from mlyard.storage import meta_store, monitor_store, prediction_files
from mlyard.storage.models_store import ModelVersion
from mlyard.storage.monitor_store import ColumnRow, ReportRecord

log = logging.getLogger("mlyard.monitor")
# Served traffic compared at most: the newest rows of the window, plenty for the tests
# and sketches, and bounded memory whatever the traffic was.
MAX_SERVED_ROWS = 200_000
# A model cannot predict a class it never saw: this share of such labels is severe.
UNSEEN_CLASS_SEVERE = 0.01


@dataclass
class DriftReport:
    model: str
    version: int
    reference_run: str
    current_kind: str  # dataset | served | file
    current_label: str  # "churn:v6", or "served since 2026-11-27 02:00"
    rows: int
    columns: list[ColumnDrift]
    drift_share: float
    prediction: ColumnDrift | None = None
    target: ColumnDrift | None = None
    quality: list[str] = field(default_factory=list)
    report_id: int | None = None
    ts: float = field(default_factory=time.time)
    importance: dict[str, float] = field(default_factory=dict)  # feature -> share of gain

    @property
    def drifted(self) -> list[ColumnDrift]:
        """Drifted features, those the model relies on most first: drift in a feature
        the trees never split on matters less than in the one they split on most."""
        return sorted((c for c in self.columns if c.drifted),
                      key=lambda c: -self.importance.get(c.column, 0.0))

    @property
    def drifted_gain(self) -> float:
        """The share of the model's gain that comes from drifted features."""
        return sum(self.importance.get(c.column, 0.0) for c in self.drifted)

    @property
    def judged(self) -> list[ColumnDrift]:
        """Features with enough rows for their method; only these count."""
        return [c for c in self.columns if c.reliable]

    @property
    def share(self) -> float:
        return len(self.drifted) / len(self.judged) if self.judged else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.judged) and self.share > self.drift_share

    @property
    def unseen_class_share(self) -> float:
        """The share of labelled rows whose class the model never saw."""
        if self.target is None or not self.target.present:
            return 0.0
        return sum(self.target.unseen.values()) / self.target.present

    @property
    def headline(self) -> str:
        if not self.judged:
            return (f"too few rows ({self.rows:,}) to judge any feature: nothing counted "
                    "(see [monitor] min_rows)")
        relied = f", {self.drifted_gain:.0%} of the model's gain: " + ", ".join(
            c.column for c in self.drifted[:5]) if self.drifted and self.importance else ""
        return (f"{len(self.drifted)} of {len(self.judged)} features drifted{relied}"
                + (f" ({len(self.columns) - len(self.judged)} too few rows to judge)"
                   if len(self.judged) < len(self.columns) else ""))

    @property
    def severity(self) -> str:
        """severe: the dataset drifted (more than `drift_share` of the judged features),
        the model's predictions or the target drifted, or at least
        UNSEEN_CLASS_SEVERE of the labels are classes the model never saw; moderate:
        some feature drifted, or some rows have a level or class the model never saw;
        none otherwise. Columns with too few rows for their method never count."""
        judged = [c for c in (self.prediction, self.target) if c is not None and c.reliable]
        if self.dataset_drift or any(c.drifted for c in judged) or \
                self.unseen_class_share >= UNSEEN_CLASS_SEVERE:
            return "severe"
        unseen = any(c.unseen for c in self.columns) or self.unseen_class_share > 0
        return "moderate" if self.drifted or unseen else "none"


def compare(reference: dict[str, Any], frame: pl.DataFrame, spec: FeatureSpec,
            overrides: Mapping[str, tuple[str | None, float | None]],
            threads: int = 2, min_rows: Mapping[str, int] | None = None) -> list[ColumnDrift]:
    """Each feature of `frame` against its reference sketch, columns in parallel."""
    missing = [f.name for f in spec.features if f.name not in frame.columns]
    if missing:
        raise UsageError(f"the current data has no column {missing[0]!r}, which the model "
                         "uses as a feature")

    def one(name: str) -> ColumnDrift:
        method, threshold = overrides.get(name, (None, None))
        try:
            return column_drift(name, reference["features"][name], frame[name], method,
                                threshold, min_rows)
        except ValueError as exc:
            raise UsageError(f"[monitor.columns.{name}]: {exc}") from None

    with ThreadPoolExecutor(threads) as pool:
        columns = list(pool.map(one, spec.names))
    for feature, column in zip(spec.features, columns, strict=True):
        if feature.type == "category":
            column.unseen = unseen_levels(frame[feature.name], feature.categories or [])
    return columns


def drift(ws: Workspace, current: str | None = None, served: str | None = None,
          reference: str = "champion", store: bool = True,
          file: Path | None = None) -> DriftReport:
    """Compare a dataset version (default: the newest), served traffic (`served` like
    "24h": that long back from now) or a file not ingested (read as ingest would) with
    the training data of model `reference`. A file's report is stored but raises no
    alert: its data is not the project's yet."""
    version = registry.resolve(ws, reference)
    sketch = load_reference(ws, version)
    model = load_model(ws, str(version.version))
    spec = model.spec
    task = model.card.task
    quality: list[str] = []
    if served is not None:
        frame, outputs, label = _served_frame(ws, version, spec, served)
        kind = "served"
        predicted = outputs
    elif file is not None:
        checked = read_checked(ws, file)
        frame, label, kind, quality = checked.rows, f"file {file}", "file", checked.warnings
        predicted = prediction_series(model.predict(frame), task)
    else:
        chosen_versions = versions.select_versions(ws, [current] if current else None)
        chosen = chosen_versions[-1]
        frame, label, kind = versions.read_versions(ws, [chosen]), chosen.ref, "dataset"
        predicted = prediction_series(model.predict(frame), task) if frame.height else None
    overrides = {name: (c.method, c.threshold) for name, c in ws.config.monitor.columns.items()}
    min_rows: dict[str, int] = {str(k): v for k, v in ws.config.monitor.min_rows.items()}
    report = DriftReport(version.model, version.version, version.run_id, kind, label,
                         frame.height, compare(sketch, frame, spec, overrides,
                                               min_rows=min_rows),
                         ws.config.monitor.drift_share, importance=gain_shares(model))
    if predicted is not None and len(predicted):
        report.prediction = column_drift("prediction", sketch["prediction"], predicted,
                                         min_rows=min_rows)
    if spec.target in frame.columns and frame[spec.target].null_count() < frame.height:
        report.target = column_drift(spec.target, sketch["target"],
                                     target_series(frame, spec, task), min_rows=min_rows)
        if spec.classes is not None:
            report.target.unseen = unseen_levels(frame[spec.target], spec.classes)
    report.quality = quality + check_quality(frame, versions.current_contract(ws), spec.names,
                                             ws.config.data.id_column)
    if store:
        save(ws, report)
        if kind != "file":
            _alert(ws, report)
    return report


def gain_shares(model: LoadedModel) -> dict[str, float]:
    """Each feature's share of the model's total split gain (LightGBM's own importance)."""
    gains = model.booster.feature_importance(importance_type="gain")
    total = float(gains.sum())
    return {name: float(gain) / total if total > 0 else 0.0
            for name, gain in zip(model.booster.feature_name(), gains, strict=True)}


def _served_frame(ws: Workspace, version: ModelVersion, spec: FeatureSpec,
                  window: str) -> tuple[pl.DataFrame, pl.Series | None, str]:
    try:
        seconds = parse_every(window)
    except ValueError as exc:
        raise UsageError(f"--served {window!r}: {exc}") from None
    since = time.time() - seconds
    requests = prediction_files.read(ws.catalog.predictions_dir, version.model, since,
                                     max_rows=MAX_SERVED_ROWS)
    label = f"served, last {window}"
    if not requests:
        raise UsageError(f"no requests to {version.model} were logged in the last {window}; "
                         "nothing to compare")
    # Logged rows differ in shape (an id sent with some requests only): read every row's
    # fields, not the first hundred's.
    frame = pl.read_json(_join_arrays(inputs for _, _, inputs, _ in requests).encode(),
                         infer_schema_length=None)
    dtypes = {"int": pl.Float64, "float": pl.Float64, "bool": pl.Boolean,
              "category": pl.String}
    frame = frame.with_columns([pl.col(f.name).cast(dtypes[f.type], strict=False)
                                for f in spec.features if f.name in frame.columns])
    outputs = json.loads(_join_arrays(o for _, _, _, o in requests))
    predicted = prediction_series(np.asarray(outputs), "multiclass"
                                  if outputs and isinstance(outputs[0], list) else "binary")
    return frame, predicted, label


def _join_arrays(arrays: Any) -> str:
    """Several JSON arrays as one, without parsing them first."""
    return "[" + ",".join(a[1:-1] for a in arrays if len(a) > 2) + "]"


def save(ws: Workspace, report: DriftReport) -> int:
    """Store the report and its per-column rows; return its id."""
    columns = [("feature", c) for c in report.columns]
    columns += [("prediction", report.prediction)] if report.prediction else []
    columns += [("target", report.target)] if report.target else []
    record = ReportRecord(0, ws.project, report.ts, report.model, report.version,
                          report.reference_run, report.current_kind, report.current_label,
                          report.rows, len(report.drifted), len(report.columns),
                          report.dataset_drift, report.severity,
                          msgspec.json.encode(view(report)).decode())
    rows = [ColumnRow(role, c.column, c.kind, c.method, _finite(c.statistic), c.threshold,
                      c.drifted, _finite(c.psi)) for role, c in columns]
    with ws.catalog.session() as con:
        report.report_id = monitor_store.add_report(con, record, rows)
    return report.report_id


def _finite(value: float) -> float | None:
    return value if value == value else None


def view(report: DriftReport) -> ReportView:
    """The report as the faces read it and the catalog stores it."""
    def column(c: ColumnDrift) -> ColumnView:
        return ColumnView(column=c.column, kind=c.kind, method=c.method,
                          statistic=_finite(c.statistic), threshold=c.threshold,
                          drifted=c.drifted, reliable=c.reliable, present=c.present,
                          psi=_finite(c.psi), psi_level=c.psi_level, rows=c.rows,
                          null_share=c.null_share, chart=c.chart, unseen=c.unseen,
                          importance=report.importance.get(c.column))

    return ReportView(
        report_id=report.report_id, ts=report.ts, model=report.model, version=report.version,
        reference_run=report.reference_run,
        current=CurrentData(report.current_kind, report.current_label, report.rows),
        headline=report.headline, drift_share=report.share,
        drift_share_threshold=report.drift_share, dataset_drift=report.dataset_drift,
        severity=report.severity, drifted=[c.column for c in report.drifted],
        drifted_gain_share=report.drifted_gain if report.importance else None,
        features=[column(c) for c in report.columns],
        prediction=column(report.prediction) if report.prediction else None,
        target=column(report.target) if report.target else None, quality=report.quality)


def _alert(ws: Workspace, report: DriftReport) -> None:
    """Record an alert for drift or quality findings; severe drift may start a retrain."""
    subject = f"{report.model}/{report.version}"
    with ws.catalog.session() as con:
        if report.severity != "none":
            meta_store.add_event(con, "alert.drift", subject, "mlyard monitor", {
                "severity": report.severity, "report_id": report.report_id,
                "current": report.current_label,
                "drifted": [c.column for c in report.drifted]})
        if report.quality:
            meta_store.add_event(con, "alert.quality", subject, "mlyard monitor", {
                "severity": "warning", "report_id": report.report_id,
                "current": report.current_label, "findings": report.quality})


def claim_retrain(ws: Workspace, report: DriftReport) -> bool:
    """Record that `report` wants a retrain, once per reference model and current data
    (checking the same data again wants nothing new); return whether this call recorded
    it. Automation acts on a True ([monitor] on_drift = "retrain")."""
    if report.severity != "severe" or ws.config.monitor.on_drift != "retrain":
        return False
    key = f"{report.reference_run}|{report.current_label}"
    with ws.catalog.session() as con:
        earlier = monitor_store.recent_events(con, "monitor.retrain", 1000)
        if any(event.detail.get("key") == key for event in earlier):
            return False
        meta_store.add_event(con, "monitor.retrain", f"{report.model}/{report.version}",
                             "mlyard monitor", {"key": key, "report_id": report.report_id})
    return True


def gate_finding(ws: Workspace, ref: str) -> DriftFinding | None:
    """What the `no_severe_drift` gate judges: the newest dataset version against the
    training data of model version `ref` (None when the gate is off or there is no data).
    The promotion door hands it to the gates, which sit below us."""
    if not ws.config.gates.get("no_severe_drift"):
        return None
    version = registry.resolve(ws, ref)
    try:
        report = drift(ws, reference=str(version.version))
    except UsageError:
        return None
    return DriftFinding(report.current_label, report.severity,
                        [c.column for c in report.drifted])


def after_ingest(ws: Workspace, new_versions: list[str]) -> list[DriftReport]:
    """Check each new version against the champion, when there is one ([monitor]
    on_ingest); a busy or champion-less project is not an error here."""
    if not ws.config.monitor.on_ingest or not new_versions:
        return []
    try:
        registry.resolve(ws, "champion")
    except MlyardError:
        return []
    reports = []
    for ref in new_versions:
        try:
            reports.append(drift(ws, current=ref))
        except MlyardError as exc:
            log.warning("drift check of %s: %s", ref, exc.msg)
    return reports


def list_reports(ws: Workspace, limit: int = 50) -> list[ReportRecord]:
    with ws.catalog.session() as con:
        return monitor_store.list_reports(con, ws.project, limit)


def get_report(ws: Workspace, report_id: int) -> ReportView:
    with ws.catalog.session() as con:
        record = monitor_store.get_report(con, report_id)
    if record is None or record.project != ws.project:
        raise UsageError(f"drift report {report_id}: not found in project {ws.project}")
    return report_view.decode(record.detail, record.report_id)


@dataclass(frozen=True)
class AlertView:
    """An alert as `mlyard alerts` and the Monitoring screen show it."""

    event_id: int
    ts: float
    kind: str  # alert.drift, alert.refused, ...
    subject: str
    severity: str
    what: str  # the alert's line
    delivery: str  # delivered, retrying, gave up, suppressed, pending, not sent
    delivery_detail: str  # per receiver: its last outcome and error
    detail: dict[str, object]  # the event's own fields, as JSON gave them

    def as_json(self) -> dict[str, object]:
        """As `--json` prints it: the event's own fields beside the view's."""
        return {"event_id": self.event_id, "ts": self.ts, "kind": self.kind,
                "subject": self.subject, **self.detail, "what": self.what,
                "delivery": self.delivery, "delivery_detail": self.delivery_detail}


def alerts(ws: Workspace, limit: int = 50) -> list[AlertView]:
    """Alerts, newest first, each with how its delivery stands."""
    with ws.catalog.session() as con:
        events = monitor_store.recent_events(con, "alert.", limit)
    states = delivery_states(ws, events)
    return [AlertView(e.event_id, e.ts, e.kind, e.subject, str(e.detail.get("severity", "")),
                      describe(e), states[e.event_id].state, states[e.event_id].detail,
                      dict(e.detail)) for e in events]


@dataclass(frozen=True)
class DriftCell:
    """One column in one report, as the heat table shows it."""

    statistic: float | None
    drifted: bool
    psi: float | None
    reliable: bool  # False: too few rows for the test to say anything


@dataclass(frozen=True)
class DriftRow:
    """One row of the heat table: a column and its cell in each report that has it."""

    role: str  # feature, prediction or target
    column: str
    cells: dict[int, DriftCell]  # report id -> cell


@dataclass(frozen=True)
class MonitoringOverview:
    reports: list[ReportRecord]  # oldest first, the heat table's columns
    rows: list[DriftRow]  # in table order: features, then prediction, then target
    charts: dict[int, dict[str, Chart]]  # report id -> column -> chart
    alerts: list[AlertView]
    performance: list[performance.Window]  # oldest first
    metric: str  # the primary metric, for the live performance curve
    segments: list[SegmentRow]  # the newest window's groups, worst first


def overview(ws: Workspace, reports: int = 12, alert_limit: int = 30) -> MonitoringOverview:
    """What the Monitoring screen shows, in one call."""
    with ws.catalog.session() as con:
        records = list(reversed(monitor_store.list_reports(con, ws.project, reports)))
        series = monitor_store.column_series(con, ws.project, reports)
    charts, unreliable = {}, set()
    for record in records:
        columns = report_view.decode(record.detail, record.report_id).columns
        charts[record.report_id] = {c.column: c.chart for c in columns}
        unreliable |= {(c.column, record.report_id) for c in columns if not c.reliable}
    rows: dict[tuple[str, str], DriftRow] = {}
    for f in series:
        row = rows.setdefault((f.role, f.column), DriftRow(f.role, f.column, {}))
        row.cells[f.report_id] = DriftCell(f.statistic, f.drifted, f.psi,
                                           (f.column, f.report_id) not in unreliable)
    order = {"feature": 0, "prediction": 1, "target": 2}
    ordered = sorted(rows.values(), key=lambda row: (order.get(row.role, 3), row.column))
    return MonitoringOverview(records, ordered, charts, alerts(ws, alert_limit),
                              performance.history(ws), registry.primary_metric(ws),
                              performance.newest_by_segment(ws))
