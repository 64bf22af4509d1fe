"""Ingest, `mlyard predict` and the server read values one way: the same missing-value
tokens, number formats and integer rule, the same 1-based row numbers, and text/csv
agreeing with JSON. A file ingest accepts is a file both scoring paths score the same."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlyard.core.models.loading import load_model
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard
from tests.test_serve import Server, post, trained  # noqa: F401  # the module's project


def messy_batch(project: Path) -> pl.DataFrame:
    """Rows of the sample as text, spelled as real exports spell them."""
    frame = pl.read_csv(project / "data" / "churn_2026_01.csv", infer_schema=False).head(40)
    row = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(row == 1).then(pl.lit("NaN")).when(row == 2).then(pl.lit("1,204.50"))
        .otherwise("total_charges").alias("total_charges"),
        pl.when(row == 3).then(pl.lit("7.0")).otherwise("support_calls").alias("support_calls"),
        pl.when(row == 4).then(pl.lit(" 41 ")).otherwise("age").alias("age"),
        pl.when(row == 5).then(pl.lit("NA")).otherwise("monthly_charges")
        .alias("monthly_charges"))


@pytest.fixture
def scored(trained: Path, tmp_path: Path,  # noqa: F811
           monkeypatch: pytest.MonkeyPatch) -> tuple[Path, pl.DataFrame]:
    monkeypatch.chdir(trained)
    source = tmp_path / "messy.csv"
    messy_batch(trained).write_csv(source)
    out = tmp_path / "scored.parquet"
    result = mlyard("predict", "champion", str(source), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return source, pl.read_parquet(out)


def test_a_messy_file_scores_the_same_through_ingest_predict_and_the_server(
        trained: Path, scored: tuple[Path, pl.DataFrame]) -> None:  # noqa: F811
    source, predicted = scored
    ingested = mlyard("ingest", str(source))
    assert ingested.exit_code == 0, ingested.stderr
    ref = json.loads(mlyard("data", "list", "--json").stdout)[-1]["snapshot_blake3"]
    snapshot = pl.read_parquet(open_workspace(trained).objects.path_for(ref))
    model = load_model(open_workspace(trained), "champion")
    want = model.predict(snapshot)
    assert np.allclose(predicted["prediction"].to_numpy(), want)
    with Server(trained, "champion") as server:
        as_csv = post(server, source.read_bytes(), "text/csv")
        assert as_csv.status_code == 200, as_csv.text
        assert np.allclose(as_csv.json()["predictions"], want)
        records = snapshot.select(model.spec.names).to_dicts()
        records[1]["total_charges"] = float("nan")  # what MLflow's Python client sends
        body = json.dumps({"dataframe_records": records})  # allow_nan: a bare NaN literal
        assert "NaN" in body
        as_json = post(server, body)
        assert as_json.status_code == 200, as_json.text
        assert np.allclose(as_json.json()["predictions"], want)


def test_predict_keeps_the_input_types(trained: Path,  # noqa: F811
                                       scored: tuple[Path, pl.DataFrame],
                                       tmp_path: Path) -> None:
    _, from_csv = scored
    assert from_csv.schema["age"] == pl.Int64 and from_csv.schema["total_charges"] == pl.Float64
    assert from_csv.schema["snapshot_date"] == pl.Date  # a contract column, not a feature
    assert from_csv["total_charges"][1] is None and from_csv["total_charges"][2] == 1204.5
    parquet = tmp_path / "typed.parquet"
    typed = pl.read_csv(trained / "data" / "churn_2026_01.csv", try_parse_dates=True).head(20)
    typed.write_parquet(parquet)
    out = tmp_path / "typed-scored.parquet"
    assert mlyard("predict", "champion", str(parquet), "-o", str(out)).exit_code == 0
    from_parquet = pl.read_parquet(out)
    for name, dtype in typed.schema.items():
        assert from_parquet.schema[name] == dtype, name
    difference = from_parquet["monthly_charges"] - from_parquet["prediction"]
    assert difference.dtype == pl.Float64


@pytest.mark.parametrize(("value", "accepted", "message"), [
    ("9", True, ""),
    ("9.0", True, ""),
    ("1,000", True, ""),
    ("9.7", False, "row 2, column 'age': '9.7' is not a whole number"),
    ("nine", False, "row 2, column 'age': 'nine' is not a whole number"),
])
def test_the_integer_rule_is_one_rule_in_all_three_paths(
        trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        value: str, accepted: bool, message: str) -> None:
    monkeypatch.chdir(trained)
    frame = pl.read_csv(trained / "data" / "churn_2026_01.csv", infer_schema=False).head(5)
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(value))
                               .otherwise("age").alias("age"))
    source = tmp_path / "ages.csv"
    frame.write_csv(source)
    ingest = mlyard("ingest", str(source))
    predict = mlyard("predict", "champion", str(source), "-o", str(tmp_path / "o.parquet"))
    assert (ingest.exit_code == 0) is accepted, ingest.stderr
    assert (predict.exit_code == 0) is accepted, predict.stderr
    spec = load_model(open_workspace(trained), "champion").spec
    records = frame.select(spec.names).to_dicts()
    with Server(trained, "champion") as server:
        as_csv = post(server, frame.write_csv(), "text/csv")
        as_json = post(server, {"dataframe_records": records})  # the value as a JSON string
        number = float(value) if value.replace(".", "").isdigit() else None
        as_number = post(server, {"dataframe_records": [
            {**r, "age": number if i == 1 and number is not None else r["age"]}
            for i, r in enumerate(records)]})
    for answer in (as_csv, as_json):
        assert (answer.status_code == 200) is accepted, answer.text
        if not accepted:
            assert message in answer.json()["message"]
    if not accepted:
        assert message.replace("row 2", "ages.csv: row 2") in predict.stderr
        assert "whole number" in ingest.stderr and "row 2: " in ingest.stderr
    if number is not None:
        assert (as_number.status_code == 200) is float(number).is_integer()


def test_json_infinity_is_refused_naming_column_and_row(trained: Path) -> None:  # noqa: F811
    spec = load_model(open_workspace(trained), "champion").spec
    records = pl.read_csv(trained / "data" / "churn_2026_01.csv").select(spec.names) \
        .head(3).to_dicts()
    records[2]["monthly_charges"] = math.inf
    with Server(trained, "champion") as server:
        answer = post(server, json.dumps({"dataframe_records": records}))
        booleans = post(server, {"dataframe_records": [{**records[0], "age": True}]})
    assert answer.status_code == 400
    assert answer.json()["message"] == ("row 3, column 'monthly_charges': Infinity is not a "
                                        "finite number")
    assert booleans.status_code == 400 and "'age'" in booleans.json()["message"]
