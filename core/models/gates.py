"""Promotion gates: the checks a model version must pass before it becomes champion.

The same gates run in `mlyard models promote` and in `mlyard check` for CI. A failed
gate names itself, the value and the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlyard.core.tracking.evaluation import PairedComparison
from mlyard.core.tracking.provenance import SYNCED_TAG
from mlyard.core.tracking.segments import MIN_ROWS, GroupFigures, SegmentFigures
from mlyard.storage import datasets_store, models_store, runs_store
from mlyard.storage.engine import Connection
from mlyard.storage.models_store import ModelVersion


@dataclass
class GateResult:
    gate: str
    passed: bool
    value: float | str | None
    threshold: float | str | None
    detail: str


@dataclass(frozen=True)
class DriftFinding:
    """The newest data against the candidate's training data, checked before the gates
    (it reads data and scores it, which is no work for inside the catalog lock)."""

    current: str  # the dataset version compared
    severity: str  # none | moderate | severe
    drifted: list[str]


@dataclass(frozen=True)
class ShadowFinding:
    """The candidate as the present champion's shadow on live traffic (monitoring's
    `shadow_report.finding`), for `min_shadow_requests` and `max_shadow_regression`."""

    champion_version: int
    requests: int  # scored by the candidate as the champion's shadow
    metric: str | None  # the live metric compared, once labels arrived
    labelled_rows: int
    worse_by: tuple[float, float, float] | None  # value, 95% interval low and high


IMPORTED_TAG = "mlyard.imported_from"  # set on a run that came in a bundle
ORIGIN_TAG = "mlyard.origin_project"  # the project a bundle's run was trained in


@dataclass(frozen=True)
class HeadToHead:
    """The candidate and the champion scored on the same evaluation rows, which neither
    trained on (training's `versus_champion`): `comparison.first` is the champion,
    `second` the candidate, `relative` how much worse the candidate is as a share of
    the champion's figure."""

    candidate_version: int
    champion_version: int
    comparison: PairedComparison
    datasets: list[str]


@dataclass(frozen=True)
class SegmentEvidence:
    """The candidate's figures per group of each segment, and the champion's beside them,
    both on the same evaluation rows (training's `segments_on_evaluation_rows`)."""

    candidate_version: int
    candidate: SegmentFigures
    champion_version: int | None
    champion: SegmentFigures | None
    datasets: list[str]


SEGMENT_GATES = ("max_segment_gap", "max_demographic_parity_difference")


def is_segment_gate(gate: str) -> bool:
    return gate in SEGMENT_GATES or gate.startswith(("min_segment_", "max_segment_"))


@dataclass(frozen=True)
class Evidence:
    """What some gates judge besides the catalog, gathered by the caller before the
    catalog lock (reading data, scoring, reading logs): the newest data's drift, an
    imported model's metrics on this project, the candidate's shadow record, and the
    candidate beside the champion on the same rows."""

    drift: DriftFinding | None = None
    rescored: Rescored | None = None
    shadow: ShadowFinding | None = None
    versus: HeadToHead | None = None
    segments: SegmentEvidence | None = None


@dataclass(frozen=True)
class Rescored:
    """An imported model scored on this project's own holdout rows: the metrics its
    gates judge, instead of the ones the bundle claimed."""

    metrics: dict[str, float | None]  # holdout.<metric>
    rows: int
    datasets: list[str]


def is_imported(con: Connection, version: ModelVersion) -> bool:
    """Whether the version came from another workspace, by bundle or by sync."""
    return bool({IMPORTED_TAG, SYNCED_TAG} & set(runs_store.get_tags(con, version.run_id)))


def evaluate_gates(con: Connection, gates: dict[str, float | bool], version: ModelVersion,
                   evidence: Evidence | None = None) -> list[GateResult]:
    """Every configured gate for `version`, judged against the catalog as it is now.

    An imported version's metrics are claims: its gates judge `evidence.rescored` (the
    caller scores it on this project's holdout) and without that it does not pass.
    """
    evidence = evidence or Evidence()
    rescored = evidence.rescored
    metrics = _metrics(con, version.run_id)
    results: list[GateResult] = []
    if is_imported(con, version):
        if rescored is None:
            return [GateResult("rescored_here", False, None, None,
                               "an imported model's metrics are claims; it must be scored "
                               "on this project's holdout first")]
        metrics = dict(rescored.metrics)
        results.append(GateResult("rescored_here", True, rescored.rows, None,
                                  f"scored here on {rescored.rows:,} holdout rows of "
                                  f"{', '.join(rescored.datasets)}"))
    for gate, threshold in sorted(gates.items()):
        if gate == "require_clean_data":
            if threshold:
                results.append(_clean_data(con, version))
        elif gate == "no_severe_drift":
            if threshold:
                results.append(_drift(evidence.drift))
        elif gate in ("min_shadow_requests", "max_shadow_regression"):
            results.append(_shadow(con, gate, version, evidence.shadow, float(threshold)))
        elif gate == "max_regression_vs_champion":
            results.append(_vs_champion(con, version, evidence.versus, float(threshold)))
        elif is_segment_gate(gate):
            results.append(_segment_gate(gate, version, evidence.segments, float(threshold)))
        else:
            results.append(_bound(gate, metrics, float(threshold)))
    return results


def _metrics(con: Connection, run_id: str) -> dict[str, float | None]:
    return runs_store.latest_metrics_for(con, [run_id])[run_id]


def _bound(gate: str, metrics: dict[str, float | None], threshold: float) -> GateResult:
    side, metric = gate.split("_", 1)
    key = metric if metric in metrics else f"holdout.{metric}"
    value = metrics.get(key)
    if value is None or math.isnan(value):
        return GateResult(gate, False, None, threshold, f"{key} was not recorded for this run")
    passed = value >= threshold if side == "min" else value <= threshold
    word = "at least" if side == "min" else "at most"
    return GateResult(gate, passed, value, threshold,
                      f"{key} = {value:.4g}, must be {word} {threshold:g}")


def _vs_champion(con: Connection, version: ModelVersion, versus: HeadToHead | None,
                 tolerance: float) -> GateResult:
    """Not worse than the champion by more than `tolerance` (a share of the champion's
    figure), both scored on the same rows, judged with the paired bootstrap's 95%
    interval of how much worse: when it straddles the tolerance, the detail says the
    evidence is thin and how many rows it stands on."""
    gate = "max_regression_vs_champion"
    champion_number = models_store.aliases(con, version.model).get("champion")
    if champion_number is None or champion_number == version.version:
        note = "no champion yet" if champion_number is None else "this version is the champion"
        return GateResult(gate, True, None, tolerance, note)
    if versus is None or versus.champion_version != champion_number or \
            versus.candidate_version != version.version:
        return GateResult(gate, False, None, tolerance,
                          f"v{version.version} was not scored beside champion "
                          f"v{champion_number} on the same rows")
    paired = versus.comparison
    worse = paired.relative
    if math.isnan(worse.value):
        return GateResult(gate, False, None, tolerance,
                          f"holdout.{paired.metric} cannot be compared on these "
                          f"{paired.rows:,} rows (the champion's figure is 0 or undefined)")
    # Sure enough either way: the interval's far end decides. Thin evidence (the
    # interval straddles the tolerance) moves champion only for a candidate measured at
    # least as good, so noise alone neither promotes a worse model nor blocks a better.
    thin = math.isnan(worse.low) or worse.low <= tolerance < worse.high
    passed = worse.value <= 0 if thin else worse.high <= tolerance
    return GateResult(gate, passed, worse.value, tolerance,
                      f"holdout.{paired.metric} on the same {paired.rows:,} rows, which "
                      f"neither trained on: v{version.version} {paired.second.value:.4g} vs "
                      f"champion v{champion_number} {paired.first.value:.4g}, "
                      f"{'worse' if worse.value > 0 else 'better'} by "
                      f"{abs(worse.value):.1%} (95% interval {_signed(worse.low)} to "
                      f"{_signed(worse.high)}; allowed worse by {tolerance:.1%})"
                      + (f": the evidence is thin ({paired.rows:,} rows), so only a "
                         "candidate at least as good moves champion" if thin else ""))


def _signed(share: float) -> str:
    """A relative shortfall as the worse (+) or better (-) percentage."""
    return "n/a" if math.isnan(share) else f"{share:+.1%}"


def _shadow(con: Connection, gate: str, version: ModelVersion,
            shadow: ShadowFinding | None, threshold: float) -> GateResult:
    champion = models_store.aliases(con, version.model).get("champion")
    if champion == version.version:
        return GateResult(gate, True, None, threshold, "this version is the champion")
    if shadow is None or shadow.champion_version != champion:
        against = f"champion v{champion}" if champion is not None else "a champion"
        return GateResult(gate, False, None, threshold,
                          f"v{version.version} has not scored live traffic as the shadow of "
                          f"{against} (mlyard serve champion --shadow {version.version})")
    if gate == "min_shadow_requests":
        return GateResult(gate, shadow.requests >= threshold, shadow.requests, threshold,
                          f"{shadow.requests:,} requests scored as the shadow of champion "
                          f"v{champion}, must be at least {threshold:g}")
    if shadow.worse_by is None or shadow.metric is None:
        return GateResult(gate, False, None, threshold,
                          "no labels joined to its shadow predictions yet (mlyard feedback)")
    worse, low, high = shadow.worse_by
    return GateResult(gate, worse <= threshold, worse, threshold,
                      f"live {shadow.metric} on {shadow.labelled_rows:,} labelled rows: "
                      f"{'worse' if worse > 0 else 'not worse'} than champion v{champion} by "
                      f"{abs(worse):.4g} (95% interval {low:.4g} to {high:.4g}; allowed "
                      f"{threshold:g})")


def _clean_data(con: Connection, version: ModelVersion) -> GateResult:
    warned = []
    for used in models_store.run_inputs(con, version.run_id):
        record = datasets_store.get_version(con, used.dataset, used.seq)
        if record.warnings:
            warned.append(record.ref)
    detail = ("every training dataset version was clean" if not warned
              else f"ingest warnings on {', '.join(warned)}")
    return GateResult("require_clean_data", not warned, len(warned), 0, detail)


def _drift(drift: DriftFinding | None) -> GateResult:
    if drift is None:
        return GateResult("no_severe_drift", False, None, "not severe",
                          "no dataset version to compare with the training data")
    passed = drift.severity != "severe"
    what = f" ({', '.join(drift.drifted)})" if drift.drifted else ""
    return GateResult("no_severe_drift", passed, drift.severity, "not severe",
                      f"{drift.current} against this model's training data: "
                      f"{drift.severity} drift{what}")


def _segment_gate(gate: str, version: ModelVersion, found: SegmentEvidence | None,
                  threshold: float) -> GateResult:
    """A per-group or fairness limit, judged on the evaluation rows; the detail names
    the segment and group that decide, the rows they stand on, and the champion's
    figure on the same rows."""
    if found is None or found.candidate_version != version.version:
        return GateResult(gate, False, None, threshold,
                          f"v{version.version} was not scored by segment on the evaluation "
                          "rows (is [monitor] segments set?)")
    figures = found.candidate
    if gate == "max_demographic_parity_difference":
        judged = [(f.demographic_parity_difference, f) for f in figures.fairness
                  if f.demographic_parity_difference is not None and
                  not math.isnan(f.demographic_parity_difference)]
        if not judged:
            return GateResult(gate, False, None, threshold, "no sensitive segment of a "
                              f"classifier with two groups of {MIN_ROWS}+ rows to judge")
        value, widest = max(judged, key=lambda pair: pair[0])
        return GateResult(gate, value <= threshold, value, threshold,
                          f"demographic parity difference between groups of "
                          f"{widest.segment} = {value:.4g} on {widest.rows:,} rows, must be "
                          f"at most {threshold:g}{_champion_fairness(found, widest.segment)}")
    metric = figures.metric
    if gate == "max_segment_gap":
        gaps = [gap for gap in (_gap(figures, segment) for segment in _segments(figures))
                if gap is not None]
        if not gaps:
            return GateResult(gate, False, None, threshold, f"no segment with two groups of "
                              f"{MIN_ROWS}+ rows to judge")
        value, low, high = max(gaps, key=lambda gap: gap[0])
        return GateResult(gate, value <= threshold, value, threshold,
                          f"{metric} gap in {low.segment} = {value:.4g}: {_shown(low, metric)}"
                          f" against {_shown(high, metric)}, must be at most {threshold:g}"
                          f"{_champion_gap(found, low.segment)}")
    side, name = gate.split("_segment_", 1)
    measured = [g for g in figures.groups if not g.too_few and name in g.metrics and
                not math.isnan(g.metrics[name])]
    if not measured:
        return GateResult(gate, False, None, threshold, f"no group of {MIN_ROWS}+ rows has "
                          f"{name} measured")
    decisive = min(measured, key=lambda g: g.metrics[name]) if side == "min" else \
        max(measured, key=lambda g: g.metrics[name])
    value = decisive.metrics[name]
    passed = value >= threshold if side == "min" else value <= threshold
    word = "at least" if side == "min" else "at most"
    return GateResult(gate, passed, value, threshold,
                      f"worst group: {_shown(decisive, name)}, must be {word} {threshold:g}"
                      f"{_champion_group(found, decisive, name)}")


def _segments(figures: SegmentFigures) -> list[str]:
    return list(dict.fromkeys(g.segment for g in figures.groups))


def _gap(figures: SegmentFigures, segment: str
         ) -> tuple[float, GroupFigures, GroupFigures] | None:
    """The spread of the primary metric between a segment's groups: (gap, worst, best)."""
    measured = [g for g in figures.worst(segment) if not g.too_few and
                not math.isnan(g.metrics.get(figures.metric, math.nan))]
    if len(measured) < 2:
        return None
    worst, best = measured[0], measured[-1]
    return abs(best.metrics[figures.metric] - worst.metrics[figures.metric]), worst, best


def _shown(group: GroupFigures, metric: str) -> str:
    return f"{group.segment} {group.group!r} {metric} {group.metrics[metric]:.4g} on " \
        f"{group.rows:,} rows"


def _champion_gap(found: SegmentEvidence, segment: str) -> str:
    gap = _gap(found.champion, segment) if found.champion is not None else None
    return "" if gap is None else \
        f" (champion v{found.champion_version} on the same rows: {gap[0]:.4g})"


def _champion_fairness(found: SegmentEvidence, segment: str) -> str:
    theirs = next((f for f in found.champion.fairness if f.segment == segment), None) \
        if found.champion is not None else None
    if theirs is None or theirs.demographic_parity_difference is None:
        return ""
    return (f" (champion v{found.champion_version} on the same rows: "
            f"{theirs.demographic_parity_difference:.4g})")


def _champion_group(found: SegmentEvidence, group: GroupFigures, metric: str) -> str:
    theirs = next((g for g in found.champion.groups if g.segment == group.segment and
                   g.group == group.group), None) if found.champion is not None else None
    if theirs is None or metric not in theirs.metrics:
        return ""
    return (f" (champion v{found.champion_version} on the same rows: "
            f"{theirs.metrics[metric]:.4g})")
