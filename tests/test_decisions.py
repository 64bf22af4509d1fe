"""The loop promotes what is better: batches arrive, `mlyard pipeline run promote` ingests,
retrains and promotes through the gates, and the champion gate judges the retrained model
and the champion on the same rows, which neither trained on.

Generated data with the shapes that fooled a gate comparing each model's own holdout: a
range the champion never saw, a class that appears late, a batch of pure noise, and a
deliberately weak retrain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlyard.core.models import registry
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard

CONFIG = """
[project]
name = "loop"

[data]
watch = ["data"]
target = "y"
id_column = "row_id"

[train]
task = "{task}"
num_boost_round = 200
early_stopping_rounds = 20
{params}
[gates]
max_regression_vs_champion = 0.01
"""


def project(tmp: Path, task: str, params: str = "") -> Path:
    (tmp / "data").mkdir()
    (tmp / "mlyard.toml").write_text(CONFIG.format(task=task, params=params))
    return tmp


def batch(folder: Path, name: str, frame: pl.DataFrame, start: int) -> None:
    frame.with_columns(pl.Series("row_id", [f"r{start + i}" for i in range(frame.height)])) \
        .write_csv(folder / "data" / f"{name}.csv")


def loop() -> dict:  # type: ignore[type-arg]
    """One pass of the pipeline through promotion, as cron or the daemon runs it."""
    result = mlyard("pipeline", "run", "promote", "--json")
    return {"exit": result.exit_code, **json.loads(result.stdout)}


def champion(folder: Path) -> int | None:
    found = registry.champion(open_workspace(folder))
    return None if found is None else found.version


def promote_outcome() -> str:
    jobs = json.loads(mlyard("jobs", "list", "--json").stdout)
    newest = next(j for j in jobs if j["step"] == "promote")
    listed = mlyard("jobs", "list")
    assert listed.exit_code == 0
    return str(newest["error"] or json.loads(newest["detail"])["outcome"])


def regression_rows(rng: np.random.Generator, rows: int, low: float, high: float
                    ) -> pl.DataFrame:
    x1, x2 = rng.uniform(low, high, rows), rng.normal(0, 1, rows)
    return pl.DataFrame({"x1": x1.round(3), "x2": x2.round(3),
                         "y": (40 * x1 + 30 * np.sin(x2) + rng.normal(0, 5, rows)).round(2)})


@pytest.mark.slow
def test_new_harder_rows_promote_the_model_that_learned_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, "regression")
    monkeypatch.chdir(folder)
    rng = np.random.default_rng(1)
    batch(folder, "m1", regression_rows(rng, 1500, 0, 50), 0)
    assert loop()["exit"] == 0 and champion(folder) == 1
    batch(folder, "m2", regression_rows(rng, 1500, 50, 100), 1500)  # prices never seen
    assert loop()["exit"] == 0
    assert champion(folder) == 2
    outcome = promote_outcome()
    assert "champion -> loop/2: holdout.rmse on the same" in outcome
    assert "rows, which neither trained on" in outcome and "better by" in outcome


def classes_rows(rng: np.random.Generator, rows: int, new_share: float) -> pl.DataFrame:
    x1, x2 = rng.uniform(0, 100, rows), rng.uniform(0, 100, rows)
    label = np.where(x1 < 25, "a", np.where(x1 < 50, "b", np.where(x1 < 75, "c", "d")))
    late = rng.random(rows) < new_share
    label = np.where(late, "e", label)
    x2 = np.where(late, x2 + 200, x2)  # the new class has a signature of its own
    return pl.DataFrame({"x1": x1.round(2), "x2": x2.round(2), "y": label})


@pytest.mark.slow
def test_a_class_that_grows_promotes_the_model_that_knows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, "multiclass")
    monkeypatch.chdir(folder)
    rng = np.random.default_rng(2)
    batch(folder, "m1", classes_rows(rng, 1200, 0.0), 0)
    assert loop()["exit"] == 0 and champion(folder) == 1
    batch(folder, "m2", classes_rows(rng, 1200, 0.3), 1200)
    assert loop()["exit"] == 0
    assert champion(folder) == 2
    assert "champion -> loop/2" in promote_outcome()
    assert "e" in (registry.show(open_workspace(folder), "champion").card.spec.classes or [])


def binary_rows(rng: np.random.Generator, rows: int, noise: bool) -> pl.DataFrame:
    x1, x2 = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    signal = x1 + 0.5 * x2 + rng.normal(0, 0.5, rows) > 0
    label = rng.random(rows) < 0.5 if noise else signal
    return pl.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "y": label.astype(int)})


@pytest.mark.slow
def test_a_batch_of_pure_noise_leaves_the_champion_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, "binary")
    monkeypatch.chdir(folder)
    rng = np.random.default_rng(3)
    batch(folder, "m1", binary_rows(rng, 2000, noise=False), 0)
    assert loop()["exit"] == 0 and champion(folder) == 1
    batch(folder, "m2", binary_rows(rng, 4000, noise=True), 2000)  # labels are coin flips
    ran = loop()
    assert ran["exit"] == 1 and ran["steps"]["promote"] == "failed"
    assert champion(folder) == 1
    outcome = promote_outcome()
    assert "loop/2 not promoted: gate max_regression_vs_champion failed" in outcome
    assert "vs champion v1" in outcome and "worse by" in outcome


@pytest.mark.slow
def test_a_deliberately_weak_retrain_is_refused(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, "binary")
    monkeypatch.chdir(folder)
    rng = np.random.default_rng(4)
    batch(folder, "m1", binary_rows(rng, 2000, noise=False), 0)
    assert loop()["exit"] == 0 and champion(folder) == 1
    text = (folder / "mlyard.toml").read_text()
    (folder / "mlyard.toml").write_text(text.replace(
        "early_stopping_rounds = 20\n",
        "early_stopping_rounds = 20\nparams = { learning_rate = 0.0001, num_leaves = 2 }\n"))
    batch(folder, "m2", binary_rows(rng, 2000, noise=False), 2000)
    ran = loop()
    assert ran["exit"] == 1 and champion(folder) == 1
    assert "gate max_regression_vs_champion failed" in promote_outcome()
