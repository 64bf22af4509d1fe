"""`mlyard train`: models from each sample dataset, recorded so they can be reproduced."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from mlyard.core.data import versions
from mlyard.core.models.features import encode
from mlyard.core.models.loading import load_model
from mlyard.core.tracking import run_queries
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, sample_project, train_json


@pytest.mark.parametrize(("name", "metrics"), [
    ("churn", {"auc", "log_loss", "accuracy", "f1", "precision", "recall"}),
    ("demand", {"rmse", "mae", "r2"}),
])
def test_each_sample_trains_and_the_model_loads_in_plain_lightgbm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, metrics: set[str]
) -> None:
    monkeypatch.chdir(sample_project(tmp_path, name, batches=6 if name == "demand" else 2))
    assert mlyard("ingest", "data").exit_code == 0
    trained = train_json()
    assert set(trained["metrics"]) == metrics
    ws = open_workspace()
    detail = run_queries.show_run(ws, trained["run_id"])
    assert detail.run.status == "finished"
    assert {f"holdout.{m}" for m in metrics} <= set(detail.run.metrics)
    iterations = detail.metric_points["valid." + ("auc" if name == "churn" else "rmse")]
    assert iterations > trained["best_iteration"] > 0
    assert detail.metric_points[f"train.{'auc' if name == 'churn' else 'rmse'}"] == iterations
    model = load_model(ws, str(trained["model_version"]))
    frame = versions.load_versions(ws)
    plain = lgb.Booster(model_file=str(ws.objects.path_for(model.version.model_hash)))
    ours = model.predict(frame)
    assert np.array_equal(plain.predict(encode(frame, model.spec)), ours)
    assert len(np.unique(ours)) > 10


def test_multiclass_target_with_text_labels(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    labels = np.array(["low", "mid", "high"])[np.digitize(x[:, 0] + x[:, 1], [-0.7, 0.7])]
    pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "level": labels}) \
        .write_csv(tmp_path / "levels.csv")
    monkeypatch.chdir(tmp_path)
    assert mlyard("init", "--from", ".", "--target", "level").exit_code == 0
    assert mlyard("ingest", "levels.csv").exit_code == 0
    trained = train_json()
    assert trained["metrics"]["accuracy"] > 0.8
    model = load_model(open_workspace(), "latest")
    assert model.spec.classes == ["high", "low", "mid"]
    assert model.predict(pl.read_csv(tmp_path / "levels.csv")).shape == (3000, 3)


def test_the_run_records_what_reproduces_it(churn: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=churn, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q",
                    "--allow-empty", "-m", "start"], cwd=churn, check=True)
    (churn / "train.py").write_text("# work in progress\n")
    subprocess.run(["git", "add", "train.py"], cwd=churn, check=True)
    trained = train_json("--param", "num_leaves=15", "--seed", "7")
    ws = open_workspace()
    artifacts = {a.name: a.blake3 for a in run_queries.show_run(ws, trained["run_id"]).artifacts}
    assert set(artifacts) == {"model.txt", "model_card.json", "reproduce.json",
                              "feature_importance.json", "reference.json"}
    record = json.loads(ws.objects.read_bytes(artifacts["reproduce.json"]))
    assert [d["ref"] for d in record["datasets"]] == ["churn:v1", "churn:v2"]
    assert record["seed"] == 7 and record["params"]["num_leaves"] == 15
    assert record["params"]["seed"] == 7 and record["overrides"] == {"num_leaves": 15}
    assert record["config"]["data"]["target"] == "churned"
    assert set(record["environment"]["packages"]) >= {"lightgbm", "polars", "duckdb", "numpy"}
    assert record["environment"]["python"] and record["environment"]["platform"]
    assert record["git"]["dirty"] is True and len(record["git"]["commit"]) == 40
    assert record["split"]["method"] == "time"
    frame = versions.load_versions(ws)
    holdout_from = record["split"]["holdout_from"]
    assert (frame.get_column("snapshot_date").cast(pl.String) >= holdout_from).sum() == \
        record["split"]["rows"]["holdout"]
    card = json.loads(ws.objects.read_bytes(artifacts["model_card.json"]))
    assert card["format"] == "lightgbm-text" and card["spec"]["target"] == "churned"
    assert "customer_id" in card["spec"]["skipped"] and "snapshot_date" in card["spec"]["skipped"]
    contract = next(f for f in card["spec"]["features"] if f["name"] == "contract")
    assert contract["categories"] == ["month-to-month", "one-year", "two-year"]
    importance = json.loads(ws.objects.read_bytes(artifacts["feature_importance.json"]))
    assert set(importance) == {"gain", "split", "contribution"}
    assert importance["gain"]["tenure_months"] > 0
    # Mean |contribution| on the holdout: every feature, the one trees split on most moves
    # scores the most.
    contribution = importance["contribution"]
    assert set(contribution) == set(importance["gain"])
    top = max(importance["gain"], key=importance["gain"].get)
    assert contribution[top] > 0 and all(v >= 0 for v in contribution.values())


def test_reproduce_gives_identical_model_bytes(churn: Path) -> None:
    trained = train_json("--param", "learning_rate=0.1")
    result = mlyard("reproduce", trained["run_id"], "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["identical"] and verdict["model_identical"]
    ws = open_workspace()
    first = {a.name: a.blake3 for a in run_queries.show_run(ws, trained["run_id"]).artifacts}
    again = {a.name: a.blake3 for a in run_queries.show_run(ws, verdict["new_run"]).artifacts}
    assert first["model.txt"] == again["model.txt"]
    assert len(json.loads(mlyard("models", "list", "--json").stdout)) == 1


def test_bad_training_input_is_a_usage_error(churn: Path) -> None:
    bad_param = mlyard("train", "--param", "num_leaves")
    assert bad_param.exit_code == 2 and "expected KEY=VALUE" in bad_param.stderr
    bad_version = mlyard("train", "--dataset", "v9")
    assert bad_version.exit_code == 1 and "has no version v9" in bad_version.stderr
    refused = mlyard("train", "--param", "num_leaves=-4")
    assert refused.exit_code == 2 and "LightGBM refused" in refused.stderr


def test_compare_marks_differing_params_and_best_metrics(churn: Path) -> None:
    small = train_json("--param", "num_leaves=7", "--name", "small")
    large = train_json("--param", "num_leaves=63", "--name", "large")
    result = mlyard("runs", "compare", small["run_id"], large["run_id"], "--json",
                    "--curves", "valid.auc")
    assert result.exit_code == 0, result.stderr
    compared = json.loads(result.stdout)
    assert compared["differing"] == ["num_leaves"]
    assert compared["params"]["num_leaves"] == ["7", "63"]
    auc = compared["metrics"]["holdout.auc"]
    assert compared["best"]["holdout.auc"] == int(np.argmax(auc))
    assert compared["best"]["holdout.log_loss"] == int(np.argmin(compared["metrics"]
                                                                 ["holdout.log_loss"]))
    assert compared["datasets"] == [["churn:v1", "churn:v2"]] * 2
    curves = compared["curves"]
    assert [p[0] for p in curves[small["run_id"]]] == list(range(len(curves[small["run_id"]])))
    lonely = mlyard("runs", "compare", small["run_id"])
    assert lonely.exit_code == 2 and "at least two runs" in lonely.stderr
