"""Monitoring on the sample data: drift of each monthly batch, served traffic through a
real server, late labels, alerts, the retrain trigger and the drift gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import polars as pl
import pytest

from mlyard.core.automation import jobs
from mlyard.core.data import versions
from mlyard.core.data.quality import check_quality
from mlyard.core.models.loading import load_model
from mlyard.core.monitoring import drift_reports
from mlyard.core.workspace import open_workspace
from tests.conftest import REPO, mlyard, mlyard_process, sample_project, train_json
from tests.test_serve import Server

DRIFTING = {"payment_method", "monthly_charges", "total_charges", "support_calls"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All six batches ingested; the champion trained on the first two."""
    project = sample_project(tmp_path_factory.mktemp("monitor"), "churn", batches=6)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        assert mlyard("ingest", "data").exit_code == 0
        train_json("--dataset", "churn:v1", "--dataset", "churn:v2")
        assert mlyard("models", "promote", "1").exit_code == 0
    return project


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "churn"
    shutil.copytree(template, copy)
    monkeypatch.chdir(copy)
    return copy


def drift_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = mlyard("drift", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_batch_six_is_flagged_on_the_features_that_drift_and_batches_two_to_five_are_not(
        project: Path) -> None:
    for batch in range(2, 6):
        report = drift_json("--current", f"churn:v{batch}")
        assert report["drifted"] == [] and report["severity"] == "none", batch
        assert not report["prediction"]["drifted"] and not report["target"]["drifted"]
    drifted = drift_json("--current", "churn:v6")
    assert set(drifted["drifted"]) == DRIFTING
    assert drifted["severity"] == "severe"  # the model's predictions moved too
    assert drifted["prediction"]["drifted"] and drifted["target"]["drifted"]
    by_column = {c["column"]: c for c in drifted["features"]}
    assert by_column["monthly_charges"]["method"] == "wasserstein"
    assert by_column["payment_method"]["method"] == "jensenshannon"


def test_drifted_features_are_ranked_by_how_much_the_model_relies_on_them(
        project: Path) -> None:
    report = drift_json("--current", "churn:v6")
    model = load_model(open_workspace(project), "champion")
    gains = dict(zip(model.booster.feature_name(),
                     model.booster.feature_importance(importance_type="gain"), strict=True))
    shares = {c["column"]: c["importance"] for c in report["features"]}
    assert shares == pytest.approx({name: gain / sum(gains.values())
                                    for name, gain in gains.items()})
    ranked = sorted(DRIFTING, key=lambda name: -gains[name])
    assert report["drifted"] == ranked  # most relied on first
    assert report["drifted_gain_share"] == pytest.approx(sum(shares[n] for n in DRIFTING))
    assert report["headline"].startswith(
        f"4 of 10 features drifted, {report['drifted_gain_share']:.0%} of the model's "
        f"gain: {ranked[0]}, {ranked[1]}")
    # The table puts the feature the model relies on most on top.
    table = mlyard("drift", "--current", "churn:v6").stdout.splitlines()
    top = max(shares, key=lambda name: shares[name])
    first_row = next(line for line in table[1:] if any(n in line for n in shares))
    assert top in first_row and f"{shares[top]:.0%}" in first_row


def test_reports_are_stored_as_a_time_series_and_alerts_raised(project: Path) -> None:
    for batch in (3, 6):
        drift_json("--current", f"churn:v{batch}")
    ws = open_workspace()
    history = drift_reports.list_reports(ws)
    assert [r.current_label for r in history] == ["churn:v6", "churn:v3"]
    with ws.catalog.session() as con:
        from mlyard.storage.monitor_store import column_series

        series = [f for f in column_series(con, ws.project, 10) if f.column == "support_calls"]
    assert [(f.current_label, f.drifted) for f in series] == [
        ("churn:v3", False), ("churn:v6", True)]
    listed = json.loads(mlyard("alerts", "--json").stdout)
    assert [(a["kind"], a["severity"], a["current"]) for a in listed] == [
        ("alert.drift", "severe", "churn:v6")]
    assert set(listed[0]["drifted"]) == DRIFTING


def test_a_stored_report_reads_back_as_it_was_printed(project: Path) -> None:
    printed = drift_json("--current", "churn:v6")
    shown = mlyard("drift", "show", str(printed["report_id"]), "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == printed
    charts = {c["column"]: c["chart"] for c in printed["features"]}
    assert set(charts["monthly_charges"]) == {"edges", "reference", "current"}
    assert set(charts["payment_method"]) == {"categories", "reference", "current"}
    assert len(charts["monthly_charges"]["edges"]) == len(charts["monthly_charges"]["current"]) + 1


def test_a_report_stored_by_an_earlier_mlyard_still_shows(project: Path) -> None:
    """Reports written before the headline, reliability and importance were recorded."""
    printed = drift_json("--current", "churn:v6")
    older = {key: value for key, value in printed.items()
             if key not in ("headline", "drifted_gain_share", "quality")}
    older["features"] = [{key: value for key, value in column.items()
                          if key not in ("reliable", "present", "importance", "unseen")}
                         for column in printed["features"]]
    ws = open_workspace()
    with ws.catalog.session() as con:
        con.execute("UPDATE drift_reports SET detail = ? WHERE report_id = ?",
                    [json.dumps(older), printed["report_id"]])
    shown = mlyard("drift", "show", str(printed["report_id"]))
    assert shown.exit_code == 0, shown.stderr
    assert f"{len(printed['drifted'])} of {len(printed['features'])} features drifted" \
        in shown.stdout
    assert "monthly_charges" in shown.stdout and "DRIFT" in shown.stdout
    page = project / "old.html"
    assert mlyard("drift", "show", str(printed["report_id"]), "--html", str(page)).exit_code == 0
    assert "<svg" in page.read_text()


def test_a_file_is_checked_as_ingest_would_read_it_without_ingesting_it(
        project: Path) -> None:
    june = project / "data" / "churn_2026_06.csv"
    before = june.read_bytes()
    stored = drift_json("--current", "churn:v6")
    alerts_before = mlyard("alerts", "--json").stdout
    for args in (["--file", str(june)], [str(june.relative_to(project))],
                 ["--reference", "champion", str(june.relative_to(project))]):
        checked = drift_json(*args)
        assert checked["current"] == {"kind": "file", "label": f"file {args[-1]}",
                                      "rows": stored["current"]["rows"]}
        # The same rows as the ingested version, so the same figures.
        assert checked["drifted"] == stored["drifted"] and checked["severity"] == "severe"
        assert [c["statistic"] for c in checked["features"]] == \
            [c["statistic"] for c in stored["features"]]
    assert june.read_bytes() == before
    # New customers whose churn is not known yet: no target column, no target drift.
    shutil.copy(REPO / "sample_data" / "churn" / "new.csv", project / "new.csv")
    unlabelled = drift_json("new.csv")
    assert unlabelled["current"]["rows"] == 500 and unlabelled["target"] is None
    assert unlabelled["prediction"] is not None
    assert len(json.loads(mlyard("data", "list", "--json").stdout)) == 6  # nothing ingested
    assert mlyard("alerts", "--json").stdout == alerts_before  # not the project's data yet
    assert not (project / ".mlyard" / "quarantine").exists() or \
        not any((project / ".mlyard" / "quarantine").iterdir())


def test_a_file_drift_refuses_bad_rows_in_one_line_and_leaves_the_file_alone(
        project: Path) -> None:
    lines = (project / "data" / "churn_2026_06.csv").read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("tenure_months")
    bad_row = lines[5].split(",")
    bad_row[column] = "lots"
    bad = project / "bad.csv"
    bad.write_text("\n".join([lines[0], *lines[1:5], ",".join(bad_row), *lines[6:]]) + "\n")
    before = bad.read_bytes()
    result = mlyard("drift", "bad.csv")
    assert result.exit_code != 0
    assert "tenure_months" in result.stderr and "bad.csv" in result.stderr
    assert bad.read_bytes() == before
    assert len(json.loads(mlyard("data", "list", "--json").stdout)) == 6
    both = mlyard("drift", "--file", "bad.csv", "--current", "churn:v6")
    assert both.exit_code != 0 and "give one of --current, --served and --file" in both.stderr
    missing = mlyard("drift", "nowhere.csv")
    assert missing.exit_code != 0 and "nowhere.csv" in missing.stderr


def test_the_html_report_is_self_contained(project: Path) -> None:
    page = project / "drift.html"
    assert mlyard("drift", "--current", "churn:v6", "--html", str(page)).exit_code == 0
    text = page.read_text()
    assert "<svg" in text and "monthly_charges" in text and "dataset drift" in text
    assert "<script" not in text and "http://" not in text and "https://" not in text


def test_served_traffic_drift_and_live_performance_from_late_labels(project: Path) -> None:
    ws = open_workspace()
    batch_6 = versions.load_version(ws, "churn:v6")
    features = [c for c in batch_6.columns if c not in ("snapshot_date", "churned")]
    with Server(project, "churn@champion") as server:
        for start in range(0, 1200, 100):
            rows = batch_6.slice(start, 100).select(features).to_dicts()
            answer = httpx.post(f"{server.url}/invocations", json={"dataframe_records": rows})
            assert answer.status_code == 200
    report = drift_json("--served", "1h")
    assert report["current"]["kind"] == "served" and report["current"]["rows"] == 1200
    assert set(report["drifted"]) >= {"monthly_charges", "support_calls"}

    labels = batch_6.slice(0, 1200).select("customer_id", "churned")
    labels = pl.concat([labels, pl.DataFrame({"customer_id": ["nobody"], "churned": [1]})])
    labels.write_csv(project / "labels.csv")
    result = mlyard("feedback", "labels.csv", "--window", "1d", "--json")
    assert result.exit_code == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["labels"] == 1201 and outcome["matched"] == 1200
    [window] = outcome["windows"]
    assert window["rows"] == 1200 and window["version"] == 1
    from mlyard.core.models.loading import load_model
    from mlyard.core.tracking.evaluation import evaluate

    model = load_model(ws, "champion")
    rows = batch_6.slice(0, 1200)
    expected = evaluate("binary", rows["churned"].to_numpy(), model.predict(rows))
    assert window["metrics"]["auc"] == pytest.approx(expected["auc"], abs=1e-9)
    stored = json.loads(mlyard("performance", "--json").stdout)
    assert stored[0]["rows"] == 1200


def test_severe_drift_triggers_one_retrain(project: Path) -> None:
    config = project / "mlyard.toml"
    config.write_text(config.read_text() + '\n[monitor]\non_drift = "retrain"\n')
    for _ in range(2):  # checking the same data again does not retrain again
        assert drift_json("--current", "churn:v6")["severity"] == "severe"
    trains = [j for j in jobs.list_jobs(open_workspace()) if j.step == "train"]
    assert [(j.trigger, j.status) for j in trains] == [("drift", "succeeded")]


@pytest.mark.slow  # trains and checks in several processes
def test_the_drift_gate_fails_a_candidate_whose_training_data_no_longer_matches(
        project: Path) -> None:
    config = project / "mlyard.toml"
    config.write_text(config.read_text().replace("[gates]", "[gates]\nno_severe_drift = true"))
    stale = mlyard_process("check", "1", cwd=project)
    assert stale.returncode == 1
    assert "no_severe_drift" in stale.stdout and "churn:v6" in stale.stdout
    fresh = train_json("--dataset", "churn:v6")
    passed = mlyard_process("check", str(fresh["model_version"]), cwd=project)
    assert "no_severe_drift" in passed.stdout
    assert "FAIL" not in passed.stdout.split("no_severe_drift")[1].splitlines()[0]


def test_quality_findings_name_the_column() -> None:
    from mlyard.core.config import ColumnContract

    frame = pl.DataFrame({
        "id": ["a", "b", "b"] + [f"x{i}" for i in range(27)],
        "age": [None, -3.0, 40.0] + [30.0] * 27,
        "plan": ["gold", "tin", "gold"] + ["gold"] * 27,
        "flag": [1] * 30,
    })
    contract = {"age": ColumnContract(type="int", min=0, max_null_rate=0.0),
                "plan": ColumnContract(type="category", categories=["gold", "silver"])}
    findings = check_quality(frame, contract, ["age", "plan", "flag"], "id")
    assert any("'age'" in f and "missing" in f for f in findings)
    assert any("'age'" in f and "below the contract's min 0" in f for f in findings)
    assert any("'plan'" in f and "new categories tin" in f for f in findings)
    assert any("'flag'" in f and "constant" in f for f in findings)
    assert any("'id'" in f and "1 repeated" in f for f in findings)


def test_bad_drift_requests_get_one_clear_line(project: Path) -> None:
    unknown = mlyard("drift", "--current", "churn:v99")
    assert unknown.exit_code == 1 and "no version v99" in unknown.stderr
    window = mlyard("drift", "--served", "soon")
    assert window.exit_code == 2 and "--served 'soon'" in window.stderr
    nothing = mlyard("drift", "--served", "1h")
    assert nothing.exit_code == 2 and "no requests" in nothing.stderr
    (project / "labels.csv").write_text("who,churned\nC1,1\n")
    labels = mlyard("feedback", "labels.csv")
    assert labels.exit_code == 2 and "no column 'customer_id'" in labels.stderr


def test_a_constant_column_at_ingest_is_a_warning_and_a_quality_alert(
        churn_project: Path, good_csv: str) -> None:
    header, *lines = good_csv.splitlines()
    region = header.split(",").index("region")
    rows = [line.split(",") for line in lines]
    for row in rows:
        row[region] = "north"
    (churn_project / "data" / "flat.csv").write_text(
        "\n".join([header, *(",".join(row) for row in rows)]) + "\n")
    result = mlyard("ingest", "data/flat.csv", "--json")
    assert result.exit_code == 0, result.stderr
    [ingested] = json.loads(result.stdout)
    assert any("'region' has the same value" in w for w in ingested["warnings"])
    [alert] = json.loads(mlyard("alerts", "--json").stdout)
    assert alert["kind"] == "alert.quality" and alert["current"] == "churn:v1"
    assert any("'region'" in finding for finding in alert["findings"])


def test_a_refused_file_is_an_error_alert(churn_project: Path, good_csv: str) -> None:
    (churn_project / "data" / "bad.csv").write_text(good_csv.replace("month-to-month",
                                                                     "weekly"))
    assert mlyard("ingest", "data/bad.csv").exit_code == 1
    [alert] = json.loads(mlyard("alerts", "--json").stdout)
    assert alert["kind"] == "alert.refused" and alert["severity"] == "error"
    assert "weekly" in alert["findings"][0] and alert["quarantined"]
