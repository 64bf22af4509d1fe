"""Per-prediction explanations from a real server and `mlyard explain`: for binary,
multiclass and regression models, each row's contributions plus the base value are its
raw score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlyard.core.data import versions
from mlyard.core.models.features import encode
from mlyard.core.models.loading import LoadedModel, load_model
from mlyard.core.workspace import open_workspace
from tests.conftest import levels_project, mlyard, sample_project, train_json
from tests.test_serve import Server, post


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained binary (churn), regression (demand) and multiclass (levels) project."""
    root = tmp_path_factory.mktemp("explain")
    made = {"binary": sample_project(root, "churn"), "regression": sample_project(root, "demand"),
            "multiclass": levels_project(root)}
    with pytest.MonkeyPatch.context() as patch:
        for task, project in made.items():
            patch.chdir(project)
            if task == "multiclass":
                assert mlyard("init", "--from", ".", "--target", "level").exit_code == 0
            assert mlyard("ingest", "levels.csv" if task == "multiclass" else "data"
                          ).exit_code == 0
            train_json()
            assert mlyard("models", "promote", "latest").exit_code == 0
    return made


def _features(project: Path, model: LoadedModel, count: int) -> pl.DataFrame:
    return versions.load_versions(open_workspace(project)).head(count).select(model.spec.names)


def _raw_scores(model: LoadedModel, frame: pl.DataFrame) -> np.ndarray:
    """The model's raw scores, rows x outputs."""
    raw = np.asarray(model.booster.predict(encode(frame, model.spec), raw_score=True))
    return raw.reshape(len(frame), -1)


def _summed(explanation: dict, base: float | dict, classes: list[str] | None) -> list[float]:  # type: ignore[type-arg]
    """A row's contributions plus the base value, per output."""
    if classes is None:
        assert isinstance(base, float)
        return [sum(explanation.values()) + base]
    assert isinstance(base, dict)
    return [sum(explanation[label].values()) + base[label] for label in classes]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("count", [1, 25])
def test_served_contributions_add_up_to_each_rows_raw_score(
        projects: dict[str, Path], task: str, count: int) -> None:
    project = projects[task]
    model = load_model(open_workspace(project), "champion")
    frame = _features(project, model, count)
    records = frame.to_dicts()
    with Server(project, "champion") as running:
        plain = post(running, {"dataframe_records": records})
        answer = post(running, {"dataframe_records": records, "params": {"explain": True}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # Asking for explanations does not change the predictions.
    assert np.allclose(body["predictions"], plain.json()["predictions"])
    assert len(body["explanations"]) == count
    classes = model.spec.classes if task == "multiclass" else None
    for explanation in body["explanations"]:
        features = explanation if classes is None else explanation[classes[0]]
        assert list(features) == model.spec.names
    summed = [_summed(e, body["base_value"], classes) for e in body["explanations"]]
    assert np.allclose(summed, _raw_scores(model, frame), atol=1e-9)
    # The features carry part of each score: it is not all base value.
    first = body["explanations"][0]
    assert any(v != 0 for v in (first if classes is None else first[classes[0]]).values())


@pytest.mark.parametrize(("params", "expected"), [
    ({"explain": "yes"}, "params.explain must be true or false, got 'yes'"),
    ({"explian": True}, "unknown request param 'explian'"),
    (["explain"], "params must be a JSON object"),
])
def test_bad_request_params_get_a_400_naming_them(projects: dict[str, Path], params: object,
                                                   expected: str) -> None:
    project = projects["binary"]
    model = load_model(open_workspace(project), "champion")
    records = _features(project, model, 2).to_dicts()
    with Server(project, "champion") as running:
        answer = post(running, {"dataframe_records": records, "params": params})
    assert answer.status_code == 400
    assert expected in answer.json()["message"]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_explain_writes_contributions_that_add_up_per_row(
        projects: dict[str, Path], task: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = projects[task]
    monkeypatch.chdir(project)
    model = load_model(open_workspace(project), "champion")
    frame = versions.load_versions(open_workspace(project)).head(300)
    source = tmp_path / "rows.parquet"
    frame.write_parquet(source)
    result = mlyard("explain", "champion", str(source), "-o", str(tmp_path / "out.parquet"))
    assert result.exit_code == 0, result.stderr
    assert "300 rows explained" in result.stdout
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.height == 300
    suffixes = [""] if task != "multiclass" else [f"_{c}" for c in model.spec.classes or []]
    summed = np.column_stack([
        out.select([f"contribution{s}_{name}" for name in model.spec.names])
        .sum_horizontal().to_numpy() + out.get_column(f"base_value{s}").to_numpy()
        for s in suffixes])
    assert np.allclose(summed, _raw_scores(model, frame.select(model.spec.names)), atol=1e-9)
    # The input columns and the predictions are there too, as `mlyard predict` writes them.
    assert set(frame.columns) <= set(out.columns)
    assert any(c.startswith("prediction") for c in out.columns)
