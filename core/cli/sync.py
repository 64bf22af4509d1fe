"""`mlyard sync` and the agent it runs on the other machine over ssh."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, QUIET_OPTION, Context
from mlyard.core.errors import UsageError, WorkspaceNotFound
from mlyard.core.sync import syncer
from mlyard.core.sync.peer import LocalPeer
from mlyard.core.sync.wire import serve
from mlyard.core.workspace import CONFIG_NAME, open_workspace


@click.command()
@click.argument("remote")
@click.option("--pull/--push", default=True,
              help="Bring REMOTE's work here (default), or send this project's there.")
@click.option("--runs", "kinds", flag_value="runs", multiple=True, help="Runs.")
@click.option("--models", "kinds", flag_value="models", multiple=True,
              help="Model versions (with their runs).")
@click.option("--datasets", "kinds", flag_value="datasets", multiple=True,
              help="Dataset versions. Default: runs, models and datasets.")
@click.option("--aliases", is_flag=True,
              help="Also move aliases to match, each only if the receiving side's gates pass.")
@click.option("--dry-run", is_flag=True, help="Say what would move; move nothing.")
@click.option("--remote-mlyard", default="mlyard", show_default=True, metavar="COMMAND",
              help="The mlyard command on the other machine (ssh:// only).")
@QUIET_OPTION
@JSON_OPTION
@click.pass_obj
def sync(obj: Context, remote: str, pull: bool, kinds: tuple[str, ...], aliases: bool,
         dry_run: bool, remote_mlyard: str, quiet: bool, as_json: bool) -> None:
    """Exchange runs, models and dataset versions with REMOTE by content hash.

    REMOTE is another project folder or ssh://[user@]host[:port]/path/to/project (the
    system's ssh; options such as a key go in $MLYARD_SSH). A second sync moves nothing.
    Aliases never move unless --aliases is given.
    """
    try:
        ws = obj.ws
    except WorkspaceNotFound:
        raise UsageError(f"no {CONFIG_NAME} here or above to sync into: copy the project's "
                         f"first with `{syncer.copy_config_command(remote)}`, then sync "
                         "again") from None
    peer = syncer.connect(ws, remote, remote_mlyard)
    try:
        with _progress(quiet or as_json) as report:
            result = syncer.sync(ws, peer, push=not pull, kinds=kinds or syncer.KINDS,
                                 aliases=aliases, dry_run=dry_run, on_progress=report)
    finally:
        peer.close()
    if as_json:
        output.print_json(result)
    else:
        _print(result)
    if any(not move.moved for move in result.aliases):
        sys.exit(1)


def _print(result: syncer.SyncResult) -> None:
    verb = "would move" if result.dry_run else "moved"
    output.stdout.print(
        f"{result.source} -> {result.destination}: {verb} {len(result.new_runs)} new runs, "
        f"{len(result.updated_runs)} updated, {len(result.model_versions)} model versions, "
        f"{len(result.dataset_versions)} dataset versions; {result.objects} objects "
        f"({result.bytes:,} bytes)", markup=False)
    for theirs, ours in result.model_versions:
        output.stdout.print(f"  model {theirs} -> {ours or '(numbered when it arrives)'}",
                            markup=False)
    for move in result.aliases:
        state = "moved" if move.moved else "not moved: " + "; ".join(move.why)
        output.stdout.print(f"  alias {move.alias} -> {move.version or '(no version)'}"
                            f": {state}", markup=False)


@click.command("sync-agent", hidden=True)
@click.argument("path")
def sync_agent(path: str) -> None:
    """Answer `mlyard sync` calls on standard input and output (run by ssh)."""
    ws = open_workspace(Path(os.path.expanduser(path)), stranger=True)
    # Nothing but messages may reach standard output: anything printed goes to stderr.
    wire_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    with wire_out:
        serve(LocalPeer(ws, path), sys.stdin.buffer, wire_out)


@contextmanager
def _progress(quiet: bool) -> Iterator[syncer.ProgressCallback | None]:
    """A transfer bar on stderr, only on a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bar = Progress(TextColumn("sync"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   console=output.stderr, transient=True)
    task = bar.add_task("sync", total=None)

    def report(sent: int, total: int) -> None:
        bar.update(task, completed=sent, total=total)

    with bar:
        yield report
