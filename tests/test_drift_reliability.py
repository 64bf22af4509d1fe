"""Small samples are called unreliable and never counted; severity follows the documented
rules, target and unseen classes included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlyard.core.models.features import Feature, FeatureSpec
from mlyard.core.models.loading import load_model
from mlyard.core.models.sketch import sketch_categorical, sketch_frame, sketch_numeric
from mlyard.core.monitoring.drift_reports import DriftReport, compare
from mlyard.core.monitoring.drift_stats import DEFAULT_MIN_ROWS, column_drift
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard
from tests.test_serve import Server, post, trained  # noqa: F401  # the module's project

SPEC = FeatureSpec([Feature(f"x{i}", "float") for i in range(9)], "y", "int", None, {})


def frame(rows: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({f"x{i}": rng.normal(shift, 1, rows) for i in range(9)})


def report(rows: int, shift: float = 0.0, **extra: object) -> DriftReport:
    reference = {"features": sketch_frame(frame(20_000, 1), {n: "numeric" for n in SPEC.names})}
    columns = compare(reference, frame(rows, 2, shift), SPEC, {})
    return DriftReport("m", 1, "run", "served", "served, last 24h", rows, columns, 0.5,
                       **extra)  # type: ignore[arg-type]


def test_nine_near_identical_rows_are_not_judged_and_never_severe() -> None:
    small = report(9, shift=0.05)
    assert all(not c.reliable and not c.drifted for c in small.columns)
    assert all(c.psi_level == "unreliable" for c in small.columns)
    assert small.severity == "none" and not small.dataset_drift
    assert small.headline.startswith("too few rows (9) to judge any feature")


def test_a_large_shifted_sample_is_judged_and_severe() -> None:
    shifted = report(5_000, shift=0.5)
    assert all(c.reliable for c in shifted.columns)
    assert shifted.severity == "severe"
    assert shifted.headline == "9 of 9 features drifted"


def test_the_minimum_sample_is_per_method_and_configurable() -> None:
    sketch = sketch_numeric(pl.Series(np.random.default_rng(0).normal(0, 1, 10_000)))
    rows = pl.Series(np.random.default_rng(1).normal(2, 1, 100))
    assert column_drift("x", sketch, rows, "ks").reliable  # 100 >= 30
    assert not column_drift("x", sketch, rows, "wasserstein").reliable  # 100 < 500
    assert DEFAULT_MIN_ROWS["wasserstein"] > 100
    lowered = column_drift("x", sketch, rows, "wasserstein", min_rows={"wasserstein": 50})
    assert lowered.reliable and lowered.drifted


def test_unseen_classes_in_the_labels_make_the_report_severe() -> None:
    reference = sketch_categorical(pl.Series(["a"] * 600 + ["b"] * 400))
    labels = pl.Series(["a"] * 350 + ["b"] * 260 + ["c"] * 390)  # 39% a class never seen
    target = column_drift("y", reference, labels)
    target.unseen = {"c": 390}
    rated = report(5_000, target=target)
    assert rated.unseen_class_share == 0.39
    assert rated.severity == "severe"


def test_a_feature_level_the_model_never_saw_is_at_least_moderate() -> None:
    same = report(5_000)
    assert same.severity == "none"
    same.columns[0].unseen = {"new": 3}
    assert same.severity == "moderate"


def test_a_shifted_column_is_charted_where_it_is_not_in_the_last_bin() -> None:
    rng = np.random.default_rng(3)
    sketch = sketch_numeric(pl.Series(rng.normal(0, 1, 20_000)))
    chart = column_drift("x", sketch, pl.Series(rng.normal(6, 1, 2_000))).chart
    edges, current, reference = chart.edges, chart.current, chart.reference
    assert edges[0] <= -2 and edges[-1] >= 8  # both ranges
    assert current[-1] < 0.2 and max(current) < 0.5  # spread over its own bins
    assert sum(reference) == 1.0 or abs(sum(reference) - 1.0) < 1e-9
    middle = np.searchsorted(edges, 0.0) - 1
    assert reference[middle] == max(reference)  # the reference's mass stays around 0


def test_nine_served_rows_say_too_few_in_the_cli_and_the_html(
        trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.chdir(trained)
    spec = load_model(open_workspace(trained), "champion").spec
    rows = pl.read_csv(trained / "data" / "churn_2026_01.csv").select(spec.names).head(9)
    with Server(trained, "champion") as server:
        assert post(server, {"dataframe_records": rows.to_dicts()}).status_code == 200
    text = mlyard("drift", "--served", "1h", "--html", str(tmp_path / "r.html"))
    assert text.exit_code == 0, text.stderr
    assert "too few rows (9) to judge any feature: nothing counted" in text.stdout
    assert "-> severity none" in text.stdout and "unreliable" in text.stdout
    assert "DRIFT" not in text.stdout
    page = (tmp_path / "r.html").read_text()
    assert "too few rows (9)" in page and "unreliable: 9 rows" in page
