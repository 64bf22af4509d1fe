"""SQL for drift reports (one row per report, one per column for the time series), live
performance windows, and reading served inputs back from the prediction log."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from mlyard.storage.engine import Connection


@dataclass(frozen=True)
class ReportRecord:
    report_id: int
    project: str
    ts: float
    model: str
    version: int
    reference_run: str
    current_kind: str  # dataset | served | file
    current_label: str
    rows: int
    drifted: int
    features: int
    dataset_drift: bool
    severity: str  # none | moderate | severe
    detail: str  # JSON: every column's figures and chart data


@dataclass(frozen=True)
class ColumnRow:
    role: str  # feature | prediction | target
    column: str
    kind: str
    method: str
    statistic: float | None
    threshold: float
    drifted: bool
    psi: float | None


_REPORT_COLUMNS = ("report_id, project, ts, model, version, reference_run, current_kind, "
                   "current_label, rows, drifted, features, dataset_drift, severity, detail")


def add_report(con: Connection, record: ReportRecord, columns: list[ColumnRow]) -> int:
    row = con.execute(
        "INSERT INTO drift_reports (project, ts, model, version, reference_run, current_kind, "
        "current_label, rows, drifted, features, dataset_drift, severity, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING report_id",
        [record.project, record.ts, record.model, record.version, record.reference_run,
         record.current_kind, record.current_label, record.rows, record.drifted,
         record.features, record.dataset_drift, record.severity, record.detail]).fetchone()
    assert row is not None
    report_id = int(row[0])
    con.executemany(
        "INSERT INTO drift_columns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[report_id, c.role, c.column, c.kind, c.method, c.statistic, c.threshold,
          c.drifted, c.psi] for c in columns])
    return report_id


def list_reports(con: Connection, project: str, limit: int) -> list[ReportRecord]:
    rows = con.execute(f"SELECT {_REPORT_COLUMNS} FROM drift_reports WHERE project = ? "
                       "ORDER BY report_id DESC LIMIT ?", [project, limit]).fetchall()
    return [ReportRecord(*row) for row in rows]


def get_report(con: Connection, report_id: int) -> ReportRecord | None:
    row = con.execute(f"SELECT {_REPORT_COLUMNS} FROM drift_reports WHERE report_id = ?",
                      [report_id]).fetchone()
    return ReportRecord(*row) if row else None


@dataclass(frozen=True)
class ColumnFigure:
    """One column's figures in one drift report."""

    report_id: int
    ts: float
    current_label: str
    role: str  # feature | prediction | target
    column: str
    statistic: float | None
    drifted: bool
    psi: float | None


def column_series(con: Connection, project: str, limit: int) -> list[ColumnFigure]:
    """Per-column figures of the last `limit` reports, oldest report first."""
    rows = con.execute(
        "WITH recent AS (SELECT report_id, ts, current_label FROM drift_reports "
        "WHERE project = ? ORDER BY report_id DESC LIMIT ?) "
        "SELECT r.report_id, r.ts, r.current_label, c.role, c.column_name, c.statistic, "
        "c.drifted, c.psi FROM recent r JOIN drift_columns c USING (report_id) "
        "ORDER BY r.report_id, c.role, c.column_name", [project, limit]).fetchall()
    return [ColumnFigure(*row) for row in rows]


def put_performance(con: Connection, project: str, model: str, version: int,
                    window_start: float, window_end: float, rows: int, metrics: str) -> None:
    con.execute(
        "INSERT INTO performance VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (project, model, version, window_start) DO UPDATE SET "
        "window_end = excluded.window_end, rows = excluded.rows, metrics = excluded.metrics, "
        "computed_at = excluded.computed_at",
        [project, model, version, window_start, window_end, rows, metrics, time.time()])


def list_performance(con: Connection, project: str,
                     model: str) -> list[tuple[int, float, float, int, str]]:
    """(version, window start, window end, rows, metrics JSON), oldest first."""
    return con.execute(
        "SELECT version, window_start, window_end, rows, metrics FROM performance "
        "WHERE project = ? AND model = ? ORDER BY window_start, version",
        [project, model]).fetchall()


def put_segment_performance(con: Connection, project: str, model: str, version: int,
                            window_start: float, figures: str) -> None:
    con.execute(
        "INSERT INTO segment_performance VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (project, model, version, window_start) DO UPDATE SET "
        "figures = excluded.figures", [project, model, version, window_start, figures])


def list_segment_performance(con: Connection, project: str, model: str
                             ) -> list[tuple[int, float, str]]:
    """(version, window start, figures JSON), oldest first."""
    return con.execute(
        "SELECT version, window_start, figures FROM segment_performance "
        "WHERE project = ? AND model = ? ORDER BY window_start, version",
        [project, model]).fetchall()


@dataclass(frozen=True)
class Event:
    event_id: int
    ts: float
    kind: str
    subject: str
    actor: str | None
    detail: dict[str, Any]


def recent_events(con: Connection, kind_prefix: str, limit: int) -> list[Event]:
    """Events whose kind starts with `kind_prefix`, newest first."""
    rows = con.execute(
        "SELECT event_id, ts, kind, subject, actor, CAST(detail AS VARCHAR) FROM events "
        "WHERE kind LIKE ? ORDER BY event_id DESC LIMIT ?",
        [kind_prefix + "%", limit]).fetchall()
    return events_from_rows(rows)


def events_from_rows(rows: list[tuple[Any, ...]]) -> list[Event]:
    """Events from rows of (event_id, ts, kind, subject, actor, detail as text)."""
    return [Event(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else {})
            for row in rows]
