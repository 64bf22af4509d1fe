"""`mlyard runs ...`: list, show, tag, tail and compare tracked runs."""

from __future__ import annotations

import click

from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.core.models import registry
from mlyard.core.tracking import compare, run_queries
from mlyard.core.tracking.provenance import SYNCED_TAG
from mlyard.core.training.device import DEVICE_TAG

TABLE_ROWS = 50


@click.group("runs")
def runs_group() -> None:
    """Tracked runs: list, show, tag, log, compare."""


@runs_group.command("list")
@click.option("--filter", "-f", "filters", multiple=True,
              help="FIELD OP VALUE, e.g. 'metrics.auc > 0.8' or 'params.num_leaves = 31'; "
                   "repeat to combine.")
@click.option("--sort", "-s", help="params.KEY, metrics.KEY or an attribute; prefix - for "
                                   "descending.")
@click.option("--limit", "-n", type=int,
              help=f"Show at most this many runs (0: all; default: all with --json, "
                   f"{TABLE_ROWS} in the table).")
@JSON_OPTION
@click.pass_obj
def runs_list(obj: Context, filters: tuple[str, ...], sort: str | None, limit: int | None,
              as_json: bool) -> None:
    """Runs of this project, newest first unless sorted."""
    if limit == 0 or (limit is None and as_json):
        limit = None
    elif limit is None:
        limit = TABLE_ROWS  # a first page at once, as git log does, not 10,000 table rows
        found = run_queries.list_runs(obj.ws, list(filters), sort, limit + 1)
        _print_runs(found[:limit])
        if len(found) > limit:
            output.stdout.print("(more runs: -n N for N of them, -n 0 for all, or --json)",
                                style="dim")
        return
    found = run_queries.list_runs(obj.ws, list(filters), sort, limit)
    if as_json:
        output.print_json(found)
        return
    _print_runs(found)


def _print_runs(found: list[run_queries.RunRecord]) -> None:
    metric_keys = run_queries.headline_metrics({k for r in found for k in r.metrics})
    output.print_table(
        ["run", "name", "status", "started", "duration", *metric_keys],
        [(r.run_id[:8], r.name, r.status, output.when(r.start_time, short=True),
          output.duration(r.start_time, r.end_time), *(r.metrics.get(k) for k in metric_keys))
         for r in found],
        drop_first=["duration", "started"],
    )


@runs_group.command("show")
@click.argument("run")
@JSON_OPTION
@click.pass_obj
def runs_show(obj: Context, run: str, as_json: bool) -> None:
    """One run (an id prefix, a name, `latest`, or a model version like churn/1): status,
    params, metrics, artifacts."""
    detail = run_queries.show_run(obj.ws, registry.run_id_for(obj.ws, run))
    record = detail.run
    segments = run_queries.stored_segments(obj.ws, {a.name: a.blake3
                                                    for a in detail.artifacts})
    if as_json:
        output.print_json({**output.jsonable(record), "metric_points": detail.metric_points,
                           "artifacts": [{"name": a.name, "blake3": a.blake3, "size": a.size}
                                         for a in detail.artifacts],
                           "segments": output.jsonable(segments)})
        return
    output.stdout.print(output.bold(f"run {record.run_id}"), record.name or "")
    output.stdout.print(f"status {record.status}  started {output.when(record.start_time)}  "
                        f"duration {output.duration(record.start_time, record.end_time)}  "
                        f"on {record.host} pid {record.pid}"
                        + (f"  device {record.tags[DEVICE_TAG]}" if DEVICE_TAG in record.tags
                           else ""), markup=False)
    if SYNCED_TAG in record.tags:
        output.stdout.print(f"synced from {record.tags[SYNCED_TAG]}", markup=False)
    if record.error:
        output.stdout.print(f"error: {record.error}", markup=False)
    if "rows.holdout" in record.metrics:
        rows = {side: int(record.metrics.get(f"rows.{side}") or 0)
                for side in ("train", "valid", "holdout")}
        output.stdout.print(f"trained on {rows['train']:,} rows (+{rows['valid']:,} for early "
                            f"stopping), judged on {rows['holdout']:,} holdout rows",
                            markup=False)
    output.print_table(["param", "value"], sorted(record.params.items()))
    output.print_table(["metric", "latest", "points"],
                       [(k, v, detail.metric_points.get(k, 0))
                        for k, v in sorted(record.metrics.items())])
    if segments is not None:
        output.print_segments(segments)
    if record.tags:
        output.print_table(["tag", "value"], sorted(record.tags.items()))
    if detail.artifacts:
        output.print_table(["artifact", "size", "blake3"],
                           [(a.name, a.size, a.blake3[:16]) for a in detail.artifacts])


@runs_group.command("tag")
@click.argument("run")
@click.argument("tags", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.pass_obj
def runs_tag(obj: Context, run: str, tags: tuple[str, ...]) -> None:
    """Set tags on a run (a note is the tag mlyard.note)."""
    run_queries.set_tags(obj.ws, run, run_queries.parse_tags(list(tags)))


@runs_group.command("log")
@click.argument("run")
@click.option("--lines", "-n", default=50, show_default=True, help="How many of the last lines.")
@JSON_OPTION
@click.pass_obj
def runs_log(obj: Context, run: str, lines: int, as_json: bool) -> None:
    """The last lines a run logged (its captured output and progress)."""
    tail = run_queries.log_tail(obj.ws, run, lines)
    if as_json:
        output.print_json([{"n": t.seq, "ts": t.ts, "stream": t.stream, "line": t.line}
                           for t in tail])
        return
    for t in tail:
        output.stdout.print(f"{output.when(t.ts)} {t.stream:6} {t.line}", markup=False,
                            highlight=False)


@runs_group.command("compare")
@click.argument("refs", nargs=-1, required=True)
@click.option("--curves", "curve_metric", help="Also print this metric's curve per run.")
@JSON_OPTION
@click.pass_obj
def runs_compare(obj: Context, refs: tuple[str, ...], curve_metric: str | None,
                 as_json: bool) -> None:
    """Runs side by side: differing params, best metric marked, datasets, durations.

    REFS are runs (`latest`, an id prefix, a name) or model versions (`churn/1`)."""
    run_ids = [registry.run_id_for(obj.ws, ref) for ref in refs]
    result = compare.compare_runs(obj.ws, run_ids)
    curves = compare.metric_curves(obj.ws, run_ids, curve_metric) if curve_metric else None
    if as_json:
        output.print_json({"runs": [r.run_id for r in result.runs], "params": result.params,
                           "differing": result.differing, "metrics": result.metrics,
                           "best": result.best, "datasets": result.datasets,
                           "durations": result.durations, "curves": curves})
        return
    heads = [r.run_id[:8] for r in result.runs]
    output.print_table(["param", *heads],
                       [(output.bold(f"{k} *") if k in result.differing else k, *values)
                        for k, values in result.params.items()])
    output.print_table(["metric", *heads],
                       [(k, *(f"{output.fmt(v)} *" if result.best.get(k) == i else output.fmt(v)
                              for i, v in enumerate(values)))
                        for k, values in result.metrics.items()])
    output.print_table(["", *heads],
                       [("datasets", *(", ".join(d) for d in result.datasets)),
                        ("duration", *(output.duration(0, d) for d in result.durations))])
    for run_id, points in (curves or {}).items():
        shown = ", ".join(f"{s}:{output.fmt(v)}" for s, v in points[:: max(1, len(points) // 10)])
        output.stdout.print(f"{run_id[:8]} {curve_metric}: {shown}", markup=False)
