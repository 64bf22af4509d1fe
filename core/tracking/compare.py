"""Runs side by side: which params differ, which run is best on each metric, and metric
curves of several runs for one chart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from mlyard.core.errors import UsageError
from mlyard.core.tracking.evaluation import higher_is_better
from mlyard.core.workspace import Workspace
from mlyard.storage import models_store, runs_store
from mlyard.storage.runs_store import RunFilter, RunRecord

# Recorded numbers with no better or worse, so no run is marked best on them.
UNRANKED = {"best_iteration"}


@dataclass
class Comparison:
    runs: list[RunRecord]
    params: dict[str, list[str | None]]  # key -> value per run
    differing: list[str]  # param keys whose values differ
    metrics: dict[str, list[float | None]]  # key -> latest value per run
    best: dict[str, int | None]  # metric key -> index of the best run
    datasets: list[list[str]]  # per run: dataset versions it was trained on
    durations: list[float | None]


def compare_runs(ws: Workspace, refs: list[str]) -> Comparison:
    """At least two runs, in the order given."""
    if len(refs) < 2:
        raise UsageError("compare needs at least two runs")
    with ws.catalog.session() as con:
        run_ids = [runs_store.resolve_run_id(con, ref, ws.project) for ref in refs]
        found = {r.run_id: r for rid in run_ids for r in runs_store.query_runs(
            con, None, [RunFilter("attr", "run_id", "=", rid)], None, None)}
        inputs = [models_store.run_inputs(con, rid) for rid in run_ids]
    runs = [found[rid] for rid in run_ids]
    param_keys = sorted({k for r in runs for k in r.params})
    params = {k: [r.params.get(k) for r in runs] for k in param_keys}
    metric_keys = sorted({k for r in runs for k in r.metrics})
    metrics = {k: [r.metrics.get(k) for r in runs] for k in metric_keys}
    return Comparison(
        runs=runs,
        params=params,
        differing=[k for k, values in params.items() if len(set(values)) > 1],
        metrics=metrics,
        best={k: _best(k, values) for k, values in metrics.items()},
        datasets=[[used.ref for used in run_inputs] for run_inputs in inputs],
        durations=[None if r.end_time is None else r.end_time - r.start_time for r in runs],
    )


class CurvePoint(NamedTuple):
    step: int
    value: float | None


def metric_curves(ws: Workspace, refs: list[str], key: str) -> dict[str, list[CurvePoint]]:
    """The points of one metric for each run, keyed by run id."""
    with ws.catalog.session() as con:
        run_ids = [runs_store.resolve_run_id(con, ref, ws.project) for ref in refs]
        return {rid: [CurvePoint(step, value) for step, value, _ in
                      runs_store.metric_history(con, rid, key)] for rid in run_ids}


def _best(key: str, values: list[float | None]) -> int | None:
    usable = [(v, i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if key in UNRANKED or len(usable) < 2 or len({v for v, _ in usable}) == 1:
        return None
    pick = max if higher_is_better(key) else min
    return pick(usable)[1]
