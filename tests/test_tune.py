"""`mlyard tune`: Optuna with its study in the catalog, trials as child runs, pruning,
resuming after a crash, and two processes sharing one study."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from mlyard.core.config import ParamRange
from mlyard.core.errors import ConfigError
from mlyard.core.models import registry
from mlyard.core.tracking import run_queries
from mlyard.core.training import tune
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, mlyard_process

FAST = ("[train]\nnum_boost_round = 40\nearly_stopping_rounds = 1000\n")
SPACE = ("\n[tune]\ntrials = 3\n\n[tune.space]\n"
         "num_leaves = { low = 4, high = 32, log = true }\n"
         "learning_rate = { low = 0.05, high = 0.3 }\n"
         'boosting = { choices = ["gbdt", "goss"] }\n')


@pytest.fixture
def project(churn: Path) -> Path:
    config = churn / "mlyard.toml"
    config.write_text(config.read_text().replace("[train]\n", FAST, 1) + SPACE)
    return churn


def study_trials(project: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = tune.storage_for(open_workspace(project))
    return optuna.load_study(study_name=name, storage=storage).trials


def test_trials_are_child_runs_and_the_best_becomes_the_challenger(project: Path) -> None:
    result = mlyard("tune", "--json")
    assert result.exit_code == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["study"] == "churn-tune-1" and outcome["trials"] == 3
    assert outcome["metric"] == "auc" and 0.5 < outcome["best_holdout"] < 1
    ws = open_workspace()
    children = run_queries.list_runs(ws, [f"tags.mlyard.parent = {outcome['parent_run']}"])
    assert len(children) == 3 and all(r.status == "finished" for r in children)
    assert {r.params["boosting"] for r in children} <= {"gbdt", "goss"}
    challenger = registry.resolve(ws, "challenger")
    assert challenger.run_id == outcome["best_run"]
    assert len(registry.list_versions(ws)) == 1  # trials are not registered, the best is
    parent = run_queries.show_run(ws, outcome["parent_run"])
    assert parent.metric_points["trial.value"] == 3 and parent.metric_points["trial.best"] == 3
    assert "param_importance.json" in {a.name for a in parent.artifacts}
    page = [r.run_id for r in run_queries.runs_page(ws).runs]  # as the TUI's table lists them
    at = page.index(outcome["parent_run"])
    assert set(page[at + 1:at + 4]) == {r.run_id for r in children}
    best_so_far = [v for _, v, _ in run_queries.metric_history(ws, outcome["parent_run"],
                                                        "trial.best")]
    assert best_so_far == sorted(best_so_far) and best_so_far[-1] == outcome["best_value"]


def test_an_interrupted_study_resumes_where_it_stopped(project: Path) -> None:
    config = project / "mlyard.toml"
    slow = config.read_text().replace("num_boost_round = 40\nearly_stopping_rounds = 1000",
                                      "num_boost_round = 1000000\nearly_stopping_rounds = "
                                      "1000000\nparams = { learning_rate = 0.0001 }")
    config.write_text(slow.replace("trials = 3", "trials = 2").replace(
        "learning_rate = { low = 0.05, high = 0.3 }\n", ""))
    child = subprocess.Popen([sys.executable, "-m", "mlyard", "tune"], cwd=project,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            trials = study_trials(project, "churn-tune-1")
        except KeyError:
            trials = []
        if any(t.state == optuna.trial.TrialState.RUNNING and "pid" in t.user_attrs
               for t in trials):
            break
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait()
    config.write_text(config.read_text().replace(
        "num_boost_round = 1000000\nearly_stopping_rounds = 1000000\n"
        "params = { learning_rate = 0.0001 }", "num_boost_round = 40\n"))
    resumed = mlyard_process("tune", "--resume", "--trials", "2", "--json", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["study"] == "churn-tune-1"
    states = [t.state.name for t in study_trials(project, "churn-tune-1")]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"]


def test_two_tune_processes_share_one_study(project: Path) -> None:
    command = [sys.executable, "-m", "mlyard", "tune", "--trials", "3", "--json"]
    first = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:  # start the second once the first has its study open
        try:
            if study_trials(project, "churn-tune-1"):
                break
        except KeyError:
            pass
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    second = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    outputs = [process.communicate(timeout=180) for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    studies = {json.loads(out)["study"] for out, _ in outputs}
    assert studies == {"churn-tune-1"}
    trials = study_trials(project, "churn-tune-1")
    assert sorted(t.number for t in trials) == list(range(6))
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(t.state in finished for t in trials)  # the median pruner may stop one


class _PruneFromStep(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return (trial.last_step or 0) >= 10


def test_a_pruned_trial_stops_early_and_says_so(project: Path) -> None:
    ws = open_workspace()
    study = optuna.create_study(direction="maximize", pruner=_PruneFromStep())
    space = {"num_leaves": ParamRange(low=4, high=8)}
    study.optimize(lambda trial: tune._run_trial(ws, trial, space, "parent", "s", True),
                   n_trials=1)
    [trial] = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    [run] = run_queries.list_runs(ws, ["tags.mlyard.study = s"])
    assert run.status == "pruned" and "pruned at iteration 10" in (run.error or "")
    assert run_queries.show_run(ws, run.run_id).metric_points["valid.auc"] == 10


def test_a_bad_search_space_names_the_key(project: Path) -> None:
    config = project / "mlyard.toml"
    config.write_text(config.read_text().replace("low = 4, high = 32", "low = 32, high = 4"))
    with pytest.raises(ConfigError, match="tune.space.num_leaves: expected `low` below"):
        open_workspace()
    config.write_text(config.read_text().replace("low = 32, high = 4, log = true",
                                                 "low = 0, high = 4, log = true"))
    with pytest.raises(ConfigError, match="log scale needs `low` above 0"):
        open_workspace()


def test_resume_without_a_study_is_a_clear_error(project: Path) -> None:
    result = mlyard("tune", "--resume")
    assert result.exit_code == 2 and "no study to resume" in result.stderr


@pytest.mark.asyncio
async def test_the_parent_run_shows_history_and_parameter_importance(project: Path) -> None:
    from textual.widgets import OptionList

    from mlyard.tui.app import MlyardApp
    from mlyard.tui.screens.run_detail import RunDetailScreen
    from mlyard.tui.widgets.curves import BarsPlot

    outcome = json.loads(mlyard("tune", "--json").stdout)
    app = MlyardApp(open_workspace(project))
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(RunDetailScreen(outcome["parent_run"]))
        for _ in range(100):
            await pilot.pause(0.05)
            bars = app.screen.query_one("#run-importance", BarsPlot)
            if bars.shown:
                break
        assert set(bars.shown) == {"num_leaves", "learning_rate", "boosting"}
        curves = app.screen.query_one("#run-metric-list", OptionList)
        listed = {str(curves.get_option_at_index(i).prompt)
                  for i in range(curves.option_count)}
        assert {"trial.value", "trial.best"} <= listed
