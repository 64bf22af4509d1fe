"""The `mlyard` command: a thin face over the core functions.

Each command calls one core function and turns its errors into one line on stderr:
exit 1 for a failure, 2 for a usage error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from mlyard.core.cli import output
from mlyard.core.cli.automation import COMMANDS as AUTOMATION_COMMANDS
from mlyard.core.cli.context import JSON_OPTION, Context, Group
from mlyard.core.cli.models import check, export, import_, models, predict, reproduce, serve, train
from mlyard.core.cli.monitoring import COMMANDS as MONITOR_COMMANDS
from mlyard.core.cli.tune import tune
from mlyard.core.data import versions as data_api
from mlyard.core.data.ingest import ingest_file
from mlyard.core.data.scaffold import data_files, init_project
from mlyard.core.errors import IngestRefused
from mlyard.core.humanize import describe_change
from mlyard.core.tracking import compare
from mlyard.core.tracking import run_queries as runs


@click.group(cls=Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Run as if started in this folder.")
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path),
              help="Workspace folder (default: .mlyard beside mlyard.toml; "
                   "env MLYARD_WORKSPACE).")
@click.version_option(package_name="mlyard")
@click.pass_context
def cli(ctx: click.Context, directory: Path | None, workspace: Path | None) -> None:
    """mlyard: from a folder of tabular data to a monitored model, every step versioned.

    With no command, opens the terminal UI (on a terminal) or prints this help.
    """
    if directory is not None:
        os.chdir(directory)
    ctx.obj = Context(workspace.resolve() if workspace else None)
    if ctx.invoked_subcommand is None:
        if sys.stdout.isatty() and sys.stdin.isatty():
            ctx.invoke(tui, screen="dashboard", no_mouse=False)
        else:
            click.echo(ctx.get_help())


@cli.command()
@click.option("--screen",
              type=click.Choice(["dashboard", "runs", "datasets", "models", "serving",
                                 "automation", "monitoring"]),
              default="dashboard", help="The screen to open on.")
@click.option("--no-mouse", is_flag=True, help="Ignore the mouse (plain SSH terminals).")
@click.pass_obj
def tui(obj: Context, screen: str, no_mouse: bool) -> None:
    """Open the terminal UI on this project."""
    from mlyard.tui.app import MlyardApp  # the UI's imports are paid only by those who open it

    MlyardApp(obj.ws, screen).run(mouse=not no_mouse)


@cli.command()
@click.option("--from", "from_dir", type=click.Path(path_type=Path),
              help="Folder of CSV/Parquet files to infer the contract from.")
@click.option("--target", help="The column to predict (guessed from common names if omitted).")
@click.option("--name", help="Project name (default: this folder's name).")
@click.option("--force", is_flag=True, help="Overwrite an existing mlyard.toml.")
def init(from_dir: Path | None, target: str | None, name: str | None, force: bool) -> None:
    """Write a working mlyard.toml, inferred from the data in --from."""
    path = init_project(Path.cwd(), from_dir, target, name, force)
    output.stdout.print(f"wrote {path}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@JSON_OPTION
@click.pass_obj
def ingest(obj: Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Validate files against the contract and store each as a dataset version.

    Folders are expanded to the CSV/Parquet files directly inside them. A refused file is
    copied to quarantine with its reason; the exit code is 1 if any file was refused.
    """
    files = [f for p in paths for f in (data_files(p) if p.is_dir() else [p])]
    results: list[dict[str, Any]] = []
    refused = 0
    for path in files:
        try:
            result = ingest_file(obj.ws, path)
        except IngestRefused as exc:
            refused += 1
            results.append({"path": str(path), "status": "refused", "reason": exc.msg})
            if not as_json:
                output.stderr.print(f"refused: {exc.msg}", markup=False)
            continue
        status = "ingested" if result.created else "unchanged"
        results.append({"path": str(path), "status": status, "version": result.version.ref,
                        "rows": result.version.rows, "warnings": result.warnings})
        if not as_json:
            verb = "->" if result.created else "already"
            output.stdout.print(f"{path}: {verb} {result.version.ref} "
                                f"({result.version.rows:,} rows)", markup=False)
            for warning in result.warnings if result.created else []:
                output.stderr.print(f"  warning: {warning}", markup=False)
    if as_json:
        output.print_json(results)
    if refused:
        raise SystemExit(1)


@cli.group()
def data() -> None:
    """Dataset versions: list, show, diff."""


@data.command("list")
@JSON_OPTION
@click.pass_obj
def data_list(obj: Context, as_json: bool) -> None:
    """Every dataset version, oldest first."""
    versions = data_api.list_versions(obj.ws)
    if as_json:
        output.print_json([_version_summary(v) for v in versions])
        return
    output.print_table(
        ["version", "rows", "columns", "source", "ingested", "warnings"],
        [(v.ref, f"{v.rows:,}", len(json.loads(v.schema)), Path(v.source_path).name,
          output.when(v.created_at), len(json.loads(v.warnings))) for v in versions],
    )


@data.command("show")
@click.argument("version")
@JSON_OPTION
@click.pass_obj
def data_show(obj: Context, version: str, as_json: bool) -> None:
    """One version: source, hashes, warnings and the profile of every column."""
    record = data_api.get_version(obj.ws, version)
    profile = json.loads(record.profile)
    if as_json:
        output.print_json({**_version_summary(record), "profile": profile})
        return
    output.stdout.print(f"[bold]{record.ref}[/]  {record.rows:,} rows  from {record.source_path}")
    output.stdout.print(f"source blake3 {record.source_hash}\nsnapshot {record.snapshot_hash}")
    for warning in json.loads(record.warnings):
        output.stdout.print(f"warning: {warning}", markup=False)
    output.print_table(
        ["column", "type", "missing", "distinct", "min", "mean", "max", "top"],
        [(name, p["type"], f"{p['null_rate']:.1%}", p["distinct"], p.get("min"), p.get("mean"),
          p.get("max"), ", ".join(f"{v}:{n}" for v, n in p.get("top", [])[:3]))
         for name, p in profile.items()],
    )


@data.command("diff")
@click.argument("old")
@click.argument("new")
@JSON_OPTION
@click.pass_obj
def data_diff(obj: Context, old: str, new: str, as_json: bool) -> None:
    """Schema and profile differences between two versions."""
    diff = data_api.diff_versions(obj.ws, old, new)
    changes = diff.changes
    if as_json:
        output.print_json({"old": diff.old.ref, "new": diff.new.ref, **changes})
        return
    output.stdout.print(f"[bold]{diff.old.ref} -> {diff.new.ref}[/]  rows "
                        f"{changes['rows'][0]:,} -> {changes['rows'][1]:,}")
    for label in ("added", "removed"):
        if changes[label]:
            output.stdout.print(f"columns {label}: {', '.join(changes[label])}", markup=False)
    for name, (before, after) in changes["retyped"].items():
        output.stdout.print(f"column {name}: type {before} -> {after}", markup=False)
    output.print_table(["column", "missing", "change"],
                       [(name, f"{c['null_rate'][0]:.1%} -> {c['null_rate'][1]:.1%}",
                         describe_change(c)) for name, c in changes["columns"].items()])


@cli.group("runs")
def runs_group() -> None:
    """Tracked runs: list, show."""


@runs_group.command("list")
@click.option("--filter", "-f", "filters", multiple=True,
              help="FIELD OP VALUE, e.g. 'metrics.auc > 0.8' or 'params.num_leaves = 31'; "
                   "repeat to combine.")
@click.option("--sort", "-s", help="params.KEY, metrics.KEY or an attribute; prefix - for "
                                   "descending.")
@click.option("--limit", "-n", type=int, help="Show at most this many runs.")
@JSON_OPTION
@click.pass_obj
def runs_list(obj: Context, filters: tuple[str, ...], sort: str | None, limit: int | None,
              as_json: bool) -> None:
    """Runs of this project, newest first unless sorted."""
    found = runs.list_runs(obj.ws, list(filters), sort, limit)
    if as_json:
        output.print_json(found)
        return
    metric_keys = _headline_metrics({k for r in found for k in r.metrics})
    output.print_table(
        ["run", "name", "status", "started", "duration", *metric_keys],
        [(r.run_id[:8], r.name, r.status, output.when(r.start_time, short=True),
          output.duration(r.start_time, r.end_time), *(r.metrics.get(k) for k in metric_keys))
         for r in found],
    )


@runs_group.command("show")
@click.argument("run")
@JSON_OPTION
@click.pass_obj
def runs_show(obj: Context, run: str, as_json: bool) -> None:
    """One run (an id prefix, a name, or `latest`): status, params, metrics, artifacts."""
    detail = runs.show_run(obj.ws, run)
    record = detail.run
    if as_json:
        output.print_json({**output.jsonable(record), "metric_points": detail.metric_points,
                           "artifacts": [{"name": n, "blake3": h, "size": s}
                                         for n, h, s, _ in detail.artifacts]})
        return
    output.stdout.print(f"[bold]run {record.run_id}[/] {record.name or ''}", markup=True)
    output.stdout.print(f"status {record.status}  started {output.when(record.start_time)}  "
                        f"duration {output.duration(record.start_time, record.end_time)}  "
                        f"on {record.host} pid {record.pid}", markup=False)
    if record.error:
        output.stdout.print(f"error: {record.error}", markup=False)
    output.print_table(["param", "value"], sorted(record.params.items()))
    output.print_table(["metric", "latest", "points"],
                       [(k, v, detail.metric_points.get(k, 0))
                        for k, v in sorted(record.metrics.items())])
    if record.tags:
        output.print_table(["tag", "value"], sorted(record.tags.items()))
    if detail.artifacts:
        output.print_table(["artifact", "size", "blake3"],
                           [(n, s, h[:16]) for n, h, s, _ in detail.artifacts])


@runs_group.command("tag")
@click.argument("run")
@click.argument("tags", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.pass_obj
def runs_tag(obj: Context, run: str, tags: tuple[str, ...]) -> None:
    """Set tags on a run (a note is the tag mlyard.note)."""
    runs.set_tags(obj.ws, run, dict(runs.parse_tag(t) for t in tags))


@runs_group.command("log")
@click.argument("run")
@click.option("--lines", "-n", default=50, show_default=True, help="How many of the last lines.")
@JSON_OPTION
@click.pass_obj
def runs_log(obj: Context, run: str, lines: int, as_json: bool) -> None:
    """The last lines a run logged (its captured output and progress)."""
    tail = runs.log_tail(obj.ws, run, lines)
    if as_json:
        output.print_json([{"n": n, "ts": ts, "stream": stream, "line": line}
                           for n, ts, stream, line in tail])
        return
    for _, ts, stream, line in tail:
        output.stdout.print(f"{output.when(ts)} {stream:6} {line}", markup=False,
                            highlight=False)


@runs_group.command("compare")
@click.argument("refs", nargs=-1, required=True)
@click.option("--curves", "curve_metric", help="Also print this metric's curve per run.")
@JSON_OPTION
@click.pass_obj
def runs_compare(obj: Context, refs: tuple[str, ...], curve_metric: str | None,
                 as_json: bool) -> None:
    """Runs side by side: differing params, best metric marked, datasets, durations."""
    result = compare.compare_runs(obj.ws, list(refs))
    curves = compare.metric_curves(obj.ws, list(refs), curve_metric) if curve_metric else None
    if as_json:
        output.print_json({"runs": [r.run_id for r in result.runs], "params": result.params,
                           "differing": result.differing, "metrics": result.metrics,
                           "best": result.best, "datasets": result.datasets,
                           "durations": result.durations, "curves": curves})
        return
    heads = [r.run_id[:8] for r in result.runs]
    output.print_table(["param", *heads],
                       [(f"[bold]{k}[/] *" if k in result.differing else k, *values)
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


def _headline_metrics(keys: set[str], limit: int = 3) -> list[str]:
    """Holdout metrics first, then validation ones: what a person compares runs by."""
    def rank(key: str) -> tuple[int, str]:
        prefix = key.split(".", 1)[0]
        return ({"holdout": 0, "test": 0, "valid": 1, "validation": 1}.get(prefix, 2), key)

    return sorted(keys, key=rank)[:limit]


def _version_summary(version: data_api.VersionRecord) -> dict[str, Any]:
    return {"version": version.ref, "dataset": version.dataset, "seq": version.seq,
            "rows": version.rows, "source": version.source_path,
            "source_blake3": version.source_hash, "snapshot_blake3": version.snapshot_hash,
            "schema": json.loads(version.schema), "warnings": json.loads(version.warnings),
            "created_at": version.created_at}


for _command in (train, models, check, reproduce, export, import_, serve, predict,
                 tune, *AUTOMATION_COMMANDS, *MONITOR_COMMANDS):
    cli.add_command(_command)

main = cli


if __name__ == "__main__":
    main()
