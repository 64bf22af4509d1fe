"""The `mlyard` command: a thin face over the core functions.

Each command calls one core function and turns its errors into one line on stderr:
exit 1 for a failure, 2 for a usage error. Commands live in one module per area and
load on first use (see `LazyGroup`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mlyard.core.cli.context import Context, LazyGroup

_CLI = "mlyard.core.cli"
# name -> (where the command is, its one-line summary for `mlyard --help`; None: hidden)
COMMANDS: dict[str, tuple[str, str | None]] = {
    "init": (f"{_CLI}.data:init",
             "Write a working mlyard.toml, inferred from the data in --from."),
    "ingest": (f"{_CLI}.data:ingest",
               "Validate files against the contract and store each as a dataset version."),
    "doctor": (f"{_CLI}.data:doctor_cmd",
               "Check the workspace (catalog, objects, spool, leftovers); exit 1 on a problem."),
    "data": (f"{_CLI}.data:data",
             "Dataset versions: list, show, diff, recheck; files in quarantine."),
    "runs": (f"{_CLI}.runs:runs_group",
             "Tracked runs: list, show, tag, log, compare."),
    "train": (f"{_CLI}.training:train",
              "Train LightGBM on dataset versions; log every iteration; store the model."),
    "tune": (f"{_CLI}.training:tune_cmd",
             "Search LightGBM parameters with Optuna; the best model becomes the challenger."),
    "reproduce": (f"{_CLI}.training:reproduce_cmd",
                  "Train again from RUN's record; exit 1 unless model and metrics are identical."),
    "models": (f"{_CLI}.models:models",
               "Model versions and aliases: list, show, register, alias, promote, rollback."),
    "check": (f"{_CLI}.models:check",
              "Run every promotion gate for a version (default: newest); exit 1 if any fails."),
    "export": (f"{_CLI}.models:export",
               "Write a run or model version, with its data and files, to one bundle."),
    "import": (f"{_CLI}.models:import_",
               "Add a bundle made by `mlyard export` to this workspace."),
    "serve": (f"{_CLI}.serving:serve",
              "Serve MODEL (a version or an alias, e.g. churn@champion) over MLflow's protocol."),
    "predict": (f"{_CLI}.serving:predict",
                "Score a CSV or Parquet file with MODEL into a Parquet file, in batches."),
    "explain": (f"{_CLI}.serving:explain",
                "Score a file with MODEL and write each row's feature contributions beside it."),
    "drift": (f"{_CLI}.monitoring:drift",
              "Per-feature drift of new data or served traffic against a model's training data."),
    "alerts": (f"{_CLI}.monitoring:alerts",
               "Alerts, newest first, and whether each reached its receivers ([alerts])."),
    "feedback": (f"{_CLI}.performance:feedback",
                 "Join late labels to served predictions; the model's real metrics per window."),
    "performance": (f"{_CLI}.performance:performance_cmd",
                    "Live metrics per window, from every `mlyard feedback` so far."),
    "shadow": (f"{_CLI}.monitoring:shadow_group",
               "How a shadow model (`mlyard serve --shadow`) compares with the champion."),
    "sync": (f"{_CLI}.sync:sync",
             "Exchange runs, models and dataset versions with REMOTE by content hash."),
    "sync-agent": (f"{_CLI}.sync:sync_agent", None),
    "watch": (f"{_CLI}.automation:watch",
              "Watch the `[data] watch` folders in the foreground (no schedules); Ctrl-C stops."),
    "daemon": (f"{_CLI}.automation:daemon_cmd",
               "Run watchers and schedules until SIGTERM or Ctrl-C (for systemd, tmux or nohup)."),
    "status": (f"{_CLI}.automation:status",
               "Is the daemon running; what fires next; how the last jobs ended."),
    "schedule": (f"{_CLI}.automation:schedule_group",
                 "Pipelines on a cron expression or an interval (run by `mlyard daemon`)."),
    "pipeline": (f"{_CLI}.automation:pipeline_group",
                 "The automated pipeline: ingest the watched folders, retrain, gates, promote."),
    "jobs": (f"{_CLI}.automation:jobs_group",
             "The history of automated steps: who triggered them and how they ended."),
    "tui": (f"{_CLI}.ui:tui",
            "Open the terminal UI on this project (or, with --web, serve it to a browser)."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, invoke_without_command=True,
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
            tui = cli.get_command(ctx, "tui")
            assert tui is not None
            ctx.invoke(tui)
        else:
            click.echo(ctx.get_help())


main = cli
