"""Live performance: labels that arrive later, joined by id to the predictions the
server logged, give the model's real metrics per time window."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import polars as pl

from mlyard.core.config import segment_column_names, segment_columns
from mlyard.core.data.values import parse_column, plain_numbers
from mlyard.core.durations import parse_every
from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.models import registry
from mlyard.core.models.features import FeatureSpec, encode_target, unseen_levels
from mlyard.core.monitoring.by_id import join_on, last_of_each
from mlyard.core.monitoring.logged import logged_predictions
from mlyard.core.tracking.evaluation import comparable_metric, evaluate, higher_is_better
from mlyard.core.tracking.segments import (
    GroupFigures,
    SegmentFigures,
    read_segments,
    segment_figures,
    segment_name,
)
from mlyard.core.workspace import Workspace
from mlyard.storage import label_files, meta_store, monitor_store, prediction_files


@dataclass(frozen=True)
class Window:
    version: int
    start: float
    end: float
    rows: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class SegmentWindow:
    """One window's figures per group of each segment (`[monitor] segments`)."""

    version: int
    start: float
    figures: SegmentFigures


@dataclass(frozen=True)
class FeedbackResult:
    labels: int
    matched: int
    windows: list[Window]
    unseen: dict[str, int]  # labels of classes the model never saw: rows (not scored)
    segments: list[SegmentWindow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why some figures could not be made
    alerts: list[str] = field(default_factory=list)  # groups below their gate or training


def read_labels(path: Path, id_column: str, spec: FeatureSpec) -> pl.DataFrame:
    """The id and label columns of a CSV or Parquet file: ids as text, labels read by
    the target's own rules (yes/no, 1/0, true/false, the classes as trained), as ingest
    reads them; a label that does not fit is named by row."""
    if not path.is_file():
        raise UsageError(f"{path}: not found")
    try:
        frame = (pl.scan_parquet(path, glob=False) if path.suffix.lower() in (".parquet", ".pq")
                 else pl.scan_csv(path, glob=False, infer_schema=False)).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    for column in (id_column, spec.target):
        if column not in frame.columns:
            raise UsageError(f"{path}: no column {column!r}; expected the id column and the "
                             f"label ({id_column}, {spec.target})")
    labels = frame.select(pl.col(id_column).cast(pl.String), spec.target)
    plain = plain_numbers(labels.get_column(spec.target), spec.target_type)
    if plain is not None:  # all plain numbers: the rules would read them the same
        return labels.with_columns(plain.alias(spec.target)).drop_nulls()
    parsed = parse_column(spec.target, spec.target_type, labels.schema[spec.target])
    bad = labels.with_row_index("__row", offset=1).filter(parsed.failed())
    if bad.height:
        row, value = bad.select("__row", spec.target).row(0)
        raise UsageError(f"{path}: row {row}, column {spec.target!r}: {value!r} is not "
                         f"{parsed.expected}, as the model's target is read")
    return typed_labels(labels, spec)


def typed_labels(labels: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Labels as the target is typed (rows whose label does not fit, or is missing, or
    has no id, are left out)."""
    parsed = parse_column(spec.target, spec.target_type, labels.schema[spec.target])
    return labels.with_columns(parsed.typed.alias(spec.target)).drop_nulls()


NEWEST = "__newest"  # feedback's mark for labels the file it was given holds
FOLD_AT = 4  # deliveries kept past which feedback folds them into one (label_files.fold)


def all_labels(ws: Workspace, id_column: str, spec: FeatureSpec,
               newest: tuple[Path, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Every delivery of labels kept so far, the newest label for each id. `newest`: the
    delivery just kept (its file, and its labels as read, so they are not read back);
    then a column NEWEST says which labels came from it."""
    frames = [typed_labels(frame.select(pl.col(id_column).cast(pl.String), spec.target), spec)
              for frame in map(pl.from_arrow, label_files.deliveries(
                  ws.catalog.labels_dir, skip=newest[0] if newest else None))
              if isinstance(frame, pl.DataFrame) and {id_column, spec.target} <= set(frame.columns)]
    if newest is not None:
        frames = [frame.with_columns(pl.lit(False).alias(NEWEST)) for frame in frames]
        frames.append(newest[1].with_columns(pl.lit(True).alias(NEWEST)))
    if not frames:
        return pl.DataFrame(schema={id_column: pl.String, spec.target: pl.String})
    every = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    return last_of_each(every, id_column)


def feedback(ws: Workspace, path: Path, window: str = "1d") -> FeedbackResult:
    """Join the labels in `path` to logged predictions by id; store and return the
    metrics of each model version per time window."""
    id_column = ws.config.data.id_column
    if id_column is None:
        raise UsageError("feedback joins labels by id: set [data] id_column in mlyard.toml")
    try:
        seconds = parse_every(window)
    except ValueError as exc:
        raise UsageError(f"--window {window!r}: {exc}") from None
    model_name = registry.model_name(ws)
    detail = registry.show(ws, "champion" if _has_champion(ws) else "latest")
    spec = detail.card.spec
    labels = read_labels(path, id_column, spec)
    kept = label_files.keep(ws.catalog.labels_dir, labels.to_arrow())  # for later deliveries
    segments = segment_columns(ws.config)
    carried = segment_column_names(ws.config)
    logged = logged_predictions(ws, model_name, id_column, carried)
    if logged.is_empty():
        scored = prediction_files.count_rows(ws.catalog.predictions_dir, model_name)
        if not scored:
            raise UsageError(f"no predictions logged for {model_name} yet: labels are joined "
                             "to what `mlyard serve` logged, so serve the model and send it "
                             "requests first")
        raise UsageError(f"none of the {scored:,} logged rows of {model_name} carries "
                         f"{id_column!r}: send the id column with each request so labels "
                         "can be joined later")
    # The newest prediction for each id, and its newest label from any delivery so far
    # (a later file for the same window adds its rows to it); in a fixed order, so the
    # same rows always sum to the same figures.
    in_time = logged if logged.get_column("ts").is_sorted() else logged.sort(
        "ts", maintain_order=True)
    latest = last_of_each(in_time, id_column)
    delivered = label_files.paths(ws.catalog.labels_dir, (id_column, spec.target))
    every = all_labels(ws, id_column, spec, newest=(kept, labels))
    joined = join_on(latest, every, id_column)
    matched = int(joined.get_column(NEWEST).sum())
    joined = joined.drop(NEWEST)
    unseen: dict[str, int] = {}
    if spec.classes is not None:  # a class the model cannot predict is counted, not scored
        unseen = unseen_levels(joined[spec.target], spec.classes)
        known = pl.col(spec.target).cast(pl.String).is_in(spec.classes)
        shares = joined.with_columns(((pl.col("ts") // seconds) * seconds).alias("window")) \
            .group_by(["version", "window"]).agg((~known).mean().alias("share"))
        joined = joined.filter(known)
    joined = joined.with_columns(((pl.col("ts") // seconds) * seconds).alias("window"))
    windows, by_segment = [], []
    task = detail.card.task
    metric = comparable_metric(task, registry.primary_metric(ws))
    sensitive = {name for name, column in ws.config.data.columns.items() if column.sensitive}
    for (version, start), group in joined.group_by(["version", "window"],
                                                   maintain_order=True):
        truth = encode_target(group, spec)
        predicted = _predicted(group.get_column("prediction"))
        metrics = evaluate(task, truth, predicted)
        if unseen:
            metrics["unseen_class_share"] = float(shares.filter(
                (pl.col("version") == version) & (pl.col("window") == start))["share"].sum())
        windows.append(Window(int(version), float(start), float(start) + seconds,
                              group.height, metrics))
        if segments:
            by_segment.append(SegmentWindow(int(version), float(start), segment_figures(
                task, truth, predicted, group.select(carried), segments, sensitive, metric,
                ws.config.train.threshold)))
    windows.sort(key=lambda w: (w.start, w.version))
    by_segment.sort(key=lambda w: (w.start, w.version))
    notes = [f"no logged request carried {name!r}: send it with each request to see "
             "figures by it" for name in carried if joined[name].null_count() == joined.height
             and joined.height]
    alerts = segment_alerts(ws, by_segment)
    with ws.catalog.session() as con:
        for w in windows:
            monitor_store.put_performance(con, ws.project, model_name, w.version, w.start,
                                          w.end, w.rows, json.dumps(w.metrics))
        for s in by_segment:
            monitor_store.put_segment_performance(con, ws.project, model_name, s.version,
                                                  s.start, msgspec.json.encode(
                                                      s.figures).decode())
        if alerts:
            meta_store.add_event(con, "alert.segment", model_name, "mlyard feedback",
                                 {"severity": "warning", "findings": alerts})
    if len(delivered) >= FOLD_AT:  # every delivery read: the next feedback reads one file
        label_files.fold(ws.catalog.labels_dir, every.drop(NEWEST).to_arrow(), delivered)
    return FeedbackResult(labels.height, matched, windows, unseen, by_segment, notes, alerts)


def _predicted(values: pl.Series) -> np.ndarray:
    """Scores as floats, or class probabilities as one row per prediction."""
    if values.dtype == pl.List:
        return np.asarray(values.to_list(), dtype=np.float64)
    return values.cast(pl.Float64).to_numpy()


def segment_alerts(ws: Workspace, windows: list[SegmentWindow]) -> list[str]:
    """Groups whose live figure is past its `[gates] min_segment_<metric>` /
    `max_segment_<metric>`, or worse than the version's training figure for the group by
    more than `[monitor] segment_drop`."""
    limits = {gate.split("_segment_", 1)[1]: (gate.startswith("min"), float(value))
              for gate, value in ws.config.gates.items()
              if gate.startswith(("min_segment_", "max_segment_")) and gate != "max_segment_gap"}
    trained: dict[int, dict[tuple[str, str], GroupFigures]] = {}
    found = []
    for window in windows:
        if window.version not in trained:
            stored = registry.show(ws, str(window.version)).segments
            trained[window.version] = {(g.segment, g.group): g for g in
                                       (stored.groups if stored is not None else [])}
        metric = window.figures.metric
        for group in window.figures.groups:
            if group.too_few:
                continue
            where = (f"{group.segment} {group.group!r} on v{window.version} "
                     f"({group.rows:,} rows from {_day(window.start)})")
            for name, (at_least, limit) in limits.items():
                value = group.metrics.get(name)
                if value is not None and (value < limit if at_least else value > limit):
                    found.append(f"{where}: {name} {value:.4g}, gate "
                                 f"{'min' if at_least else 'max'}_segment_{name} = {limit:g}")
            before = trained[window.version].get((group.segment, group.group))
            now = group.metrics.get(metric)
            if before is None or now is None or metric not in before.metrics:
                continue
            worse = (before.metrics[metric] - now) * (1 if higher_is_better(metric) else -1)
            if worse > ws.config.monitor.segment_drop:
                found.append(f"{where}: {metric} {now:.4g}, {before.metrics[metric]:.4g} at "
                             f"training (worse by {worse:.4g}, more than [monitor] "
                             f"segment_drop = {ws.config.monitor.segment_drop:g})")
    return found


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def segment_history(ws: Workspace) -> list[SegmentWindow]:
    """Every stored window's figures by segment, oldest first."""
    with ws.catalog.session() as con:
        rows = monitor_store.list_segment_performance(con, ws.project,
                                                      registry.model_name(ws))
    return [SegmentWindow(version, start, read_segments(figures.encode()))
            for version, start, figures in rows]


def _has_champion(ws: Workspace) -> bool:
    try:
        registry.resolve(ws, "champion")
    except MlyardError:
        return False
    return True


def history(ws: Workspace) -> list[Window]:
    """Every stored window, oldest first."""
    with ws.catalog.session() as con:
        rows = monitor_store.list_performance(con, ws.project, registry.model_name(ws))
    return [Window(v, s, e, n, json.loads(m)) for v, s, e, n, m in rows]


@dataclass(frozen=True)
class SegmentRow:
    """One group of one segment in one window, as `mlyard performance --by` lists it."""

    start: float
    version: int
    segment: str
    group: str
    rows: int
    too_few: bool
    metrics: dict[str, float]


def by_segment(ws: Workspace, segment: str) -> list[SegmentRow]:
    """Every stored window's figures for the groups of `segment` (worst first in each)."""
    known = [segment_name(columns) for columns in segment_columns(ws.config)]
    if segment not in known:
        raise UsageError(f"--by {segment!r}: not one of [monitor] segments "
                         f"({', '.join(known) or 'none set'})")
    return [SegmentRow(window.start, window.version, segment, group.group, group.rows,
                       group.too_few, group.metrics)
            for window in segment_history(ws) for group in window.figures.worst(segment)]


def newest_by_segment(ws: Workspace) -> list[SegmentRow]:
    """The newest window's groups of every segment, worst first (the Monitoring screen)."""
    windows = segment_history(ws)
    if not windows:
        return []
    newest = max(windows, key=lambda w: (w.start, w.version))
    return [SegmentRow(newest.start, newest.version, group.segment, group.group, group.rows,
                       group.too_few, group.metrics) for group in newest.figures.worst()]
