"""Labels as they come: read by the target's own rules (a yes/no target's labels are yes
and no), a second delivery for a window adds to it, a shadow that knows a class the
champion does not is compared class by class, and drift over served rows of mixed
shapes reads them all."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlyard.core.models.loading import load_model
from mlyard.core.monitoring.by_id import join_on, last_of_each
from mlyard.core.tracking.evaluation import evaluate
from mlyard.core.workspace import open_workspace
from tests.conftest import examples, mlyard, train_json, wait_for
from tests.test_evolving_data import init, month_file, panel  # noqa: F401  (a fixture)
from tests.test_serve import Server


def features(project: Path) -> list[str]:
    return load_model(open_workspace(project), "champion").spec.names


def _serve_month(project: Path, month: Path, shadow: str | None = None) -> pl.DataFrame:
    rows = pl.read_csv(month)
    sent = rows.select([*features(project), "person_id"])
    options = {"shadow_ref": shadow} if shadow else {}
    with Server(project, "champion", **options) as server:
        for start in range(0, rows.height, 40):
            answer = httpx.post(f"{server.url}/invocations", timeout=30,
                                json={"dataframe_records": sent.slice(start, 40).to_dicts()})
            assert answer.status_code == 200, answer.text
        if shadow:
            wait_for(lambda: server.app.state.shadow.scored == rows.height // 40)
    return rows


@pytest.mark.slow
def test_yes_no_labels_are_read_as_the_target_and_a_second_delivery_adds_to_the_window(
        panel: Path) -> None:  # noqa: F811
    init(panel)
    assert mlyard("ingest", "data").exit_code == 0
    train_json()
    train_json("--param", "num_leaves=4")
    assert mlyard("models", "promote", "1", "--force").exit_code == 0
    (panel / "incoming").mkdir()
    rows = _serve_month(panel, month_file(panel / "incoming", 2), shadow="2")
    labels = rows.select("person_id", "outcome")  # "yes" / "no", as the data has them
    labels.head(100).write_csv(panel / "first.csv")
    labels.slice(100).write_csv(panel / "second.csv")

    first = mlyard("feedback", "first.csv", "--json")
    assert first.exit_code == 0, first.stderr
    [window] = json.loads(first.stdout)["windows"]
    assert window["rows"] == 100
    second = json.loads(mlyard("feedback", "second.csv", "--json").stdout)
    [window] = second["windows"]
    assert second["matched"] == rows.height - 100 and window["rows"] == rows.height
    model = load_model(open_workspace(panel), "champion")
    truth = (rows["outcome"] == "yes").cast(pl.Float64).to_numpy()
    assert window["metrics"]["auc"] == pytest.approx(
        evaluate("binary", truth, model.predict(rows))["auc"], abs=1e-9)
    report = mlyard("shadow", "report", "--json")
    assert report.exit_code == 0, report.stderr
    [pair] = json.loads(report.stdout)["comparisons"]
    assert pair["live"]["rows"] == rows.height


@pytest.fixture
def trained_panel(panel: Path) -> Path:  # noqa: F811
    """The panel initialised, its data ingested and one model trained; nothing served."""
    init(panel)
    assert mlyard("ingest", "data").exit_code == 0
    train_json()
    return panel


def test_a_label_that_is_not_the_target_s_kind_is_named_by_row(trained_panel: Path) -> None:
    (trained_panel / "labels.csv").write_text("person_id,outcome\n1000,yes\n1001,perhaps\n")
    result = mlyard("feedback", "labels.csv")
    assert result.exit_code == 2
    assert "labels.csv: row 2, column 'outcome': 'perhaps' is not true/false, yes/no or " \
        "1/0" in result.stderr


def test_feedback_before_anything_was_served_says_so(trained_panel: Path) -> None:
    """Before: "no logged prediction carries 'person_id'", though nothing was logged."""
    (trained_panel / "labels.csv").write_text("person_id,outcome\n1000,yes\n")
    result = mlyard("feedback", "labels.csv")
    assert result.exit_code == 2
    assert "no predictions logged for" in result.stderr and "yet" in result.stderr
    assert "carries" not in result.stderr


@pytest.mark.slow
def test_a_shadow_that_knows_a_new_class_is_compared_class_by_class(panel: Path) -> None:  # noqa: F811
    four = ["a", "b", "c", "d"]
    (panel / "data" / "2024-01.csv").unlink()
    month_file(panel / "data", 1, classes=four)
    init(panel)
    assert mlyard("ingest", "data").exit_code == 0
    train_json()
    assert mlyard("models", "promote", "1").exit_code == 0
    (panel / "incoming").mkdir()
    five = month_file(panel / "incoming", 2, classes=[*four, "e"], person_offset=5000)
    assert mlyard("ingest", str(five)).exit_code == 0
    train_json()  # v2 knows 'e'
    rows = _serve_month(panel, five, shadow="2")
    rows.select("person_id", "outcome").write_csv(panel / "labels.csv")
    assert mlyard("feedback", "labels.csv").exit_code == 0

    report = mlyard("shadow", "report", "--json")
    assert report.exit_code == 0, report.stderr
    [pair] = json.loads(report.stdout)["comparisons"]
    live = pair["live"]
    assert live["rows"] == rows.height  # the rows of 'e' too: the champion gets them wrong
    assert live["difference"]["value"] < 0  # the shadow, which knows 'e', is better


def test_drift_over_served_rows_with_and_without_the_id(panel: Path) -> None:  # noqa: F811
    init(panel)
    assert mlyard("ingest", "data").exit_code == 0
    train_json()
    assert mlyard("models", "promote", "1").exit_code == 0
    (panel / "incoming").mkdir()
    rows = pl.read_csv(month_file(panel / "incoming", 2, rows=360))
    with Server(panel, "champion") as server:
        for start, ids in ((0, False), (120, False), (240, True)):  # 240 rows, then ids
            names = features(panel)
            sent = rows.slice(start, 120).select([*names, "person_id"] if ids else names)
            answer = httpx.post(f"{server.url}/invocations", timeout=30,
                                json={"dataframe_records": sent.to_dicts()})
            assert answer.status_code == 200
    drift = mlyard("drift", "--served", "1h", "--json")
    assert drift.exit_code == 0, drift.stderr
    assert json.loads(drift.stdout)["current"]["rows"] == 360


IDS = st.lists(st.one_of(st.text(max_size=3), st.sampled_from(["7", "07", "7.0", "é"])),
               max_size=40)


@settings(max_examples=examples(300), deadline=None)
@given(logged=IDS, labelled=IDS)
def test_newest_per_id_and_the_join_are_exactly_the_texts(logged: list[str],
                                                          labelled: list[str]) -> None:
    """Feedback keys on a hash of the ids and checks the text: the same rows, in the
    same order, as keying on the text itself (ids that differ only in spelling, such as
    7 and 07, stay apart)."""
    left = pl.DataFrame({"id": logged, "at": range(len(logged))},
                        schema={"id": pl.String, "at": pl.Int64})
    right = pl.DataFrame({"id": labelled, "label": range(len(labelled))},
                         schema={"id": pl.String, "label": pl.Int64})
    newest = left.unique("id", keep="last", maintain_order=True)
    assert last_of_each(left, "id").equals(newest)
    labels = right.unique("id", keep="last", maintain_order=True)
    assert join_on(newest, last_of_each(right, "id"), "id").equals(
        newest.join(labels, on="id", how="inner", maintain_order="left"))
