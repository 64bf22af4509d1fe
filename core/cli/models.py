"""`mlyard train`, `models`, `check`, `reproduce`, `export` and `import`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mlyard.core import compute
from mlyard.core.automation.jobs import training_slot
from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.core.errors import UsageError
from mlyard.core.models import bundle, registry
from mlyard.core.models.gates import GateResult
from mlyard.core.models.registry import GatesFailed
from mlyard.core.monitoring.drift_reports import gate_finding
from mlyard.core.training import reproduce as reproduce_api
from mlyard.core.training import trainer as train_api

QUIET_OPTION = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
CLUSTER_OPTION = click.option(
    "--cluster", metavar="ADDRESS",
    help="Run on this Dask scheduler (tcp://HOST:8786); default: [compute] in mlyard.toml.")


@click.command()
@click.option("--dataset", "datasets", multiple=True,
              help="A dataset version to train on (repeat; default: all, or [train] window).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A LightGBM parameter on top of the config (repeat).")
@click.option("--seed", type=int, help="Seed for the split and LightGBM (default: config).")
@click.option("--name", help="Run name.")
@CLUSTER_OPTION
@QUIET_OPTION
@JSON_OPTION
@click.pass_obj
def train(obj: Context, datasets: tuple[str, ...], params: tuple[str, ...], seed: int | None,
          name: str | None, cluster: str | None, quiet: bool, as_json: bool) -> None:
    """Train LightGBM on dataset versions; log every iteration; store the model."""
    training = train_api.plan(obj.ws, list(datasets), _parse_params(params), seed)
    # One training per project at a time: a person waits for a scheduled one to finish.
    with training_slot(obj.ws, wait=True, who="mlyard train",
                       on_wait=lambda message: output.stderr.print(message, markup=False)):
        if compute.wants_dask(obj.ws, cluster):
            from mlyard.core.training.cluster import train_on_cluster

            with compute.dask_client(obj.ws, cluster) as client:
                result = train_on_cluster(obj.ws, training, client, name=name)
        else:
            with _progress(quiet or as_json) as report:
                result = train_api.train(obj.ws, training, name=name, on_iteration=report)
    if as_json:
        output.print_json({"run_id": result.run_id, "best_iteration": result.best_iteration,
                           "metrics": result.metrics, "model_version": result.model_version,
                           "model_blake3": result.model_hash})
        return
    version = f"  model {obj.ws.project}/{result.model_version}" if result.model_version else ""
    output.stdout.print(f"run {result.run_id}  best iteration {result.best_iteration}{version}",
                        markup=False)
    output.print_table(["holdout metric", "value"], sorted(result.metrics.items()))


@click.group()
def models() -> None:
    """Model versions and aliases: list, show, register, alias, promote, rollback."""


@models.command("list")
@JSON_OPTION
@click.pass_obj
def models_list(obj: Context, as_json: bool) -> None:
    """Every version of the project's model with its aliases and holdout metrics."""
    rows = registry.list_versions(obj.ws)
    if as_json:
        output.print_json([{"model": v.model, "version": v.version, "run_id": v.run_id,
                            "aliases": aliases, "metrics": metrics,
                            "created_at": v.created_at} for v, aliases, metrics in rows])
        return
    primary = f"holdout.{registry.primary_metric(obj.ws)}"
    output.print_table(["version", "aliases", "run", "created", primary],
                       [(f"{v.model}/{v.version}", ", ".join(a), v.run_id[:8],
                         output.when(v.created_at, short=True), m.get(primary))
                        for v, a, m in rows])


@models.command("show")
@click.argument("ref")
@JSON_OPTION
@click.pass_obj
def models_show(obj: Context, ref: str, as_json: bool) -> None:
    """One version: aliases, metrics and model card."""
    detail = registry.show(obj.ws, ref)
    if as_json:
        output.print_json({"version": output.jsonable(detail.version), "aliases": detail.aliases,
                           "metrics": detail.metrics, "card": detail.card})
        return
    v = detail.version
    output.stdout.print(f"{v.model}/{v.version}  aliases: {', '.join(detail.aliases) or '-'}  "
                        f"run {v.run_id[:8]}  task {detail.card['task']}", markup=False)
    output.print_table(["holdout metric", "value"], sorted(detail.metrics.items()))
    features = detail.card["spec"]["features"]
    output.print_table(["feature", "type", "gain"],
                       [(f["name"], f["type"], detail.card["feature_importance"]["gain"]
                         .get(f["name"])) for f in features])


@models.command("register")
@click.argument("run")
@click.pass_obj
def models_register(obj: Context, run: str) -> None:
    """Make a training run a model version."""
    version = registry.register(obj.ws, run)
    output.stdout.print(f"{version.model}/{version.version} from run {version.run_id[:8]}",
                        markup=False)


@models.command("alias")
@click.argument("alias")
@click.argument("ref")
@click.option("--reason", help="Why, for the event log.")
@click.pass_obj
def models_alias(obj: Context, alias: str, ref: str, reason: str | None) -> None:
    """Point ALIAS (challenger, staging, ...) at a version."""
    move = registry.set_alias(obj.ws, alias, ref, reason)
    _print_move(move)


@models.command("promote")
@click.argument("ref")
@click.option("--reason", help="Why, for the event log.")
@click.option("--force", is_flag=True, help="Promote even if a gate fails (recorded).")
@click.pass_obj
def models_promote(obj: Context, ref: str, reason: str | None, force: bool) -> None:
    """Make a version champion, if it passes every gate."""
    try:
        move, results = registry.promote(obj.ws, ref, reason, force,
                                         drift=gate_finding(obj.ws, ref))
    except GatesFailed as failed:
        _print_gates(failed.results)
        raise
    _print_gates(results)
    _print_move(move)


@models.command("rollback")
@click.option("--reason", help="Why, for the event log.")
@click.pass_obj
def models_rollback(obj: Context, reason: str | None) -> None:
    """Move champion back to the version it replaced."""
    _print_move(registry.rollback(obj.ws, reason))


@models.command("history")
@click.option("--alias", help="Only this alias.")
@JSON_OPTION
@click.pass_obj
def models_history(obj: Context, alias: str | None, as_json: bool) -> None:
    """Every alias move: who, when, from, to and why."""
    moves = registry.history(obj.ws, alias)
    if as_json:
        output.print_json(moves)
        return
    output.print_table(["when", "alias", "kind", "from", "to", "who", "reason"],
                       [(output.when(m.ts), m.alias, m.kind, m.from_version, m.to_version,
                         m.actor, m.reason) for m in moves])


@click.command()
@click.argument("ref", required=False)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Markdown report here (for a pull request comment).")
@JSON_OPTION
@click.pass_obj
def check(obj: Context, ref: str | None, report: Path | None, as_json: bool) -> None:
    """Run every promotion gate for a version (default: newest); exit 1 if any fails."""
    version, results = registry.check(obj.ws, ref, gate_finding(obj.ws, ref or "latest"))
    passed = all(r.passed for r in results)
    if report is not None:
        report.write_text(_markdown_report(f"{version.model}/{version.version}",
                                           version.run_id, results), encoding="utf-8")
    if as_json:
        output.print_json({"model": version.model, "version": version.version,
                           "passed": passed, "gates": results})
    else:
        _print_gates(results)
        output.stdout.print(f"{version.model}/{version.version}: "
                            f"{'all gates passed' if passed else 'gates failed'}", markup=False)
    if not passed:
        sys.exit(1)


@click.command()
@click.argument("run")
@QUIET_OPTION
@JSON_OPTION
@click.pass_obj
def reproduce(obj: Context, run: str, quiet: bool, as_json: bool) -> None:
    """Train again from RUN's record; exit 1 unless model and metrics are identical."""
    with _progress(quiet or as_json) as report:
        result = reproduce_api.reproduce(obj.ws, run, on_iteration=report)
    if as_json:
        output.print_json({"original_run": result.original_run, "new_run": result.new_run,
                           "model_identical": result.model_identical,
                           "identical": result.identical,
                           "metric_differences": result.metric_differences})
    else:
        verdict = "identical" if result.identical else "DIFFERENT"
        output.stdout.print(f"run {result.new_run[:8]} reproduces {result.original_run[:8]}: "
                            f"model {'identical' if result.model_identical else 'different'}, "
                            f"metrics {'identical' if not result.metric_differences else 'differ'}"
                            f" -> {verdict}", markup=False)
        for key, (before, after) in result.metric_differences.items():
            output.stdout.print(f"  {key}: {before} -> {after}", markup=False)
    if not result.identical:
        sys.exit(1)


@click.command()
@click.argument("ref")
@click.option("-o", "--output", "target", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The .tar.gz to write.")
@click.pass_obj
def export(obj: Context, ref: str, target: Path) -> None:
    """Write a run or model version, with its data and files, to one bundle."""
    manifest = bundle.export_bundle(obj.ws, ref, target)
    output.stdout.print(f"{target}: run {manifest['run_id'][:8]}, "
                        f"{len(manifest['objects'])} objects", markup=False)


@click.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@JSON_OPTION
@click.pass_obj
def import_(obj: Context, source: Path, as_json: bool) -> None:
    """Add a bundle made by `mlyard export` to this workspace."""
    result = bundle.import_bundle(obj.ws, source)
    if as_json:
        output.print_json(result)
        return
    output.stdout.print(f"imported run {result.run_id[:8]}; models: "
                        f"{', '.join(result.model_versions) or '-'}; datasets: "
                        f"{', '.join(result.dataset_versions) or '-'}", markup=False)


@click.command()
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5005, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="Server processes (each loads the model).")
@click.option("--token", envvar="MLYARD_SERVE_TOKEN",
              help="Require Authorization: Bearer TOKEN (needed beyond loopback).")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback host without a token.")
@click.option("--max-body", default=10 * 1024 * 1024, show_default=True, type=int,
              help="Largest request body in bytes (larger: 413).")
@click.option("--no-log", is_flag=True, help="Do not log predictions (monitoring sees none).")
@click.pass_obj
def serve(obj: Context, model: str, host: str, port: int, workers: int, token: str | None,
          insecure: bool, max_body: int, no_log: bool) -> None:
    """Serve MODEL (a version or an alias, e.g. churn@champion) over MLflow's protocol."""
    import os

    import uvicorn

    from mlyard.core.serving.server import check_binding, create_app

    check_binding(host, token, insecure)
    version = registry.resolve(obj.ws, model)
    output.stderr.print(f"serving {version.model}/{version.version} ({model}) on "
                        f"http://{host}:{port}/invocations", markup=False)
    if workers > 1:
        if no_log:
            raise UsageError("--no-log works with one worker only")
        os.environ.update({"MLYARD_SERVE_MODEL": model, "MLYARD_SERVE_TOKEN": token or "",
                           "MLYARD_SERVE_MAX_BODY": str(max_body),
                           "MLYARD_WORKSPACE": str(obj.ws.root)})
        uvicorn.run("mlyard.core.serving.server:app_from_env", factory=True, host=host, port=port,
                    workers=workers, log_level="warning")
        return
    uvicorn.run(create_app(obj.ws, model, token, max_body, log_predictions=not no_log),
                host=host, port=port, log_level="warning")


@click.command()
@click.argument("model")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "target", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The .parquet to write.")
@CLUSTER_OPTION
@click.pass_obj
def predict(obj: Context, model: str, source: Path, target: Path, cluster: str | None) -> None:
    """Score a CSV or Parquet file with MODEL into a Parquet file, in batches."""
    if compute.wants_dask(obj.ws, cluster):
        from mlyard.core.serving.cluster_batch import predict_on_cluster

        with compute.dask_client(obj.ws, cluster) as client:
            rows = predict_on_cluster(obj.ws, model, source, target, client)
    else:
        from mlyard.core.serving.batch import predict_file

        rows = predict_file(obj.ws, model, source, target)
    output.stdout.print(f"{target}: {rows:,} rows scored", markup=False)


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`k=v` with v read as JSON when it parses (numbers, true/false, lists), else text."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE, e.g. num_leaves=63")
        try:
            parsed[key.strip()] = json.loads(raw)
        except ValueError:
            parsed[key.strip()] = raw
    return parsed


@contextmanager
def _progress(quiet: bool) -> Iterator[train_api.ProgressCallback | None]:
    """A progress bar on stderr while training, only when it is a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("best valid {task.fields[best]}"), console=output.stderr,
                   transient=True)
    task = bar.add_task("train", total=None, best="-")

    def report(iteration: int, total: int, best: float | None) -> None:
        bar.update(task, completed=iteration, total=total,
                   best="-" if best is None else f"{best:.4f}")

    with bar:
        yield report


def _print_gates(results: list[GateResult]) -> None:
    if results:
        output.print_table(["gate", "result", "value", "threshold", "detail"],
                           [(r.gate, "pass" if r.passed else "FAIL", r.value, r.threshold,
                             r.detail) for r in results])
    else:
        output.stdout.print("no gates configured ([gates] in mlyard.toml)", markup=False)


def _print_move(move: registry.AliasMove) -> None:
    before = "-" if move.from_version is None else move.from_version
    output.stdout.print(f"{move.model}@{move.alias}: {before} -> {move.to_version}",
                        markup=False)


def _markdown_report(name: str, run_id: str, results: list[GateResult]) -> str:
    passed = all(r.passed for r in results)
    lines = [f"## mlyard check: {name} {'passed' if passed else 'failed'}", "",
             f"Run `{run_id}`.", "",
             "| gate | result | value | threshold | detail |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.gate} | {'✅ pass' if r.passed else '❌ fail'} | "
                     f"{output.fmt(r.value)} | {output.fmt(r.threshold)} | {r.detail} |")
    if not results:
        lines.append("| (no gates configured) | | | | |")
    return "\n".join(lines) + "\n"
