"""The tracking API: what a training script logs is what `mlyard runs` shows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from mlyard.core.errors import MlyardError, TrackingError
from mlyard.core.tracking import active_run, run_queries
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, python_process


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mlyard.toml").write_text('[project]\nname = "demo"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_params_metrics_tags_and_artifacts_land(project: Path) -> None:
    artifact = project / "notes.txt"
    artifact.write_text("hello")
    with active_run.start_run(name="baseline", params={"lr": 0.1}) as run:
        active_run.log_param("num_leaves", 31)
        active_run.set_tag("team", "growth")
        for value in (0.9, 0.7, 0.5):
            active_run.log_metric("loss", value)
        active_run.log_metrics({"auc": 0.8, "acc": 0.75}, step=10)
        digest = active_run.log_artifact(artifact)
    detail = run_queries.show_run(open_workspace(), run.run_id[:8])
    assert detail.run.status == "finished" and detail.run.name == "baseline"
    assert detail.run.params == {"lr": "0.1", "num_leaves": "31"}
    assert detail.run.tags["team"] == "growth"
    assert detail.run.metrics == {"loss": 0.5, "auc": 0.8, "acc": 0.75}
    assert detail.metric_points == {"acc": 1, "auc": 1, "loss": 3}
    assert run_queries.metric_history(open_workspace(), run.run_id, "loss")[-1][:2] == (2, 0.5)
    assert [(a.name, a.blake3) for a in detail.artifacts] == [("notes.txt", digest)]
    assert open_workspace().objects.read_bytes(digest) == b"hello"


def test_exception_marks_the_run_failed_and_keeps_its_metrics(project: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        with active_run.start_run() as run:
            active_run.log_metric("loss", 1.0)
            _ = 1 / 0
    detail = run_queries.show_run(open_workspace(), run.run_id)
    assert detail.run.status == "failed"
    assert "ZeroDivisionError" in (detail.run.error or "")
    assert detail.run.metrics == {"loss": 1.0}


def test_nan_and_inf_are_stored_and_printed_as_strict_json(project: Path) -> None:
    with active_run.start_run() as run:
        active_run.log_metrics({"diverged": math.nan, "big": math.inf, "small": -math.inf})
    metrics = run_queries.show_run(open_workspace(), run.run_id).run.metrics
    assert math.isnan(metrics["diverged"]) and metrics["big"] == math.inf
    shown = json.loads(mlyard("runs", "show", run.run_id, "--json").stdout)
    assert shown["metrics"] == {"diverged": "NaN", "big": "Infinity", "small": "-Infinity"}


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: active_run.log_metric("auc", "0.8"), "metric 'auc': expected a number, got str"),
        (lambda: active_run.log_metric("auc", None), "expected a number, got NoneType"),
        (lambda: active_run.log_metric("", 1.0), "expected a non-empty string"),
        (lambda: active_run.log_metric("auc", 1.0, step=1.5), "step must be an integer"),
        (lambda: active_run.log_metrics({"auc": [1]}), "metric 'auc': expected a number"),
        (lambda: active_run.log_param("lr", 0.2), "param 'lr' of run"),
    ],
)
def test_bad_values_are_refused_with_the_key(project: Path, call: object,
                                             expected: str) -> None:
    with active_run.start_run(params={"lr": 0.1}):
        with pytest.raises(MlyardError) as err:
            call()  # type: ignore[operator]
        assert expected in str(err.value)


def test_logging_without_a_run_is_a_clear_error(project: Path) -> None:
    with pytest.raises(TrackingError, match="no active run; call start_run"):
        active_run.log_metric("x", 1.0)


def test_numpy_numbers_are_accepted(project: Path) -> None:
    with active_run.start_run() as run:
        active_run.log_metric("auc", np.float32(0.5), step=np.int64(3))
    assert run_queries.show_run(open_workspace(), run.run_id).run.metrics == {"auc": 0.5}


def test_lightgbm_callback_logs_every_iteration(project: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = (x[:, 0] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    train = lgb.Dataset(x[:300], y[:300])
    valid = lgb.Dataset(x[300:], y[300:], reference=train)
    with active_run.start_run() as run:
        lgb.train({"objective": "binary", "metric": ["auc", "binary_logloss"], "verbosity": -1,
                   "num_threads": 1}, train, num_boost_round=25, valid_sets=[valid],
                  valid_names=["valid"], callbacks=[active_run.lightgbm_callback()])
    detail = run_queries.show_run(open_workspace(), run.run_id)
    assert detail.metric_points == {"valid.auc": 25, "valid.binary_logloss": 25}
    steps = [s for s, _, _ in run_queries.metric_history(open_workspace(), run.run_id, "valid.auc")]
    assert steps == list(range(25))


def test_lightgbm_callback_logs_the_iteration_that_triggers_early_stopping(
    project: Path,
) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 5))
    y = (x[:, 0] + rng.normal(scale=1.5, size=600) > 0).astype(float)
    train = lgb.Dataset(x[:400], y[:400])
    valid = lgb.Dataset(x[400:], y[400:], reference=train)
    # Within one `order`, LightGBM's callback order varies from process to process; five
    # runs make a wrong order all but certain to show.
    for seed in range(5):
        with active_run.start_run() as run:
            booster = lgb.train(
                {"objective": "binary", "metric": "auc", "verbosity": -1, "seed": seed,
                 "num_threads": 1, "learning_rate": 0.3}, train, num_boost_round=500,
                valid_sets=[valid], valid_names=["valid"],
                callbacks=[active_run.lightgbm_callback(), lgb.early_stopping(5, verbose=False)])
        points = run_queries.show_run(open_workspace(), run.run_id).metric_points["valid.auc"]
        # Training ran until 5 rounds without improvement after the best one.
        assert points == booster.best_iteration + 5


def test_runs_list_filters_and_sorts_by_params_and_metrics(project: Path) -> None:
    for leaves, auc in ((15, 0.71), (31, 0.83), (63, 0.79), (127, 0.65)):
        with active_run.start_run(name=f"leaves-{leaves}", params={"num_leaves": leaves}):
            active_run.log_metric("auc", auc)
    listed = json.loads(mlyard("runs", "list", "--json", "-f", "metrics.auc > 0.7",
                               "-s", "-metrics.auc").stdout)
    assert [r["name"] for r in listed] == ["leaves-31", "leaves-63", "leaves-15"]
    by_param = json.loads(mlyard("runs", "list", "--json", "-f", "params.num_leaves >= 31",
                                 "-s", "params.num_leaves").stdout)
    assert [r["params"]["num_leaves"] for r in by_param] == ["31", "63", "127"]
    top = json.loads(mlyard("runs", "list", "--json", "-s", "metrics.auc desc", "-n", "1").stdout)
    assert top[0]["name"] == "leaves-31"
    bad = mlyard("runs", "list", "-f", "metrics.auc ~ 3")
    assert bad.exit_code == 2 and "expected FIELD OP VALUE" in bad.stderr
    unknown = mlyard("runs", "list", "-s", "colour")
    assert unknown.exit_code == 2 and "unknown field 'colour'" in unknown.stderr


def test_pages_of_runs_add_up_to_the_whole_list_each_run_with_its_own_values(
        project: Path) -> None:
    for i in range(7):
        with active_run.start_run(name=f"run-{i}", params={"which": f"run-{i}"},
                                tags={"which": f"run-{i}"}):
            active_run.log_metric("score", (i * 3) % 7)
    ws = open_workspace()
    sorts = (run_queries.parse_sort("-metrics.score"), run_queries.parse_sort("params.which"))
    for sort in (None, *sorts):
        whole = run_queries.runs_page(ws, sort=sort, limit=100).runs
        pages = [r for offset in range(0, 8, 3)
                 for r in run_queries.runs_page(ws, sort=sort, limit=3, offset=offset).runs]
        assert [r.run_id for r in pages] == [r.run_id for r in whole]
        assert len(whole) == 7
        for run in pages:
            assert run.params["which"] == run.tags["which"] == run.name
            assert run.metrics["score"] == (int(run.name.split("-")[1]) * 3) % 7
    scores = [r.metrics["score"] for r in run_queries.runs_page(ws, sort=run_queries.parse_sort(
        "-metrics.score"), limit=3, offset=3).runs]
    assert scores == [3, 2, 1]


def test_run_reference_by_prefix_and_name(project: Path) -> None:
    with active_run.start_run(name="named"):
        pass
    with active_run.start_run(name="named") as newer:
        pass
    with active_run.start_run(name="other") as last:
        pass
    assert json.loads(mlyard("runs", "show", "named", "--json").stdout)["run_id"] == newer.run_id
    assert json.loads(mlyard("runs", "show", "latest", "--json").stdout)["run_id"] == last.run_id
    by_prefix = mlyard("runs", "show", newer.run_id[:6], "--json")
    assert json.loads(by_prefix.stdout)["run_id"] == newer.run_id
    missing = mlyard("runs", "show", "zzzz")
    assert missing.exit_code == 1 and "no run matches 'zzzz'" in missing.stderr


@pytest.mark.parametrize(("ending", "status"), [("pass", "finished"), ("1 / 0", "failed")])
def test_a_run_left_open_is_ended_when_the_script_exits(project: Path, ending: str,
                                                        status: str) -> None:
    script = ("import mlyard\n"
              "run = mlyard.start_run(name='open')\n"
              "mlyard.log_metric('loss', 0.25)\n"
              f"{ending}\n")
    child = python_process(script, project)
    child.communicate(timeout=60)
    detail = run_queries.show_run(open_workspace(), "open")
    assert detail.run.status == status
    assert detail.run.metrics == {"loss": 0.25}


def test_captured_output_becomes_the_run_log(project: Path, capsys: pytest.CaptureFixture[str],
                                             ) -> None:
    import sys

    before = sys.stdout
    with active_run.start_run(capture_output=True) as run:
        print("epoch 1 done")
        print("warning: slow", file=sys.stderr)
        run.log_lines("two\nlines", stream="notes")
        sys.stdout.write("no newline at the end")
    assert sys.stdout is before
    assert "epoch 1 done" in capsys.readouterr().out
    result = json.loads(mlyard("runs", "log", run.run_id, "--json").stdout)
    assert [(r["stream"], r["line"]) for r in result] == [
        ("stdout", "epoch 1 done"), ("stderr", "warning: slow"), ("notes", "two"),
        ("notes", "lines"), ("stdout", "no newline at the end")]
    assert [r["n"] for r in result] == list(range(5))


def test_tags_can_be_set_after_a_run_ended(project: Path) -> None:
    with active_run.start_run(name="tagged") as run:
        pass
    assert mlyard("runs", "tag", run.run_id, "team=growth", "mlyard.note=ship it").exit_code == 0
    tags = run_queries.show_run(open_workspace(), run.run_id).run.tags
    assert tags["team"] == "growth" and tags["mlyard.note"] == "ship it"
    bad = mlyard("runs", "tag", run.run_id, "oops")
    assert bad.exit_code == 2 and "expected KEY=VALUE" in bad.stderr
