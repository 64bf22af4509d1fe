"""Listing, filtering, sorting and showing runs, and noticing runs whose process died."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from mlyard.core.errors import UsageError
from mlyard.core.processes import pid_alive
from mlyard.core.tracking import artifacts
from mlyard.core.tracking.provenance import SYNCED_TAG
from mlyard.core.tracking.record_summary import RecordSummary, read_summary
from mlyard.core.tracking.segments import SegmentFigures, read_segments
from mlyard.core.workspace import Workspace
from mlyard.storage import models_store, run_outcomes, runs_store
from mlyard.storage.engine import Connection
from mlyard.storage.runs_store import Artifact, RunFilter
from mlyard.storage.runs_store import LogLine as LogLine  # the UI shows these
from mlyard.storage.runs_store import RunRecord as RunRecord  # the CLI and UI list these
from mlyard.storage.runs_store import RunSort as RunSort  # the UI sorts with it

NOTE_TAG = "mlyard.note"

# A run on another host is presumed dead when its heartbeat is this old.
STALE_HEARTBEAT_S = 120.0

_FILTER_RE = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")
_GROUPS = {"params": "params", "param": "params", "metrics": "metrics", "metric": "metrics",
           "tags": "tags", "tag": "tags"}


@dataclass
class RunDetail:
    run: RunRecord
    artifacts: list[Artifact]
    metric_points: dict[str, int]
    inputs: list[str]  # dataset versions a training run used


def parse_filter(text: str) -> RunFilter:
    """`metrics.auc > 0.8`, `params.num_leaves = 31`, `status = finished`, `tags.team = x`."""
    match = _FILTER_RE.match(text)
    if not match:
        raise UsageError(
            f"filter {text!r}: expected FIELD OP VALUE, e.g. 'metrics.auc > 0.8' "
            "(OP is one of = != < <= > >=)"
        )
    field_name, op, raw = match.groups()
    op = "=" if op == "==" else op
    raw = raw.strip("'\"")
    kind, key = _split_field(field_name)
    value: str | float = raw
    if kind in {"metrics", "params"} or key in {"start_time", "end_time", "duration"}:
        try:
            value = float(raw)
        except ValueError:
            if kind == "metrics" or kind == "attr":
                raise UsageError(f"filter {text!r}: {raw!r} is not a number") from None
    return RunFilter(kind, key, op, value)


def parse_sort(text: str) -> RunSort:
    """`metrics.auc` (ascending), `-metrics.auc` or `metrics.auc desc` (descending)."""
    descending = text.startswith("-")
    spec = text.lstrip("-").strip()
    parts = spec.split()
    if len(parts) == 2 and parts[1].lower() in {"asc", "desc"}:
        descending = parts[1].lower() == "desc"
        spec = parts[0]
    kind, key = _split_field(spec)
    return RunSort(kind, key, descending)


def list_runs(
    ws: Workspace, filters: list[str] | None = None, sort: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs of this project that match every filter, newest first unless sorted."""
    parsed = [parse_filter(f) for f in filters or []]
    order = parse_sort(sort) if sort else None
    with ws.catalog.session() as con:
        reconcile_crashed(con, ws.catalog.outcomes_dir)
        return runs_store.query_runs(con, ws.project, parsed, order, limit)


@dataclass
class RunsPage:
    runs: list[RunRecord]
    total: int  # runs matching the filters, on every page
    offset: int
    inputs: dict[str, list[str]]  # run id -> dataset versions it was trained on
    param_keys: list[str]
    metric_keys: list[str]


def runs_page(ws: Workspace, expression: str = "", sort: RunSort | None = None,
              limit: int = 500, offset: int = 0) -> RunsPage:
    """One page of runs for a table: filtered by a small expression, sorted, counted."""
    with ws.catalog.session() as con:
        reconcile_crashed(con, ws.catalog.outcomes_dir)
        param_keys, metric_keys = runs_store.known_keys(con, ws.project)
        filters = parse_expression(expression, param_keys, metric_keys)
        found = runs_store.query_runs(con, ws.project, filters, sort, limit, offset)
        if sort is None:  # in time order, a study's trials sit under its parent run
            found = nest_children(found)
        total = runs_store.count_runs(con, ws.project, filters)
        inputs = {r.run_id: [i.ref for i in models_store.run_inputs(con, r.run_id)]
                  for r in found}
    return RunsPage(found, total, offset, inputs, param_keys, metric_keys)


def nest_children(found: list[RunRecord]) -> list[RunRecord]:
    """Move each run tagged `mlyard.parent` right after its parent when both are in
    `found`, keeping every other run where it was."""
    present = {r.run_id for r in found}
    children: dict[str, list[RunRecord]] = {}
    for run in found:
        parent = run.tags.get("mlyard.parent")
        if parent in present and parent != run.run_id:
            children.setdefault(parent, []).append(run)
    placed = {c.run_id for group in children.values() for c in group}
    ordered: list[RunRecord] = []
    for run in found:
        if run.run_id not in placed:
            ordered.append(run)
            ordered.extend(children.get(run.run_id, []))
    return ordered


def parse_expression(text: str, param_keys: list[str], metric_keys: list[str]) -> list[RunFilter]:
    """`auc > 0.8 and num_leaves = 31`: bare names are metrics (also as holdout.NAME), then
    params, then run attributes. The result is data for parameterised SQL, never SQL."""
    if not text.strip():
        return []
    filters = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _FILTER_RE.match(clause)
        if not match:
            raise UsageError(f"filter {clause!r}: expected NAME OP VALUE joined by 'and', "
                             "e.g. auc > 0.8 and num_leaves = 31")
        name = match.group(1)
        if "." not in name or name.split(".", 1)[0] not in _GROUPS:
            name = _qualify(name, param_keys, metric_keys)
        filters.append(parse_filter(f"{name} {match.group(2)} {match.group(3)}"))
    return filters


def log_tail(ws: Workspace, ref: str, limit: int = 200) -> list[LogLine]:
    """The last lines a run logged, oldest first."""
    with ws.catalog.session() as con:
        run_id = runs_store.resolve_run_id(con, ref, ws.project)
        return runs_store.log_tail(con, run_id, limit)


def set_tags(ws: Workspace, ref: str, tags: dict[str, str]) -> None:
    """Add or change tags on a run, finished or not."""
    ws.check_writable("tag a run")
    for key in tags:
        if not key or not key.strip():
            raise UsageError("a tag needs a name: KEY=VALUE")
    with ws.catalog.session() as con:
        run_id = runs_store.resolve_run_id(con, ref, ws.project)
        runs_store.set_tags(con, run_id, tags)


def set_note(ws: Workspace, ref: str, note: str) -> None:
    """Attach a free-text note to a run (the `mlyard.note` tag)."""
    set_tags(ws, ref, {NOTE_TAG: note})


def parse_tags(texts: list[str]) -> dict[str, str]:
    """`["team=growth"]` -> {"team": "growth"}."""
    tags = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"tag {text!r}: expected KEY=VALUE, e.g. team=growth")
        tags[key.strip()] = value.strip()
    return tags


def _qualify(name: str, param_keys: list[str], metric_keys: list[str]) -> str:
    if name in metric_keys:
        return f"metrics.{name}"
    if f"holdout.{name}" in metric_keys:
        return f"metrics.holdout.{name}"
    if name in param_keys:
        return f"params.{name}"
    if name in runs_store.RUN_ATTRIBUTES:
        return name
    raise UsageError(f"unknown name {name!r} in filter: not a metric, param or run field")


def show_run(ws: Workspace, ref: str) -> RunDetail:
    """One run with params, latest metrics, tags, artifacts and point counts per metric."""
    with ws.catalog.session() as con:
        reconcile_crashed(con, ws.catalog.outcomes_dir)
        run_id = runs_store.resolve_run_id(con, ref, ws.project)
        run = runs_store.query_runs(con, None, [RunFilter("attr", "run_id", "=", run_id)],
                                    None, None)[0]
        listed = runs_store.list_artifacts(con, run_id)
        counts = runs_store.metric_point_counts(con, run_id)
        inputs = [used.ref for used in models_store.run_inputs(con, run_id)]
    return RunDetail(run, listed, counts, inputs)


@dataclass(frozen=True)
class RunDocuments:
    """The JSON records a training or tuning run stores, as the run screen shows them."""

    record: RecordSummary | None  # what `mlyard reproduce` replays, as the screen shows it
    # kind (gain, split, contribution) -> feature -> share; {"params": ...} for a study
    importance: dict[str, dict[str, float]] | None
    segments: SegmentFigures | None = None  # holdout figures per group, with `[monitor] segments`


@dataclass(frozen=True)
class RunView:
    """One run as its screen shows it: the detail, its records and its last lines."""

    detail: RunDetail
    documents: RunDocuments
    log: list[LogLine]


def run_view(ws: Workspace, ref: str, log_lines: int) -> RunView:
    detail = show_run(ws, ref)
    return RunView(detail, run_documents(ws, detail), log_tail(ws, ref, log_lines))


def run_documents(ws: Workspace, detail: RunDetail) -> RunDocuments:
    """Read a run's reproducibility record and importance from the object store."""
    stored = {a.name: a.blake3 for a in detail.artifacts}
    importance: dict[str, dict[str, float]] | None = None
    if artifacts.PARAM_IMPORTANCE in stored:
        importance = {"params": msgspec.json.decode(
            ws.objects.read_bytes(stored[artifacts.PARAM_IMPORTANCE]), type=dict[str, float])}
    elif artifacts.FEATURE_IMPORTANCE in stored:
        importance = msgspec.json.decode(ws.objects.read_bytes(
            stored[artifacts.FEATURE_IMPORTANCE]), type=dict[str, dict[str, float]])
    record = read_summary(ws.objects.read_bytes(stored[artifacts.REPRODUCE])) \
        if artifacts.REPRODUCE in stored else None
    return RunDocuments(record, importance, stored_segments(ws, stored))


def stored_segments(ws: Workspace, stored: dict[str, str]) -> SegmentFigures | None:
    """The segment figures among a run's artifacts (name -> blake3), if it has them."""
    if artifacts.SEGMENTS not in stored:
        return None
    return read_segments(ws.objects.read_bytes(stored[artifacts.SEGMENTS]))


def metric_history(ws: Workspace, ref: str, key: str) -> list[tuple[int, float | None, float]]:
    """Every (step, value, timestamp) logged for one metric of one run."""
    with ws.catalog.session() as con:
        run_id = runs_store.resolve_run_id(con, ref, ws.project)
        return runs_store.metric_history(con, run_id, key)


def _split_field(name: str) -> tuple[str, str]:
    if "." in name:
        group, key = name.split(".", 1)
        if group in _GROUPS:
            return _GROUPS[group], key
    if name in runs_store.RUN_ATTRIBUTES:
        return "attr", name
    raise UsageError(
        f"unknown field {name!r}: use params.KEY, metrics.KEY, tags.KEY or one of "
        f"{', '.join(sorted(runs_store.RUN_ATTRIBUTES))}"
    )


def headline_metrics(keys: Iterable[str], limit: int = 3) -> list[str]:
    """Holdout metrics first, then validation ones: what a person compares runs by."""
    def rank(key: str) -> tuple[int, str]:
        prefix = key.split(".", 1)[0]
        return ({"holdout": 0, "test": 0, "valid": 1, "validation": 1}.get(prefix, 2), key)

    return sorted(keys, key=rank)[:limit]


def reconcile_crashed(con: Connection, outcomes: Path) -> None:
    """Mark runs whose process is gone as crashed, keeping everything they flushed; a run
    that recorded its outcome in its reserved block (a full disk) gets that instead. A
    copy from another workspace is left alone: its run lives there, and the next sync
    brings its end."""
    host = socket.gethostname()
    now = time.time()
    dead = [
        run.run_id
        for run in runs_store.running_runs(con, unless_tagged=SYNCED_TAG)
        if (run.host == host and run.pid is not None and not pid_alive(run.pid, run.start_time))
        or (run.host != host and now - run.heartbeat > STALE_HEARTBEAT_S)
    ]
    for run_id in dead:
        recorded = run_outcomes.read(outcomes, run_id)
        if recorded is not None:
            runs_store.finish_run(con, run_id, recorded[0], now, recorded[1])
        run_outcomes.release(outcomes, run_id)
    if dead:
        runs_store.mark_crashed(con, dead)  # those without a recorded outcome
