"""`mlyard tune`."""

from __future__ import annotations

import click

from mlyard.core.cli import output
from mlyard.core.cli.context import JSON_OPTION, Context
from mlyard.core.training import tune as tune_api


@click.command()
@click.option("--trials", "-n", type=int, help="Trials to run here (default: [tune] trials).")
@click.option("--timeout", type=float, help="Stop starting trials after this many seconds.")
@click.option("--resume", is_flag=True, help="Continue the project's latest study.")
@JSON_OPTION
@click.pass_obj
def tune(obj: Context, trials: int | None, timeout: float | None, resume: bool,
         as_json: bool) -> None:
    """Search LightGBM parameters with Optuna; the best model becomes the challenger.

    Every trial is a run (a child of this study's parent run). A second `mlyard tune`
    started while one runs joins its study; --resume continues an interrupted one.
    """
    def progress(trial: tune_api.FrozenTrial) -> None:
        if not as_json:
            value = "-" if trial.value is None else f"{trial.value:.5g}"
            output.stderr.print(f"trial {trial.number}: {trial.state.name.lower()} {value}",
                                markup=False)

    result = tune_api.tune(obj.ws, trials, timeout, resume, on_trial=progress)
    if as_json:
        output.print_json(result)
        return
    output.stdout.print(
        f"study {result.study}: {result.trials} trials complete ({result.ran_here} run here, "
        f"{result.pruned} pruned); best {tune_api.metric_name(obj.ws)} "
        f"{result.best_value:.5g} -> challenger {obj.ws.project}/{result.challenger} "
        f"(run {result.best_run[:8]}, parent {result.parent_run[:8]})", markup=False)
    output.print_table(["param", "value"], sorted(result.best_params.items()))
