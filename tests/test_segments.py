"""Figures per segment: each group's metrics with its rows, fairness figures equal to
Fairlearn's on the same rows, and training that finds the group a model fails."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, roc_auc_score, root_mean_squared_error

from mlyard.core.config import load_config, logged_keys
from mlyard.core.models.loading import load_model
from mlyard.core.serving.prediction_log import PredictionLog
from mlyard.core.tracking.evaluation import evaluate
from mlyard.core.tracking.segments import MIN_ROWS, segment_figures
from mlyard.core.workspace import open_workspace
from mlyard.storage import prediction_files
from tests.conftest import examples, mlyard
from tests.test_serve import Server

LEVELS = ["north", "south", "east", "west", "centre"]


@st.composite
def labelled(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Truth, scores and two group columns; each group has both classes and enough rows,
    and one group's scores are noise (the model fails it)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups = draw(st.integers(2, 5))
    sizes = [draw(st.integers(MIN_ROWS + 2, 150)) for _ in range(groups)]
    region = [LEVELS[g] for g, size in enumerate(sizes) for _ in range(size)]
    n = len(region)
    truth = rng.integers(0, 2, n)
    for start in np.cumsum([0, *sizes[:-1]]):  # both classes in every group
        truth[start], truth[start + 1] = 0, 1
    scores = np.clip(truth * 0.6 + rng.normal(0.2, 0.2, n), 0, 1)
    noisy = np.array(region) == LEVELS[draw(st.integers(0, groups - 1))]
    scores[noisy] = rng.uniform(0, 1, int(noisy.sum()))
    plan = list(rng.choice(["basic", "pro"], n))
    return truth, scores, region, plan


def by_group(found: object, segment: str) -> dict[str, dict[str, float]]:
    return {g.group: g.metrics for g in found.groups if g.segment == segment}  # type: ignore[attr-defined]


@settings(max_examples=examples(40), deadline=None)
@given(data=labelled())
def test_binary_figures_equal_fairlearns(data: tuple[np.ndarray, np.ndarray, list[str],
                                                     list[str]]) -> None:
    truth, scores, region, plan = data
    labels = (scores >= 0.5).astype(int)
    found = segment_figures("binary", truth, scores, pl.DataFrame({"region": region}),
                            [("region",)], {"region"}, "auc")
    frame = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                                 "true_positive_rate": true_positive_rate,
                                 "false_positive_rate": false_positive_rate},
                        y_true=truth, y_pred=labels, sensitive_features=np.array(region))
    auc = MetricFrame(metrics=roc_auc_score, y_true=truth, y_pred=scores,
                      sensitive_features=np.array(region))
    ours = by_group(found, "region")
    assert set(ours) == set(frame.by_group.index)
    for group, metrics in ours.items():
        for name in ("accuracy", "selection_rate", "true_positive_rate",
                     "false_positive_rate"):
            assert metrics[name] == pytest.approx(frame.by_group.loc[group, name], abs=1e-9)
        assert metrics["auc"] == pytest.approx(auc.by_group.loc[group], abs=1e-9)
    [fair] = found.fairness
    assert fair.rows == len(truth) and fair.groups == len(ours)
    assert fair.metric_gap == pytest.approx(auc.difference(), abs=1e-9)
    sensitive = np.array(region)
    for ours_value, theirs in (
            (fair.demographic_parity_difference,
             demographic_parity_difference(truth, labels, sensitive_features=sensitive)),
            (fair.demographic_parity_ratio,
             demographic_parity_ratio(truth, labels, sensitive_features=sensitive)),
            (fair.equalized_odds_difference,
             equalized_odds_difference(truth, labels, sensitive_features=sensitive)),
            (fair.equalized_odds_ratio,
             equalized_odds_ratio(truth, labels, sensitive_features=sensitive))):
        assert ours_value == pytest.approx(theirs, abs=1e-9)
    # Worst first: the first group has the lowest AUC of all.
    assert found.groups[0].metrics["auc"] == min(m["auc"] for m in ours.values())


@settings(max_examples=examples(20), deadline=None)
@given(data=labelled())
def test_columns_taken_together_and_regression_gaps_equal_fairlearns(
        data: tuple[np.ndarray, np.ndarray, list[str], list[str]]) -> None:
    truth, scores, region, plan = data
    value = truth * 10.0 + scores
    rows = pl.DataFrame({"region": region, "plan": plan})
    found = segment_figures("regression", value, value + (scores - 0.5) * np.array(
        [3.0 if r == region[0] else 1.0 for r in region]), rows, [("region", "plan")],
        {"plan"}, "rmse")
    predicted = value + (scores - 0.5) * np.array([3.0 if r == region[0] else 1.0
                                                   for r in region])
    frame = MetricFrame(metrics=root_mean_squared_error, y_true=value, y_pred=predicted,
                        sensitive_features=rows.to_pandas())
    measured = {f"{r}, {p}": v for (r, p), v in frame.by_group.items()
                if ((rows["region"] == r) & (rows["plan"] == p)).sum() >= MIN_ROWS}
    ours = {g.group: g.metrics["rmse"] for g in found.groups if not g.too_few}
    assert ours.keys() == measured.keys()
    for group, rmse in ours.items():
        assert rmse == pytest.approx(measured[group], abs=1e-9)
    if len(measured) > 1:
        [fair] = found.fairness
        assert fair.metric_gap == pytest.approx(max(measured.values()) - min(measured.values()),
                                                abs=1e-9)
        assert fair.demographic_parity_difference is None  # a regression has no selection
    if ours:  # worst first for an error: the largest RMSE leads
        assert found.groups[0].metrics["rmse"] == max(ours.values())


def test_a_small_group_says_so_and_one_level_is_a_note() -> None:
    truth = np.array([0, 1] * 40)
    scores = np.linspace(0, 1, 80)
    rows = pl.DataFrame({"region": ["north"] * 75 + ["south"] * 5, "plan": ["pro"] * 80})
    found = segment_figures("binary", truth, scores, rows, [("region",), ("plan",)], set(),
                            "auc")
    south = next(g for g in found.groups if g.group == "south")
    assert south.too_few and south.rows == 5 and south.metrics == {}
    assert found.groups[-1] is south  # figures first, the groups too small to judge last
    assert found.notes == ["segment 'plan' has one level ('pro') in these 80 rows: no "
                           "groups to compare"]


def churn_like(project: Path, rows: int = 3000) -> None:
    """A binary dataset whose label follows x except in region 'south', where it is a
    coin toss: the model is good overall and bad there."""
    rng = np.random.default_rng(5)
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.2, 0.2, 0.2])
    x = rng.normal(size=rows)
    label = (x + rng.normal(0, 0.3, rows) > 0).astype(int)
    south = region == "south"
    label[south] = rng.integers(0, 2, int(south.sum()))
    (project / "data").mkdir(parents=True)
    pl.DataFrame({"row_id": np.arange(rows) - 500, "region": region, "x": x,
                  "noise": rng.normal(size=rows), "label": label}).write_csv(
        project / "data" / "batch.csv")
    (project / "mlyard.toml").write_text("""
[project]
name = "fair"
[data]
target = "label"
id_column = "row_id"
[data.columns.row_id]
type = "int"
[data.columns.region]
type = "category"
categories = ["north", "south", "east", "west"]
role = "segment"
sensitive = true
[data.columns.x]
type = "float"
[data.columns.noise]
type = "float"
[data.columns.label]
type = "int"
[train]
task = "binary"
num_boost_round = 60
[monitor]
segments = ["region"]
""")


def trained_fair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int = 3000,
                 promote: bool = False) -> Path:
    """`churn_like` ingested and trained (and promoted), as cwd."""
    project = tmp_path / "fair"
    churn_like(project, rows=rows)
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    assert mlyard("train", "-q").exit_code == 0
    if promote:
        assert mlyard("models", "promote", "latest").exit_code == 0
    return project


def serve_logged(project: Path, rows: pl.DataFrame, sent: list[str],
                 keyed: bool = False, first: int = 0) -> None:
    """The latest model's scores for `rows` as the server logs them, one request a row
    with the columns `sent`, and the rows' labels in labels.csv (no server: fast).
    `keyed`: as the log is written now, with the id and segments in their own columns;
    otherwise as mlyard wrote it before it kept them (only in the rows' JSON). `first`:
    the first request's second (they are a second apart)."""
    ws = open_workspace(project)
    scores = load_model(ws, "latest").predict(rows)
    requests = [(f"r{i}", 1_780_000_000.0 + first + i, "fair", 1, 1,
                 json.dumps([{name: str(r[name]) if name == "row_id" else r[name]
                              for name in sent}]),
                 json.dumps([float(scores[i])]),
                 tuple([str(r[name]) if name in sent else None]
                       for name in logged_keys(ws.config)))
                for i, r in enumerate(rows.iter_rows(named=True))]
    if keyed:
        log = PredictionLog(ws.catalog, keys=logged_keys(ws.config))
        log.add(requests)
        log.flush()
    else:
        prediction_files.write(ws.catalog.predictions_dir, pa.Table.from_pylist(
            [dict(zip(prediction_files.PREDICTION_SCHEMA.names, request[:7], strict=True))
             for request in requests], schema=prediction_files.PREDICTION_SCHEMA))
    rows.select("row_id", "label").write_csv(project / "labels.csv")


def test_training_finds_the_group_the_model_fails(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    trained_fair(tmp_path, monkeypatch)
    shown = json.loads(mlyard("models", "show", "latest", "--json").stdout)
    features = [f["name"] for f in shown["card"]["spec"]["features"]]
    assert "region" not in features and "x" in features  # a segment, never a feature
    groups = shown["segments"]["groups"]
    assert groups[0]["group"] == "south" and groups[0]["metrics"]["auc"] < 0.65
    assert all(g["metrics"]["auc"] > 0.85 for g in groups[1:])
    run = json.loads(mlyard("runs", "show", "latest", "--json").stdout)
    assert sum(g["rows"] for g in groups) == run["metrics"]["rows.holdout"]  # every row once
    [fair] = shown["segments"]["fairness"]
    assert fair["segment"] == "region" and fair["metric_gap"] > 0.2
    text = mlyard("runs", "show", "latest").stdout
    assert "by segment, worst first" in text and "fairness" in text
    lines = [line for line in text.splitlines() if "region" in line and "south" in line]
    assert lines, text


@pytest.mark.parametrize("segments, message", [
    ('["row_id"]', "'row_id' is the id column"),
    ('["label"]', "'label' is the target"),
    ('["regoin"]', "no column 'regoin' in [data.columns]"),
    ('[["region", "region"]]', "must name one or more different columns"),
])
def test_a_segment_that_cannot_group_rows_is_one_line(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       segments: str, message: str) -> None:
    project = tmp_path / "fair"
    churn_like(project, rows=200)
    config = project / "mlyard.toml"
    config.write_text(config.read_text().replace('segments = ["region"]',
                                                 f"segments = {segments}"))
    monkeypatch.chdir(project)
    result = mlyard("train", "-q")
    assert result.exit_code != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_fairness_ratios_are_undefined_not_invented_when_nobody_is_selected() -> None:
    truth = np.array([0, 1] * 40)
    found = segment_figures("binary", truth, np.zeros(80),
                            pl.DataFrame({"g": ["a"] * 40 + ["b"] * 40}), [("g",)], {"g"},
                            "accuracy")
    [fair] = found.fairness
    assert fair.demographic_parity_difference == 0.0
    assert math.isnan(fair.demographic_parity_ratio or 0.0)


def test_init_offers_segment_candidates_without_choosing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    project = tmp_path / "fair"
    churn_like(project, rows=300)
    (project / "mlyard.toml").unlink()
    monkeypatch.chdir(project)
    result = mlyard("init", "--from", "data", "--target", "label", "--dry-run")
    assert result.exit_code == 0
    assert "segment candidates" in result.stdout and "region (4 levels)" in result.stdout
    assert "row_id" not in result.stdout.split("segment candidates")[1].splitlines()[0]
    assert mlyard("init", "--from", "data", "--target", "label").exit_code == 0
    written = load_config(project / "mlyard.toml")
    assert written.monitor.segments == []  # offered in a comment, never chosen
    assert "# segments = " in (project / "mlyard.toml").read_text()


def with_gates(project: Path, gates: str) -> None:
    config = project / "mlyard.toml"
    config.write_text(config.read_text().split("[gates]")[0] + "[gates]\n" + gates + "\n")


def test_segment_gates_refuse_the_model_that_fails_a_group_and_name_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = trained_fair(tmp_path, monkeypatch)
    with_gates(project, "min_auc = 0.7")  # overall, the model is fine
    assert mlyard("check").exit_code == 0
    with_gates(project, "min_segment_auc = 0.7")
    refused = mlyard("check", "--report", str(tmp_path / "gates.md"))
    assert refused.exit_code == 1
    markdown = (tmp_path / "gates.md").read_text()  # what CI posts: the group named
    assert "min_segment_auc" in markdown and "region 'south' auc" in markdown
    with_gates(project, "max_segment_gap = 0.2\nmax_demographic_parity_difference = 0.01")
    refused = mlyard("check", "--json")
    assert refused.exit_code == 1
    results = {r["gate"]: r for r in json.loads(refused.stdout)["gates"]}
    assert not results["max_segment_gap"]["passed"]
    assert "region 'south'" in results["max_segment_gap"]["detail"]
    assert not results["max_demographic_parity_difference"]["passed"]
    assert "region" in results["max_demographic_parity_difference"]["detail"]
    # Promotion is the same gates: refused, nothing moves; lenient limits let it through.
    assert mlyard("models", "promote", "latest").exit_code != 0
    with_gates(project, "min_segment_auc = 0.4\nmax_segment_gap = 0.9")
    assert mlyard("models", "promote", "latest").exit_code == 0
    # A second version is judged beside the champion on the same rows.
    assert mlyard("train", "-q").exit_code == 0
    with_gates(project, "min_segment_auc = 0.7")
    second = json.loads(mlyard("check", "--json").stdout)
    [gate] = [r for r in second["gates"] if r["gate"] == "min_segment_auc"]
    assert "champion v1 on the same rows" in gate["detail"]


def test_a_segment_gate_without_segments_fails_and_says_why(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    project = tmp_path / "fair"
    churn_like(project, rows=400)
    config = project / "mlyard.toml"
    config.write_text(config.read_text().replace('segments = ["region"]', "")
                      .replace('role = "segment"\n', ""))
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    assert mlyard("train", "-q").exit_code == 0
    with_gates(project, "max_segment_gap = 0.5")
    result = mlyard("check")
    assert result.exit_code == 1 and "[monitor] segments" in result.stdout


@pytest.mark.slow
def test_live_feedback_is_broken_down_by_segment_and_a_failing_group_alerts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Served rows carry their segment (not a feature) into the log; late labels give
    each group's figures per window, `performance --by` lists them, and the group the
    model fails raises a `segment` alert against its gate."""
    project = trained_fair(tmp_path, monkeypatch, promote=True)
    with_gates(project, "min_segment_auc = 0.7")
    rows = pl.read_csv(project / "data" / "batch.csv").head(800)
    with Server(project, "champion") as server:
        for start in range(0, rows.height, 50):
            part = rows.slice(start, 50).select("row_id", "region", "x", "noise")
            if start % 150 == 0:  # CSV: read as a frame, the large requests' path
                answer = httpx.post(f"{server.url}/invocations", content=part.write_csv(),
                                    headers={"content-type": "text/csv"}, timeout=30)
            else:
                body = ({"dataframe_split": {"columns": part.columns, "data": part.rows()}}
                        if start % 100 else {"dataframe_records": part.to_dicts()})
                answer = httpx.post(f"{server.url}/invocations", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
        one = rows.row(0, named=True)  # one row: the server's fast reader logs it too
        answer = httpx.post(f"{server.url}/invocations", timeout=30, json={
            "dataframe_records": [{k: one[k] for k in ("row_id", "region", "x", "noise")}]})
        assert answer.status_code == 200
    rows.select("row_id", "label").write_csv(project / "labels.csv")
    result = mlyard("feedback", "labels.csv", "--json")
    assert result.exit_code == 0, result.stderr
    fed = json.loads(result.stdout)
    [window] = fed["segments"]
    groups = {g["group"]: g for g in window["figures"]["groups"]}
    assert set(groups) == {"north", "south", "east", "west"}
    assert sum(g["rows"] for g in groups.values()) == rows.height
    assert groups["south"]["metrics"]["auc"] < 0.7 < groups["north"]["metrics"]["auc"]
    assert any("region 'south'" in alert and "min_segment_auc" in alert
               for alert in fed["alerts"])
    alerts = json.loads(mlyard("alerts", "--json").stdout)
    assert any(a["kind"] == "alert.segment" and "south" in a["what"] for a in alerts)
    by = json.loads(mlyard("performance", "--by", "region", "--json").stdout)
    assert by[0]["group"] == "south"  # worst first
    assert {row["group"] for row in by} == set(groups)
    wrong = mlyard("performance", "--by", "regoin")
    assert wrong.exit_code != 0 and "not one of [monitor] segments" in wrong.stderr


def test_drift_by_segment_finds_the_group_whose_data_moved(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """Shift one region's feature: overall that region is a fifth of the rows, by region
    it is the one that drifted, judged against its own training rows."""
    project = trained_fair(tmp_path, monkeypatch, promote=True)
    rows = pl.read_csv(project / "data" / "batch.csv")
    moved = rows.with_columns(row_id=pl.col("row_id") + 100_000, x=pl.when(
        pl.col("region") == "south").then(pl.col("x") + 1.5).otherwise(pl.col("x")))
    moved.write_csv(project / "new.csv")
    result = mlyard("drift", "new.csv", "--by", "region", "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    groups = {g["group"]: g for g in found["groups"]}
    assert found["groups"][0]["group"] == "south" and "x" in groups["south"]["drifted"]
    assert all("x" not in g["drifted"] for name, g in groups.items() if name != "south")
    assert groups["south"]["current_rows"] == (rows["region"] == "south").sum()
    text = mlyard("drift", "new.csv", "--by", "region").stdout
    assert "most drifted first" in text and "south" in text
    wrong = mlyard("drift", "new.csv", "--by", "plan")
    assert wrong.exit_code != 0 and "not one of [monitor] segments" in wrong.stderr
    # The HTML report has a section per segment, the moved group first.
    assert mlyard("drift", "new.csv", "--html", str(tmp_path / "drift.html")).exit_code == 0
    page = (tmp_path / "drift.html").read_text()
    section = page[page.index("<h2>By region</h2>"):]
    assert section.index("<td>south</td>") < min(section.index(f"<td>{other}</td>")
                                                 for other in ("north", "east", "west"))


def test_served_rows_without_the_segment_column_are_a_note_not_a_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = trained_fair(tmp_path, monkeypatch, rows=600)
    serve_logged(project, pl.read_csv(project / "data" / "batch.csv").head(200),
                 ["row_id", "x"])
    result = mlyard("feedback", "labels.csv")
    assert result.exit_code == 0, result.stderr
    assert "no logged request carried 'region': send it with each request" in result.stderr
    by = json.loads(mlyard("performance", "--by", "region", "--json").stdout)
    assert [row["group"] for row in by] == ["(missing)"] and by[0]["rows"] == 200


def test_labels_join_the_same_whether_the_log_kept_keys_or_only_the_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feedback reads the id and segments from their own columns, and from the rows'
    JSON in logs written before the server kept them: the same rows give the same
    figures either way, and a log holding both (in two files, or compacted into one)
    counts each row once."""
    project = trained_fair(tmp_path, monkeypatch, rows=600)
    rows = pl.read_csv(project / "data" / "batch.csv").head(300)
    sent = ["row_id", "region", "x"]
    logs = open_workspace(project).catalog.predictions_dir

    def fed() -> dict[str, Any]:
        result = mlyard("feedback", "labels.csv", "--json")
        assert result.exit_code == 0, result.stderr
        found = json.loads(result.stdout)
        return {key: found[key] for key in ("matched", "windows", "segments")}

    serve_logged(project, rows, sent)
    before = fed()
    assert before["matched"] == 300 and before["segments"]
    shutil.rmtree(logs)
    serve_logged(project, rows, sent, keyed=True)
    assert fed() == before
    shutil.rmtree(logs)
    serve_logged(project, rows.tail(200), sent, keyed=True, first=100)
    serve_logged(project, rows.head(100), sent)
    rows.select("row_id", "label").write_csv(project / "labels.csv")
    assert len(prediction_files.files(logs, "fair")) == 2
    assert fed() == before
    # A finished day is compacted into one file, keys null for the rows logged before.
    assert prediction_files.compact(logs, "fair", before_day="2100-01-01") == 1
    assert fed() == before


def test_deliveries_fold_into_one_file_that_reads_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every feedback reads all deliveries so far; past a few they are folded into one
    file of the newest label per id. The window is what the deliveries together give,
    and a later delivery that corrects labels still wins over the folded file."""
    project = trained_fair(tmp_path, monkeypatch, rows=600)
    rows = pl.read_csv(project / "data" / "batch.csv").head(300)
    serve_logged(project, rows, ["row_id", "region", "x"], keyed=True)
    scores = load_model(open_workspace(project), "latest").predict(rows)
    labels_dir = open_workspace(project).catalog.labels_dir

    def delivered(labels: pl.DataFrame) -> dict[str, Any]:
        labels.write_csv(project / "labels.csv")
        result = mlyard("feedback", "labels.csv", "--json")
        assert result.exit_code == 0, result.stderr
        [window] = json.loads(result.stdout)["windows"]
        return dict(window)

    for part in range(5):  # the fourth folds the four so far into one
        window = delivered(rows.slice(part * 60, 60).select("row_id", "label"))
    assert len(list(labels_dir.glob("*.parquet"))) == 2  # the fold and the fifth
    truth = rows["label"].cast(pl.Float64).to_numpy().copy()
    assert window["rows"] == 300
    assert window["metrics"]["auc"] == pytest.approx(
        evaluate("binary", truth, scores)["auc"], abs=1e-12)
    corrected = rows.head(90).select("row_id", (1 - pl.col("label")).alias("label"))
    window = delivered(corrected)  # kept beside the fold, and read after it
    truth[:90] = 1 - truth[:90]
    assert window["rows"] == 300
    assert window["metrics"]["auc"] == pytest.approx(
        evaluate("binary", truth, scores)["auc"], abs=1e-12)
