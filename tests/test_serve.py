"""`mlyard serve` on a real uvicorn server on an ephemeral 127.0.0.1 port, and
`mlyard predict`."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlyard.core.data import versions
from mlyard.core.models import registry
from mlyard.core.models.loading import load_model
from mlyard.core.serving.scoring import SMALL_REQUEST
from mlyard.core.serving.server import HeaderTimeoutHttp, create_app
from mlyard.core.workspace import open_workspace
from mlyard.storage import prediction_files
from tests.conftest import (
    examples,
    mlyard,
    python_process,
    sample_project,
    train_json,
    wait_for,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A churn project with two model versions, champion on v1."""
    project = sample_project(tmp_path_factory.mktemp("serve"), "churn")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        assert mlyard("ingest", "data").exit_code == 0
        train_json("--param", "num_leaves=15")
        train_json("--param", "num_leaves=63")
        assert mlyard("models", "promote", "1").exit_code == 0
    return project


class Server:
    def __init__(self, project: Path, ref: str, **options: object) -> None:
        self.ws = open_workspace(project)
        self.app = create_app(self.ws, ref, poll_interval=0.2, **options)  # type: ignore[arg-type]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                http=HeaderTimeoutHttp)  # as `mlyard serve` runs it
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, what="the server to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def server(trained: Path) -> Iterator[Server]:
    with Server(trained, "churn@champion") as running:
        yield running


def rows(project: Path, count: int = 3) -> pl.DataFrame:
    return versions.load_versions(open_workspace(project)).head(count)


def features_of(frame: pl.DataFrame, project: Path) -> pl.DataFrame:
    spec = load_model(open_workspace(project), "champion").spec
    return frame.select(spec.names)


def expected(project: Path, frame: pl.DataFrame) -> list[float]:
    return load_model(open_workspace(project), "champion").predict(frame).tolist()


def post(server: Server, body: object, content_type: str = "application/json",
         **headers: str) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{server.url}/invocations", content=content,
                      headers={"content-type": content_type, **headers}, timeout=30)


def test_every_mlflow_input_form_gets_the_in_process_predictions(server: Server,
                                                                  trained: Path) -> None:
    frame = features_of(rows(trained), trained)
    records = frame.to_dicts()
    want = expected(trained, frame)
    bodies = {
        "dataframe_split": {"dataframe_split": {"columns": frame.columns,
                                                "data": [list(r.values()) for r in records]}},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {k: frame.get_column(k).to_list() for k in frame.columns}},
    }
    for form, body in bodies.items():
        answer = post(server, body)
        assert answer.status_code == 200, (form, answer.text)
        assert np.allclose(answer.json()["predictions"], want), form
    csv = post(server, frame.write_csv(), "text/csv")
    assert csv.status_code == 200 and np.allclose(csv.json()["predictions"], want)


@pytest.mark.parametrize(("mutate", "status", "expected_text"), [
    (lambda r: {k: v for k, v in r.items() if k != "tenure_months"}, 400,
     "missing feature column 'tenure_months'"),
    (lambda r: {**r, "age": 41.5}, 400, "row 1, column 'age': 41.5 is not a whole number"),
    (lambda r: {**r, "monthly_charges": "lots"}, 400,
     "row 1, column 'monthly_charges': 'lots' is not a finite number"),
    (lambda r: {**r, "monthly_charges": "inf"}, 400, "is not a finite number"),
])
def test_bad_rows_get_a_4xx_naming_column_and_row(server: Server, trained: Path, mutate,  # type: ignore[no-untyped-def]
                                                  status: int, expected_text: str) -> None:
    record = features_of(rows(trained, 1), trained).to_dicts()[0]
    answer = post(server, {"dataframe_records": [mutate(record)]})
    assert answer.status_code == status
    assert answer.json()["error_code"] == "BAD_REQUEST"
    assert expected_text in answer.json()["message"]


def test_malformed_unsupported_oversized_and_wrong_method(trained: Path) -> None:
    with Server(trained, "champion", max_body=2000) as small:
        assert post(small, b"{not json").status_code == 400
        assert post(small, {"rows": []}).status_code == 400
        unsupported = post(small, b"a,b", "application/xml")
        assert unsupported.status_code == 415 and unsupported.json()["error_code"] == \
            "BAD_REQUEST"
        assert post(small, b"x" * 5000).status_code == 413
        assert httpx.get(f"{small.url}/invocations").status_code == 405


def test_ping_health_version_metadata_and_metrics(server: Server, trained: Path) -> None:
    assert httpx.get(f"{server.url}/ping").status_code == 200
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/version").text
    meta = httpx.get(f"{server.url}/metadata").json()
    assert meta["version"] == 1 and meta["ref"] == "churn@champion"
    assert {f["name"] for f in meta["features"]} >= {"tenure_months", "contract"}
    post(server, {"instances": features_of(rows(trained, 2), trained).to_dicts()})
    post(server, b"{bad")
    text = httpx.get(f"{server.url}/metrics").text
    assert 'mlyard_requests_total{status="200"}' in text
    assert 'mlyard_requests_total{status="400"}' in text
    assert "mlyard_request_latency_seconds_bucket" in text
    assert "mlyard_predictions_total 2.0" in text and "mlyard_model_version 1.0" in text


def test_one_row_requests_take_the_fast_path_and_score_as_in_process(server: Server,
                                                                     trained: Path) -> None:
    # The churn model's plain rows are read by the row reader and scored by LightGBM's
    # single-row API; a slip in either shows as a different prediction here.
    model, reader = server.app.state.holder.serving
    assert model.single_row is not None
    frame = features_of(rows(trained, 20), trained)
    for record, want in zip(frame.to_dicts(), expected(trained, frame), strict=True):
        assert reader.read(record) is not None
        answer = post(server, {"dataframe_records": [record]})
        assert answer.status_code == 200, answer.text
        assert np.isclose(answer.json()["predictions"][0], want)


def test_every_scored_row_is_logged(trained: Path) -> None:
    ws = open_workspace(trained)
    before = prediction_files.count_rows(ws.catalog.predictions_dir, "churn")
    with Server(trained, "champion") as running:
        for _ in range(3):
            assert post(running, {"instances": features_of(rows(trained, 4), trained)
                                  .to_dicts()}).status_code == 200
    assert prediction_files.count_rows(ws.catalog.predictions_dir, "churn") == before + 12
    # They are files beside the catalog, never rows in it.
    assert list(ws.catalog.predictions_dir.glob("model=churn/date=*/*.parquet"))


def test_bearer_token(trained: Path) -> None:
    with Server(trained, "champion", token="s3cret") as secured:
        body = {"instances": features_of(rows(trained, 1), trained).to_dicts()}
        assert post(secured, body).status_code == 401
        assert post(secured, body, authorization="Bearer wrong").status_code == 401
        assert post(secured, body, authorization="Bearer s3cret").status_code == 200
        assert httpx.get(f"{secured.url}/ping").status_code == 200
        assert httpx.get(f"{secured.url}/metadata").status_code == 401


def test_binding_beyond_loopback_needs_a_token(trained: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained)
    result = mlyard("serve", "champion", "--host", "0.0.0.0")
    assert result.exit_code == 2 and "--token" in result.stderr


PROMOTE = textwrap.dedent("""
    import sys, time
    from mlyard.core.automation import promotion
    from mlyard.core.workspace import open_workspace
    promotion.promote(open_workspace(), sys.argv[1], reason="swap test", force=True)
""")


def test_alias_move_swaps_the_model_without_failing_a_request(trained: Path) -> None:
    body = {"instances": features_of(rows(trained, 5), trained).to_dicts()}
    statuses: list[int] = []
    answered_by: list[str] = []
    stop = threading.Event()
    with Server(trained, "champion") as running:
        def hammer() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    answer = client.post(f"{running.url}/invocations", json=body)
                    statuses.append(answer.status_code)
                    answered_by.append(answer.headers.get("x-mlyard-model-version", "?"))

        clients = [threading.Thread(target=hammer) for _ in range(4)]
        for client in clients:
            client.start()
        wait_for(lambda: len(statuses) >= 20, what="clients busy before the move")
        promoter = python_process(PROMOTE, trained, "2")
        promoter.communicate(timeout=60)
        wait_for(lambda: answered_by.count("2") >= 20, what="requests answered by version 2")
        stop.set()
        for client in clients:
            client.join()
    try:
        assert promoter.returncode == 0
        assert set(answered_by) == {"1", "2"}
        assert statuses and set(statuses) == {200}
        assert running.app.state.holder.swaps == 1
    finally:
        registry.rollback(open_workspace(trained), reason="restore for other tests")


def test_predict_file_round_trip(trained: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained)
    source = trained / "data" / "churn_2026_01.csv"
    target = tmp_path / "scored.parquet"
    result = mlyard("predict", "churn@champion", str(source), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    scored = pl.read_parquet(target)
    assert scored.height == 3600
    version = versions.get_version(open_workspace(trained), "v1")
    snapshot = pl.read_parquet(open_workspace(trained).objects.open_verified(
        version.snapshot_hash))
    assert np.allclose(scored.get_column("prediction").to_numpy(),
                       load_model(open_workspace(trained), "champion").predict(snapshot))
    broken = tmp_path / "broken.csv"
    text = pl.read_csv(source, infer_schema=False)
    text.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("forty"))
                      .otherwise("age").alias("age")).write_csv(broken)
    refused = mlyard("predict", "champion", str(broken), "-o", str(tmp_path / "x.parquet"))
    assert refused.exit_code == 1
    assert "broken.csv: row 3, column 'age': 'forty' is not a whole number" in refused.stderr
    assert not (tmp_path / "x.parquet").exists()


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8)
                 | st.integers(), lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.sampled_from(["dataframe_split", "dataframe_records",
                                                    "instances", "inputs", "columns", "data",
                                                    "contract", "age"]), inner, max_size=4),
                 max_leaves=12).map(lambda v: json.dumps(v).encode())),
    content_type=st.sampled_from(["application/json", "text/csv", "text/plain", ""]))
def test_no_client_input_gets_a_500(server: Server, body: bytes, content_type: str) -> None:
    answer = post(server, body, content_type)
    assert answer.status_code < 500, answer.text


def test_several_workers_serve_the_same_model(trained: Path) -> None:
    import subprocess
    import sys

    from mlyard.core.serving.supervisor import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlyard", "serve", "champion",
                               "--port", str(port), "--workers", "2"], cwd=trained,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.1)
        body = {"instances": features_of(rows(trained, 2), trained).to_dicts()}
        answers = [httpx.post(f"{url}/invocations", json=body, timeout=30) for _ in range(10)]
        assert {a.status_code for a in answers} == {200}
        assert np.allclose(answers[0].json()["predictions"],
                           expected(trained, features_of(rows(trained, 2), trained)))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_request_above_the_small_size_scores_the_same(server: Server, trained: Path) -> None:
    """Past SMALL_REQUEST rows the JSON goes through the column reader: same answers."""
    frame = features_of(rows(trained, SMALL_REQUEST + 200), trained)
    answer = post(server, {"dataframe_records": frame.to_dicts()})
    assert answer.status_code == 200, answer.text
    assert np.allclose(answer.json()["predictions"], expected(trained, frame))
    assert answer.headers["x-mlyard-rows"] == str(SMALL_REQUEST + 200)
