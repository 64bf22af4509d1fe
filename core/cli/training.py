"""`mlyard train`, `tune` and `reproduce`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from optuna.trial import FrozenTrial
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mlyard.core import compute
from mlyard.core.automation.jobs import training_slot
from mlyard.core.cli import output
from mlyard.core.cli.context import CLUSTER_OPTION, JSON_OPTION, QUIET_OPTION, Context
from mlyard.core.config import Device
from mlyard.core.errors import UsageError
from mlyard.core.models import registry
from mlyard.core.training import reproduce, trainer, tune
from mlyard.core.training.cluster import train_on_cluster


@click.command()
@click.option("--dataset", "datasets", multiple=True,
              help="A dataset version to train on (repeat; default: all, or [train] window).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A LightGBM parameter on top of the config (repeat).")
@click.option("--seed", type=int, help="Seed for the split and LightGBM (default: config).")
@click.option("--name", help="Run name.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]),
              help="Train on the CPU or LightGBM's OpenCL GPU learner (default: [train] device).")
@CLUSTER_OPTION
@QUIET_OPTION
@JSON_OPTION
@click.pass_obj
def train(obj: Context, datasets: tuple[str, ...], params: tuple[str, ...], seed: int | None,
          name: str | None, device: Device | None, cluster: str | None, quiet: bool,
          as_json: bool) -> None:
    """Train LightGBM on dataset versions; log every iteration; store the model."""
    training = trainer.plan(obj.ws, list(datasets), _parse_params(params), seed,
                              device=device)
    for warning in training.warnings:
        output.stderr.print(f"warning: {warning}", markup=False)
    # One training per project at a time: a person waits for a scheduled one to finish.
    with training_slot(obj.ws, wait=True, who="mlyard train",
                       on_wait=lambda message: output.stderr.print(message, markup=False)):
        if compute.wants_dask(obj.ws, cluster):
            with compute.dask_client(obj.ws, cluster) as client:
                result = train_on_cluster(obj.ws, training, client, name=name)
        else:
            with _progress(quiet or as_json) as report:
                result = trainer.train(obj.ws, training, name=name, on_iteration=report)
    if as_json:
        output.print_json({"run_id": result.run_id, "best_iteration": result.best_iteration,
                           "metrics": result.metrics, "model_version": result.model_version,
                           "model_blake3": result.model_hash, "device": result.device})
        return
    version = f"  model {obj.ws.project}/{result.model_version}" if result.model_version else ""
    output.stdout.print(f"run {result.run_id}  best iteration {result.best_iteration}{version}"
                        f"  on {result.device}", markup=False)
    output.print_table(["holdout metric", "value"], sorted(result.metrics.items()))


@click.command("tune")
@click.option("--trials", "-n", type=int, help="Trials to run here (default: [tune] trials).")
@click.option("--timeout", type=float, help="Stop starting trials after this many seconds.")
@click.option("--resume", is_flag=True, help="Continue the project's latest study.")
@JSON_OPTION
@click.pass_obj
def tune_cmd(obj: Context, trials: int | None, timeout: float | None, resume: bool,
         as_json: bool) -> None:
    """Search LightGBM parameters with Optuna; the best model becomes the challenger.

    Every trial is a run (a child of this study's parent run). A second `mlyard tune`
    started while one runs joins its study; --resume continues an interrupted one.
    """
    def progress(trial: FrozenTrial) -> None:
        if not as_json:
            value = "" if trial.value is None else \
                f" valid.{tune.metric_name(obj.ws)} {trial.value:.5g}"
            output.stderr.print(f"trial {trial.number}: {trial.state.name.lower()}{value}",
                                markup=False)

    result = tune.tune(obj.ws, trials, timeout, resume, on_trial=progress)
    if as_json:
        output.print_json(result)
        return
    output.stdout.print(
        f"study {result.study}: {result.trials} trials complete ({result.ran_here} run here, "
        f"{result.pruned} pruned); best valid.{result.metric} {result.best_value:.5g}"
        + ("" if result.best_holdout is None else
           f" (holdout.{result.metric} {result.best_holdout:.5g})")
        + f" -> challenger {obj.ws.project}/{result.challenger} "
        f"(run {result.best_run[:8]}, parent {result.parent_run[:8]})", markup=False)
    output.print_table(["param", "value"], sorted(result.best_params.items()))


@click.command("reproduce")
@click.argument("run")
@QUIET_OPTION
@JSON_OPTION
@click.pass_obj
def reproduce_cmd(obj: Context, run: str, quiet: bool, as_json: bool) -> None:
    """Train again from RUN's record; exit 1 unless model and metrics are identical.

    RUN is a run (`latest`, an id prefix, a name) or a model version (`churn/3`). A run
    trained on a GPU is not expected to be byte-identical: it counts as reproduced when
    every holdout metric is within 0.1% of the original's."""
    with _progress(quiet or as_json) as report:
        result = reproduce.reproduce(obj.ws, registry.run_id_for(obj.ws, run),
                                         on_iteration=report)
    if as_json:
        output.print_json({"original_run": result.original_run, "new_run": result.new_run,
                           "model_identical": result.model_identical,
                           "identical": result.identical, "reproduced": result.reproduced,
                           "tolerance": result.tolerance,
                           "metric_differences": result.metric_differences})
    else:
        if result.tolerance is None:
            verdict = "identical" if result.identical else "DIFFERENT"
        else:
            verdict = (f"trained on a GPU, so not expected byte-identical; metrics within "
                       f"{result.tolerance:.1%}: {'yes' if result.reproduced else 'NO'}")
        output.stdout.print(f"run {result.new_run[:8]} reproduces {result.original_run[:8]}: "
                            f"model {'identical' if result.model_identical else 'different'}, "
                            f"metrics {'identical' if not result.metric_differences else 'differ'}"
                            f" -> {verdict}", markup=False)
        for key, (before, after) in result.metric_differences.items():
            output.stdout.print(f"  {key}: {before} -> {after}", markup=False)
    if not result.reproduced:
        sys.exit(1)


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
def _progress(quiet: bool) -> Iterator[trainer.ProgressCallback | None]:
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
