"""`mlyard init`, `ingest` and `data ...`: from a folder of files to dataset versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlyard.core import doctor
from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.core.data import quarantine, versions
from mlyard.core.data.ingest import ingest_files
from mlyard.core.data.recheck import recheck_versions
from mlyard.core.data.scaffold import data_files, init_project
from mlyard.core.errors import IngestRefused
from mlyard.core.humanize import counted
from mlyard.storage.datasets_store import VersionRecord


@click.command()
@click.option("--from", "from_dir", type=click.Path(path_type=Path),
              help="Folder of CSV/Parquet files to infer the contract from.")
@click.option("--target", help="The column to predict (guessed from common names if omitted).")
@click.option("--name", help="Project name (default: this folder's name).")
@click.option("--force", is_flag=True, help="Overwrite an existing mlyard.toml.")
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
def init(from_dir: Path | None, target: str | None, name: str | None, force: bool,
         dry_run: bool) -> None:
    """Write a working mlyard.toml, inferred from the data in --from."""
    result = init_project(Path.cwd(), from_dir, target, name, force, dry_run)
    if result.inferred is not None:
        output.print_table(["column", "type", "role", "missing", "range or levels"],
                           [[c.name, c.type, c.role, f"{c.nulls:.1%}", c.detail]
                            for c in result.inferred.summary], title="inferred contract")
        if result.inferred.findings:
            output.stdout.print(output.bold("\nworth a look before the first ingest:"))
            for finding in result.inferred.findings:
                output.stdout.print(f"  - {finding}")
        if result.segment_candidates:
            output.stdout.print("\nsegment candidates (columns of few levels to break model "
                                "figures down by with [monitor] segments; none chosen): "
                                + ", ".join(f"{c.name} ({c.levels} levels)"
                                            for c in result.segment_candidates),
                                markup=False)
    if dry_run:
        output.stdout.print(output.bold(f"\n--dry-run: {result.path} not written; it would "
                                        "hold:\n"))
        output.stdout.print(result.text)
    else:
        output.stdout.print(f"\nwrote {result.path}")


@click.command()
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
    for path, result in ingest_files(obj.ws, files):
        if isinstance(result, IngestRefused):
            refused += 1
            results.append({"path": str(path), "status": "refused", "reason": result.msg})
            if not as_json:
                output.stderr.print(f"refused: {result.msg}", markup=False)
            continue
        status = "ingested" if result.created else \
            "rechecked" if result.rechecked else "unchanged"
        results.append({"path": str(path), "status": status, "version": result.version.ref,
                        "rows": result.version.rows, "warnings": result.warnings})
        if not as_json:
            verb = "->" if result.created else "already"
            again = " (re-checked against the changed contract)" if result.rechecked else ""
            output.stdout.print(f"{path}: {verb} {result.version.ref} "
                                f"({result.version.rows:,} rows){again}", markup=False)
            for warning in result.warnings if status != "unchanged" else []:
                output.stderr.print(f"  warning: {warning}", markup=False)
    if as_json:
        output.print_json(results)
    if refused:
        raise SystemExit(1)


@click.group()
def data() -> None:
    """Dataset versions: list, show, diff, recheck; files in quarantine."""


@data.command("list")
@JSON_OPTION
@click.pass_obj
def data_list(obj: Context, as_json: bool) -> None:
    """Every dataset version, oldest first; a replaced one says which version replaced it
    (the same source bytes checked again: training reads only the newer)."""
    listed = versions.list_versions(obj.ws)
    replaced = versions.superseded(listed)
    if as_json:
        output.print_json([{**_version_summary(v), "superseded_by": replaced.get(v.ref)}
                           for v in listed])
        return
    output.print_table(
        ["version", "rows", "columns", "source", "ingested", "warnings", "replaced by"],
        [(v.ref, f"{v.rows:,}", len(v.schema), Path(v.source_path).name,
          output.when(v.created_at), len(v.warnings), replaced.get(v.ref, ""))
         for v in listed], drop_first=["columns", "ingested"],
    )


@data.command("show")
@click.argument("version")
@JSON_OPTION
@click.pass_obj
def data_show(obj: Context, version: str, as_json: bool) -> None:
    """One version: source, hashes, warnings and the profile of every column."""
    record = versions.get_version(obj.ws, version)
    profile = record.profile
    if as_json:
        output.print_json({**_version_summary(record), "profile": profile})
        return
    output.stdout.print(output.bold(record.ref),
                        f" {record.rows:,} rows  from {record.source_path}")
    output.stdout.print(f"source blake3 {record.source_hash}\nsnapshot {record.snapshot_hash}")
    for warning in record.warnings:
        output.stdout.print(f"warning: {warning}", markup=False)
    output.print_table(
        ["column", "type", "missing", "distinct", "min", "mean", "max", "top"],
        [(name, p.type, f"{p.null_rate:.1%}", p.distinct, p.min, p.mean, p.max,
          ", ".join(f"{level.value}:{level.rows}" for level in (p.top or [])[:3]))
         for name, p in profile.items()],
    )
    _print_new_levels(record)


@data.command("diff")
@click.argument("old")
@click.argument("new")
@JSON_OPTION
@click.pass_obj
def data_diff(obj: Context, old: str, new: str, as_json: bool) -> None:
    """Schema and profile differences between two versions."""
    diff = versions.diff_versions(obj.ws, old, new)
    changes = diff.changes
    if as_json:
        output.print_json({"old": diff.old.ref, "new": diff.new.ref,
                           **output.jsonable(changes)})
        return
    output.stdout.print(output.bold(f"{diff.old.ref} -> {diff.new.ref}"), " rows "
                        f"{changes.rows.before:,} -> {changes.rows.after:,}")
    for label, names in (("added", changes.added), ("removed", changes.removed)):
        if names:
            output.stdout.print(f"columns {label}: {', '.join(names)}", markup=False)
    for name, retyped in changes.retyped.items():
        output.stdout.print(f"column {name}: type {retyped.before} -> {retyped.after}",
                            markup=False)
    output.print_table(["column", "missing", "change"],
                       [(name, f"{c.null_rate.before or 0:.1%} -> {c.null_rate.after or 0:.1%}",
                         c.describe()) for name, c in changes.columns.items()])
    _print_new_levels(diff.new)


@data.command("recheck")
@JSON_OPTION
@click.pass_obj
def data_recheck(obj: Context, as_json: bool) -> None:
    """Check stored versions against the contract in mlyard.toml now; exit 1 if one fails.

    A version whose source file is unchanged is ingested again (a new version when it
    cleans differently); one whose source is gone is checked from its stored snapshot.
    """
    results = recheck_versions(obj.ws)
    if as_json:
        output.print_json(results)
    else:
        output.print_table(["version", "outcome", "detail"],
                           [(r.version, r.outcome, r.detail) for r in results])
    if any(r.outcome == "refused" for r in results):
        raise SystemExit(1)


@data.command("quarantine")
@click.option("--clear", is_flag=True,
              help="Remove the resolved entries' copies (their sources have been ingested "
                   "since).")
@JSON_OPTION
@click.pass_obj
def data_quarantine(obj: Context, clear: bool, as_json: bool) -> None:
    """Refused files, newest first: source, when, why, and whether it is resolved."""
    entries = quarantine.clear_resolved(obj.ws) if clear else \
        quarantine.list_quarantined(obj.ws)
    if as_json:
        output.print_json([{"source": e.source, "copy": str(e.path), "refused_at":
                            e.refused_at, "reason": e.reason, "resolved_by": e.resolved_by,
                            "cleared": clear} for e in entries])
        return
    if clear:
        cleared = counted(len(entries), "resolved entry", "resolved entries")
        output.stdout.print(f"cleared {cleared}")
        return
    if not entries:
        output.stdout.print("no files in quarantine")
        return
    output.print_table(["source", "status", "refused", "reason"],
                       [(_near(e.source, obj.ws.project_dir), f"resolved by {e.resolved_by}"
                         if e.resolved_by else "open", e.refused_at,
                         e.reason.removeprefix(f"{e.source}: ")) for e in entries],
                       drop_first=["refused"])


def _near(path: str, folder: Path) -> str:
    """A path inside the project as the user would type it from there."""
    try:
        return str(Path(path).relative_to(folder))
    except ValueError:
        return path


def _print_new_levels(record: VersionRecord) -> None:
    for name, entry in record.profile.items():
        levels = entry.new_levels
        if levels:
            shown = ", ".join(f"{level!r} ({count:,})" for level, count in
                              list(levels.items())[:8])
            output.stdout.print(f"column {name!r}: new levels not in the contract: {shown}",
                                markup=False)


def _version_summary(version: VersionRecord) -> dict[str, Any]:
    return {"version": version.ref, "dataset": version.dataset, "seq": version.seq,
            "rows": version.rows, "source": version.source_path,
            "source_blake3": version.source_hash, "snapshot_blake3": version.snapshot_hash,
            "schema": version.schema, "warnings": version.warnings,
            "created_at": version.created_at}


@click.command("doctor")
@click.option("--repair", is_flag=True,
              help="Remove files killed processes left behind; move unreadable spool "
                   "segments aside.")
@JSON_OPTION
@click.pass_obj
def doctor_cmd(obj: Context, repair: bool, as_json: bool) -> None:
    """Check the workspace (catalog, objects, spool, leftovers); exit 1 on a problem."""
    report = doctor.check(obj.unopened_ws(), repair=repair)
    if as_json:
        output.print_json({"healthy": report.healthy, "findings": report.findings,
                           "repaired": report.repaired})
    else:
        output.print_table(["check", "result", "detail"],
                           [(f.check, "ok" if f.ok else "PROBLEM", f.detail)
                            for f in report.findings])
        for line in report.repaired:
            output.stdout.print(line)
    if not report.healthy:
        raise SystemExit(1)
