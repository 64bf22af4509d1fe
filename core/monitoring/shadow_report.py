"""How a shadow model compares with the champion on the same live requests: how often
they agree, how their scores are spread, how fast each scored, and, once labels arrive
through `mlyard feedback`, each one's live metric with a bootstrap confidence interval.

`mlyard shadow report` shows it; the `min_shadow_requests` and `max_shadow_regression`
gates judge it (`finding`) when the shadowed version is promoted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from mlyard.core.durations import parse_every
from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.models import registry
from mlyard.core.models.classes import aligned, class_names, union
from mlyard.core.models.features import FeatureSpec, encode_target
from mlyard.core.models.gates import ShadowFinding
from mlyard.core.monitoring.performance import all_labels
from mlyard.core.tracking.evaluation import (
    Interval,
    comparable_metric,
    paired_bootstrap,
)
from mlyard.core.workspace import Workspace
from mlyard.storage import shadow_files

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BINS = 10


@dataclass(frozen=True)
class Spread:
    """One model's scores: for classification the probability of the class it chose
    (the positive class for a binary model), for regression the prediction."""

    mean: float
    quantiles: dict[str, float]  # p5, p25, p50, p75, p95
    counts: list[int]  # rows per bin of the comparison's shared `edges`


@dataclass(frozen=True)
class LiveMetric:
    """Both models on the same labelled rows; `difference` is how much worse the shadow
    is (positive: worse, whichever way the metric points)."""

    metric: str
    rows: int
    champion: Interval
    shadow: Interval
    difference: Interval


@dataclass(frozen=True)
class ShadowComparison:
    model: str
    champion_version: int
    shadow_version: int
    task: str
    first: float
    last: float
    requests: int
    rows: int  # rows both models scored
    failed: int  # requests the shadow could not score
    first_error: str | None
    same_label: float | None  # share of rows given the same class (classification)
    mean_abs_diff: float | None  # |Δp| for classification, |Δ| for regression
    p95_abs_diff: float | None
    edges: list[float]
    champion_scores: Spread | None
    shadow_scores: Spread | None
    champion_ms: dict[str, float]  # p50, p99 of parsing and scoring one request
    shadow_ms: dict[str, float]
    live: LiveMetric | None


@dataclass(frozen=True)
class ShadowReport:
    window: str
    since: float
    comparisons: list[ShadowComparison]  # newest pair first


def report(ws: Workspace, window: str = "24h") -> ShadowReport:
    """Every champion/shadow pair that served in the last `window`."""
    since = time.time() - _seconds(window)
    records, labels = _records(ws, since), _Labels(ws)
    return ShadowReport(window, since, [compare(ws, pair, labels) for pair in _pairs(records)])


def newest(ws: Workspace, window: str = "7d", shadow_version: int | None = None
           ) -> ShadowComparison | None:
    """The pair that served last in `window` (with `shadow_version` as the shadow, when
    given), for a screen that shows one."""
    records = _records(ws, time.time() - _seconds(window))
    if shadow_version is not None:
        records = records.filter(pl.col("version") == shadow_version)
    pairs = _pairs(records)
    return compare(ws, pairs[0], _Labels(ws)) if pairs else None


def _seconds(window: str) -> float:
    try:
        return parse_every(window)
    except ValueError as exc:
        raise UsageError(f"--window {window!r}: {exc}") from None


def _pairs(records: pl.DataFrame) -> list[pl.DataFrame]:
    """The records of each champion/shadow pair, the pair that served last first."""
    groups = records.partition_by(["champion_version", "version"], maintain_order=True)
    return sorted(groups, key=lambda group: -float(group["ts"].max()))  # type: ignore[arg-type]


def finding(ws: Workspace, ref: str) -> ShadowFinding | None:
    """What the shadow gates judge for version `ref`: every request it scored as the
    shadow of the present champion (None when it never did, or there is no champion;
    the promotion door hands it to the gates, below us)."""
    gates = ws.config.gates
    if "min_shadow_requests" not in gates and "max_shadow_regression" not in gates:
        return None
    candidate = registry.resolve(ws, ref)
    try:
        champion = registry.resolve(ws, "champion")
    except MlyardError:
        return None
    records = _records(ws, 0.0).filter(
        (pl.col("champion_version") == champion.version)
        & (pl.col("version") == candidate.version))
    if records.is_empty():
        return None
    comparison = compare(ws, records, _Labels(ws))
    live = comparison.live
    worse = live.difference if live else None
    return ShadowFinding(champion.version, comparison.requests - comparison.failed,
                         live.metric if live else None, live.rows if live else 0,
                         (worse.value, worse.low, worse.high) if worse else None)


def _records(ws: Workspace, since: float) -> pl.DataFrame:
    table = shadow_files.read(ws.catalog.shadow_dir, registry.model_name(ws), since)
    return pl.from_arrow(table)  # type: ignore[return-value]  # a table gives a frame


class _Labels:
    """Every label `mlyard feedback` kept, as float codes by id (the newest per id),
    encoded with the champion's card the first time a comparison needs them."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._by_id: dict[str, float] | None = None

    def by_id(self, spec: FeatureSpec) -> dict[str, float]:
        id_column = self.ws.config.data.id_column
        if self._by_id is None:
            self._by_id = {} if id_column is None else \
                _encoded(all_labels(self.ws, id_column, spec), id_column, spec)
        return self._by_id


def _encoded(frame: pl.DataFrame, id_column: str, spec: FeatureSpec) -> dict[str, float]:
    if id_column not in frame.columns or spec.target not in frame.columns:
        return {}
    if spec.classes is not None:  # a class the model cannot predict is not scored
        frame = frame.filter(pl.col(spec.target).cast(pl.String).is_in(spec.classes))
    codes = encode_target(frame, spec)
    return dict(zip(frame.get_column(id_column).cast(pl.String).to_list(), codes.tolist(),
                    strict=True))


def compare(ws: Workspace, records: pl.DataFrame, labels: _Labels) -> ShadowComparison:
    """One champion/shadow pair over `records` (all of one pair)."""
    champion_version = int(records["champion_version"][0])
    card = registry.show(ws, str(champion_version)).card
    task, spec = card.task, card.spec
    scored = records.filter(pl.col("outputs").is_not_null())
    failed = records.filter(pl.col("outputs").is_null())
    shadow_spec = registry.show(ws, str(int(records["version"][0]))).card.spec
    ours, theirs = _outputs(scored["champion_outputs"]), _outputs(scored["outputs"])
    spec, ours_by_name, theirs_by_name = _by_class_name(task, spec, shadow_spec, ours, theirs)
    ours, theirs = ours_by_name(ours), theirs_by_name(theirs)
    rows = min(len(ours), len(theirs))
    ours, theirs = ours[:rows], theirs[:rows]
    same: float | None = None
    mean_diff: float | None = None
    p95_diff: float | None = None
    edges: list[float] = []
    spreads: tuple[Spread | None, Spread | None] = (None, None)
    if rows:
        threshold = ws.config.train.threshold
        if task == "binary":
            same = float(((ours >= threshold) == (theirs >= threshold)).mean())
        elif task == "multiclass":
            same = float((ours.argmax(axis=1) == theirs.argmax(axis=1)).mean())
        gaps = np.abs(ours - theirs)
        mean_diff = float(gaps.mean())
        p95_diff = float(np.quantile(gaps.max(axis=1) if gaps.ndim == 2 else gaps, 0.95))
        edges, spreads = _spreads(_scores(ours), _scores(theirs), task)
    return ShadowComparison(
        model=str(records["model"][0]), champion_version=champion_version,
        shadow_version=int(records["version"][0]), task=task,
        first=float(records["ts"].min()), last=float(records["ts"].max()),  # type: ignore[arg-type]
        requests=records.height, rows=rows, failed=failed.height,
        first_error=failed["error"][0] if failed.height else None,
        same_label=same, mean_abs_diff=mean_diff, p95_abs_diff=p95_diff, edges=edges,
        champion_scores=spreads[0], shadow_scores=spreads[1],
        champion_ms=_latency(records["champion_seconds"]),
        shadow_ms=_latency(scored["seconds"]),
        live=_live(ws, task, spec, scored, labels, ours_by_name, theirs_by_name))


Aligner = Callable[[np.ndarray], np.ndarray]


def _by_class_name(task: str, champion: FeatureSpec, shadow: FeatureSpec,
                   ours: np.ndarray, theirs: np.ndarray
                   ) -> tuple[FeatureSpec, Aligner, Aligner]:
    """For a multiclass pair that knows different classes (a class appeared between
    them): both models' outputs laid out over the union of their classes, and the spec
    whose class codes the labels take. Otherwise the outputs as they are."""
    if task != "multiclass" or ours.ndim != 2 or theirs.ndim != 2:
        return champion, _as_is, _as_is
    mine, other = class_names(champion.classes, ours), class_names(shadow.classes, theirs)
    if mine == other:
        return champion, _as_is, _as_is
    names = union(mine, other)
    return (replace(champion, classes=names) if champion.classes is not None else champion,
            lambda outputs: aligned(outputs, mine, names, False),
            lambda outputs: aligned(outputs, other, names, False))


def _as_is(outputs: np.ndarray) -> np.ndarray:
    return outputs


def _outputs(column: pl.Series) -> np.ndarray:
    """Every request's JSON outputs as one array: rows, or rows by classes."""
    values = [value for text in column.to_list() for value in json.loads(text)]
    return np.asarray(values, dtype=np.float64)


def _scores(outputs: np.ndarray) -> np.ndarray:
    return outputs.max(axis=1) if outputs.ndim == 2 else outputs


def _spreads(ours: np.ndarray, theirs: np.ndarray, task: str
             ) -> tuple[list[float], tuple[Spread, Spread]]:
    both = np.concatenate([ours, theirs])
    low, high = (0.0, 1.0) if task != "regression" else (float(both.min()), float(both.max()))
    edges = np.linspace(low, high if high > low else low + 1.0, BINS + 1)

    def spread(values: np.ndarray) -> Spread:
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), edges)
        return Spread(float(values.mean()),
                      {f"p{round(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES},
                      [int(c) for c in counts])

    return [float(e) for e in edges], (spread(ours), spread(theirs))


def _latency(seconds: pl.Series) -> dict[str, float]:
    if seconds.is_empty():
        return {}
    values = seconds.to_numpy() * 1000
    return {"p50": float(np.quantile(values, 0.5)), "p99": float(np.quantile(values, 0.99))}


def _live(ws: Workspace, task: str, spec: FeatureSpec, scored: pl.DataFrame,
          labels: _Labels, ours_by_name: Aligner, theirs_by_name: Aligner
          ) -> LiveMetric | None:
    """Both models' metric on the rows that have a label (the newest request per id)."""
    with_ids = scored.filter(pl.col("ids").is_not_null())
    if with_ids.is_empty():
        return None
    by_id = labels.by_id(spec)
    if not by_id:
        return None
    latest: dict[str, tuple[object, object]] = {}
    for ids, ours, theirs in with_ids.select("ids", "champion_outputs", "outputs").iter_rows():
        for identifier, mine, other in zip(json.loads(ids), json.loads(ours), json.loads(theirs),
                                           strict=False):
            if identifier is not None and identifier in by_id:
                latest[identifier] = (mine, other)
    if not latest:
        return None
    truth = np.asarray([by_id[i] for i in latest], dtype=np.float64)
    champion = ours_by_name(np.asarray([pair[0] for pair in latest.values()],
                                       dtype=np.float64))
    shadow = theirs_by_name(np.asarray([pair[1] for pair in latest.values()],
                                       dtype=np.float64))
    metric = comparable_metric(task, registry.primary_metric(ws))
    paired = paired_bootstrap(task, truth, champion, shadow, metric, ws.config.train.threshold)
    return LiveMetric(metric, len(truth), paired.first, paired.second, paired.shortfall)
