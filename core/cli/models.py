"""`mlyard models ...`, `check`, `export` and `import`: the registry and its gates."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlyard.core.automation import promotion
from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.core.models import bundle, registry
from mlyard.core.models.gates import GateResult
from mlyard.storage.models_store import AliasMove


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
        output.print_json([{"model": r.version.model, "version": r.version.version,
                            "run_id": r.version.run_id, "aliases": r.aliases,
                            "metrics": r.metrics, "created_at": r.version.created_at}
                           for r in rows])
        return
    primary = f"holdout.{registry.primary_metric(obj.ws)}"
    output.print_table(["version", "aliases", "run", "created", primary],
                       [(f"{r.version.model}/{r.version.version}", ", ".join(r.aliases),
                         r.version.run_id[:8], output.when(r.version.created_at, short=True),
                         r.metrics.get(primary)) for r in rows])


@models.command("show")
@click.argument("ref")
@JSON_OPTION
@click.pass_obj
def models_show(obj: Context, ref: str, as_json: bool) -> None:
    """One version: aliases, metrics and model card."""
    detail = registry.show(obj.ws, ref)
    if as_json:
        output.print_json({"version": output.jsonable(detail.version), "aliases": detail.aliases,
                           "metrics": detail.metrics, "card": detail.card,
                           "segments": output.jsonable(detail.segments)})
        return
    v = detail.version
    output.stdout.print(f"{v.model}/{v.version}  aliases: {', '.join(detail.aliases) or '-'}  "
                        f"run {v.run_id[:8]}  task {detail.card.task}", markup=False)
    output.print_table(["holdout metric", "value"], sorted(detail.metrics.items()))
    if detail.segments is not None:
        output.print_segments(detail.segments)
    gain = detail.card.feature_importance.get("gain", {})
    output.print_table(["feature", "type", "gain"],
                       [(f.name, f.type, gain.get(f.name)) for f in detail.card.spec.features])


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
        promoted = promotion.promote(obj.ws, ref, reason, force)
    except promotion.GatesFailed as failed:
        _print_gates(failed.results)
        raise
    _print_gates(promoted.results)
    _print_move(promoted.move)


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
    gates = promotion.check(obj.ws, ref)
    version, results, passed = gates.version, gates.results, gates.passed
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
@click.argument("ref")
@click.option("-o", "--output", "target", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The .tar.gz to write.")
@click.pass_obj
def export(obj: Context, ref: str, target: Path) -> None:
    """Write a run or model version, with its data and files, to one bundle."""
    exported = bundle.export_bundle(obj.ws, ref, target)
    output.stdout.print(f"{target}: run {exported.run_id[:8]}, {exported.objects} objects",
                        markup=False)


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


def _print_gates(results: list[GateResult]) -> None:
    if results:
        output.print_table(["gate", "result", "value", "threshold", "detail"],
                           [(r.gate, "pass" if r.passed else "FAIL", r.value, r.threshold,
                             r.detail) for r in results])
    else:
        output.stdout.print("no gates configured ([gates] in mlyard.toml)", markup=False)


def _print_move(move: AliasMove) -> None:
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
