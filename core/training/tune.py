"""`mlyard tune`: an Optuna study over LightGBM parameters, every trial a tracked run.

The study lives in the catalog: Optuna's journal storage appends each operation to a
table through the same short, locked units of work as everything else, and every process
replays that log. So an interrupted study resumes where it stopped, and two `mlyard tune`
processes on one project share one study instead of colliding.

Each process that starts (or resumes) a study opens a parent run; every trial is a child
run tagged with it and with the study. Trials are pruned on their per-iteration
validation metric; the best trial's model becomes a model version with the alias
`challenger`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages.journal import BaseJournalBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from mlyard.core.config import ParamRange, ParamValue
from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.models import registry
from mlyard.core.processes import pid_alive
from mlyard.core.tracking import active_run, artifacts, run_queries
from mlyard.core.tracking.evaluation import DEFAULT_METRIC, higher_is_better
from mlyard.core.training import trainer
from mlyard.core.workspace import Workspace
from mlyard.storage import tune_store

log = logging.getLogger("mlyard.tune")

DEFAULT_SPACE = {
    "num_leaves": ParamRange(low=8, high=256, log=True),
    "learning_rate": ParamRange(low=0.01, high=0.3, log=True),
    "min_data_in_leaf": ParamRange(low=5, high=200, log=True),
    "feature_fraction": ParamRange(low=0.5, high=1.0),
    "bagging_fraction": ParamRange(low=0.5, high=1.0),
    "bagging_freq": ParamRange(low=0, high=7),
    "lambda_l1": ParamRange(low=1e-8, high=10.0, log=True),
    "lambda_l2": ParamRange(low=1e-8, high=10.0, log=True),
}


class CatalogJournal(BaseJournalBackend):
    """Optuna's journal kept in the catalog; the catalog lock makes it process safe."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        with self.ws.catalog.session() as con:
            return tune_store.read_from(con, log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with self.ws.catalog.session() as con:
            tune_store.append(con, logs)


@dataclass(frozen=True)
class TuneResult:
    study: str
    parent_run: str
    trials: int  # finished trials in the whole study, any process
    ran_here: int
    pruned: int
    best_value: float  # the best trial's score on the validation rows (`valid.<metric>`)
    best_params: dict[str, ParamValue]
    best_run: str
    challenger: int
    metric: str
    best_holdout: float | None  # the same model on the holdout rows (`holdout.<metric>`)


def storage_for(ws: Workspace) -> JournalStorage:
    return JournalStorage(CatalogJournal(ws))


def metric_name(ws: Workspace) -> str:
    return ws.config.train.metric or DEFAULT_METRIC[ws.config.train.task]


def tune(ws: Workspace, trials: int | None = None, timeout: float | None = None,
         resume: bool = False,
         on_trial: Callable[[FrozenTrial], None] | None = None) -> TuneResult:
    """Run trials of the project's study, then make its best model the challenger.

    Without `resume`, a study another live `mlyard tune` is running is joined, else a new
    one starts; with `resume`, the project's latest study continues.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_for(ws)
    name, joined = _choose_study(ws, storage, resume)
    metric = metric_name(ws)
    settings = ws.config.tune
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=10)
              if settings.prune else optuna.pruners.NopPruner())
    sampler = optuna.samplers.TPESampler(seed=None if joined else ws.config.train.seed)
    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, sampler=sampler,
        pruner=pruner, direction="maximize" if higher_is_better(metric) else "minimize")
    _fail_abandoned(study)
    space = settings.space or DEFAULT_SPACE
    count = trials if trials is not None else settings.trials
    with active_run.start_run(name=f"tune {name}", workspace=ws,
                            tags={"mlyard.kind": "tune", "mlyard.study": name},
                            params={"study": name, "metric": metric,
                                    "space": json.dumps(_describe(space))}) as parent:
        study.set_user_attr("parent_run", parent.run_id)
        ran: list[FrozenTrial] = []

        def objective(trial: optuna.Trial) -> float:
            return _run_trial(ws, trial, space, parent.run_id, name, settings.prune)

        def finished(_: optuna.Study, trial: FrozenTrial) -> None:
            ran.append(trial)
            if on_trial is not None:
                on_trial(trial)

        study.optimize(objective, n_trials=count, timeout=timeout or settings.timeout or None,
                       catch=(MlyardError,), callbacks=[finished], gc_after_trial=True)
        complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if not complete:
            raise UsageError(f"study {name}: no trial completed; see `mlyard runs list -f "
                             f"tags.mlyard.study={name}`")
        _log_history(parent, study, complete)
        best = study.best_trial
        best_run = str(best.user_attrs["run_id"])
        version = registry.register(ws, best_run)
        registry.set_alias(ws, "challenger", str(version.version),
                           reason=f"best of study {name} (trial {best.number})")
        parent.log_metrics({"best.value": float(best.value or 0.0),
                            "best.trial": float(best.number)})
        parent.set_tag("mlyard.best_run", best_run)
    holdout = run_queries.show_run(ws, best_run).run.metrics.get(f"holdout.{metric}")
    return TuneResult(name, parent.run_id, len(complete), len(ran),
                      sum(t.state == TrialState.PRUNED for t in ran), float(best.value or 0.0),
                      dict(best.params), best_run, version.version, metric, holdout)


def _choose_study(ws: Workspace, storage: JournalStorage, resume: bool) -> tuple[str, bool]:
    prefix = f"{ws.project}-tune-"
    studies = sorted((s.study_name for s in storage.get_all_studies()
                    if s.study_name.startswith(prefix)),
                   key=lambda n: int(n[len(prefix):]) if n[len(prefix):].isdigit() else 0)
    if resume:
        if not studies:
            raise UsageError(f"project {ws.project} has no study to resume; run `mlyard tune`")
        return studies[-1], False
    if studies and _running(ws, storage, studies[-1]):
        return studies[-1], True
    return f"{prefix}{len(studies) + 1}", False


def _running(ws: Workspace, storage: JournalStorage, name: str) -> bool:
    """Is another live process running this study now (its parent run is running, or one
    of its trials is)?"""
    study = optuna.load_study(study_name=name, storage=storage)
    parent = study.user_attrs.get("parent_run")
    if parent is not None:
        try:
            if run_queries.show_run(ws, str(parent)).run.status == "running":
                return True
        except MlyardError:
            pass
    return any(t.state == TrialState.RUNNING and _alive(t) for t in study.trials)


def _alive(trial: FrozenTrial) -> bool:
    return (trial.user_attrs.get("host") == socket.gethostname()
            and pid_alive(int(trial.user_attrs.get("pid", -1))))


def _fail_abandoned(study: optuna.Study) -> None:
    """Trials left running by a process that died are failed, so the study can go on."""
    for trial in study.trials:
        if trial.state == TrialState.RUNNING and "pid" in trial.user_attrs \
                and not _alive(trial):
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _suggest(trial: optuna.Trial, name: str, entry: ParamRange) -> Any:
    if entry.choices is not None:
        return trial.suggest_categorical(name, entry.choices)
    assert entry.low is not None and entry.high is not None
    if isinstance(entry.low, int) and isinstance(entry.high, int):
        return trial.suggest_int(name, entry.low, entry.high, log=entry.log)
    return trial.suggest_float(name, float(entry.low), float(entry.high), log=entry.log)


def _describe(space: dict[str, ParamRange]) -> dict[str, Any]:
    return {name: ({"choices": e.choices} if e.choices is not None
                   else {"low": e.low, "high": e.high, "log": e.log})
            for name, e in space.items()}


def _run_trial(ws: Workspace, trial: optuna.Trial, space: dict[str, ParamRange],
               parent: str, study: str, prune: bool) -> float:
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("host", socket.gethostname())
    params = {name: _suggest(trial, name, entry) for name, entry in space.items()}
    best: list[float] = []

    def report(iteration: int, total: int, best_valid: float | None) -> None:
        if best_valid is None:
            return
        best[:] = [best_valid]
        if prune:
            trial.report(best_valid, iteration)
            if trial.should_prune():
                raise active_run.RunStopped("pruned", f"pruned at iteration {iteration}: "
                                          "below the median of earlier trials")

    tags = {"mlyard.kind": "trial", "mlyard.parent": parent, "mlyard.study": study,
            "mlyard.trial": str(trial.number)}
    try:
        result = trainer.train(ws, trainer.plan(ws, overrides=params),
                                 name=f"{study} trial {trial.number}", on_iteration=report,
                                 tags=tags, register=False)
    except active_run.RunStopped as stopped:  # the run ended `pruned`; Optuna is told so
        raise optuna.TrialPruned(stopped.reason) from None
    trial.set_user_attr("run_id", result.run_id)
    return best[0] if best else float(result.metrics[metric_name(ws)])


def _log_history(parent: active_run.Run, study: optuna.Study,
                 complete: list[FrozenTrial]) -> None:
    """The optimisation history as the parent run's curves (trial value and best so far
    by trial number) and the parameters' importance as an artifact."""
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best: float | None = None
    for trial in sorted(complete, key=lambda t: t.number):
        value = float(trial.value or 0.0)
        best = value if best is None or (value > best if maximize else value < best) else best
        parent.log_metric("trial.value", value, step=trial.number)
        parent.log_metric("trial.best", best, step=trial.number)
    if len(complete) >= 2:
        try:
            importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as exc:  # e.g. a parameter that never varied
            log.warning("parameter importance: %s", exc)
            importance = {}
        parent.log_bytes(artifacts.PARAM_IMPORTANCE, json.dumps(
            {k: float(v) for k, v in importance.items()}, indent=2).encode())
