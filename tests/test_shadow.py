"""Shadow deployment: a second version scores every answered request off the request
path; `mlyard shadow report` compares the two; the shadow gates judge it on promotion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import psutil
import pytest

from mlyard.core.data import versions
from mlyard.core.models.loading import load_model
from mlyard.core.serving.model_holder import ModelHolder
from mlyard.core.serving.shadow import Answered, Shadow
from mlyard.core.serving.shadow_worker import ShadowScorer
from mlyard.core.tracking.evaluation import evaluate
from mlyard.core.workspace import open_workspace
from mlyard.storage import prediction_files, shadow_files
from tests.conftest import (
    free_port,
    levels_project,
    mlyard,
    mlyard_process,
    sample_project,
    train_json,
    wait_for,
)
from tests.test_serve import Server

FEATURES_DROPPED = ("snapshot_date", "churned")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Churn with v1 champion and v2 (a different model) as challenger, as cwd."""
    project = sample_project(tmp_path, "churn")
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    train_json("--param", "num_leaves=4", "--param", "num_iterations=20")
    train_json("--param", "num_leaves=63", "--param", "num_iterations=200")
    assert mlyard("models", "promote", "1").exit_code == 0
    assert mlyard("models", "alias", "challenger", "2").exit_code == 0
    yield project


def requests_of(project: Path, sizes: list[int]) -> list[list[dict[str, object]]]:
    frame = versions.load_versions(open_workspace(project))
    features = [c for c in frame.columns if c not in FEATURES_DROPPED]
    batches, start = [], 0
    for size in sizes:
        batches.append(frame.slice(start, size).select(features).to_dicts())
        start += size
    return batches


def send(server: Server, rows: list[dict[str, object]]) -> httpx.Response:
    answer = httpx.post(f"{server.url}/invocations", json={"dataframe_records": rows},
                        timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def shadow_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = mlyard("shadow", "report", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_shadow_scores_every_answered_request_and_the_report_compares_them(
        project: Path) -> None:
    ws = open_workspace(project)
    batches = requests_of(project, [1, 1, 5, 40, 300, 1])
    sent_ids = []
    with Server(project, "churn@champion", shadow_ref="challenger") as server:
        for rows in batches:
            answer = send(server, rows)
            # The champion answers, and says so: the shadow never changes a response.
            assert answer.headers["x-mlyard-model-version"] == "1"
            sent_ids.append(answer.headers["x-request-id"])
        shadow = server.app.state.shadow
        wait_for(lambda: shadow.scored == len(batches), what="the shadow scored every request")
        health = httpx.get(f"{server.url}/health").json()
        assert health["shadow"] == {"ref": "challenger", "model_version": 2, "alive": True,
                                    "stuck": False, "scored": len(batches), "failed": 0,
                                    "dropped": 0, "queued": 0}
        metrics = httpx.get(f"{server.url}/metrics").text
        assert f"mlyard_shadow_scored_total {float(len(batches))}" in metrics
    # Both predictions logged under the request id the client was given.
    records = shadow_files.read(ws.catalog.shadow_dir, "churn").to_pylist()
    assert sorted(r["request_id"] for r in records) == sorted(sent_ids)
    logged = prediction_files.recent(ws.catalog.predictions_dir, "churn", 100)
    assert {row[0] for row in logged} == set(sent_ids)

    every_row = [row for rows in batches for row in rows]
    frame = pl.DataFrame(every_row)
    champion = load_model(ws, "1").predict(frame)
    challenger = load_model(ws, "2").predict(frame)
    assert not np.allclose(champion, challenger)  # two different models
    report = shadow_json("--window", "1h")
    [pair] = report["comparisons"]
    assert (pair["champion_version"], pair["shadow_version"]) == (1, 2)
    assert (pair["requests"], pair["rows"], pair["failed"]) == (len(batches), len(frame), 0)
    assert pair["same_label"] == pytest.approx(((champion >= 0.5) == (challenger >= 0.5)).mean())
    assert pair["mean_abs_diff"] == pytest.approx(np.abs(champion - challenger).mean())
    assert pair["shadow_scores"]["mean"] == pytest.approx(challenger.mean())
    assert sum(pair["champion_scores"]["counts"]) == len(frame)
    assert pair["champion_ms"]["p50"] > 0 and pair["shadow_ms"]["p99"] > 0
    assert pair["live"] is None  # no labels yet

    text = mlyard("shadow", "report", "--window", "1h")
    assert text.exit_code == 0
    assert "champion v1 against shadow v2, 6 requests" in text.stdout
    assert "no labels for these requests yet" in text.stdout


def failed_gates() -> dict[str, str]:
    check = mlyard("check", "challenger", "--json")
    assert check.exit_code == 1
    return {g["gate"]: g["detail"] for g in json.loads(check.stdout)["gates"]
            if not g["passed"]}


def test_late_labels_give_both_live_metrics_with_intervals_and_the_gates_judge_them(
        project: Path) -> None:
    ws = open_workspace(project)
    config = Path("mlyard.toml")
    text = config.read_text()  # the shadow gates only (the sample's [gates] ends the file)
    config.write_text(text[:text.index("[gates]")] + "[gates]\nmin_shadow_requests = 20\n"
                      "max_shadow_regression = 0.5\n")
    assert "v2 has not scored live traffic as the shadow of champion v1" in \
        failed_gates()["min_shadow_requests"]
    batches = requests_of(project, [25] * 24)
    with Server(project, "churn@champion", shadow_ref="challenger") as server:
        for rows in batches:
            send(server, rows)
        wait_for(lambda: server.app.state.shadow.scored == len(batches))
    failed = failed_gates()  # enough requests, but nothing labelled yet
    assert list(failed) == ["max_shadow_regression"]
    assert "no labels joined to its shadow predictions yet" in failed["max_shadow_regression"]

    labelled = versions.load_versions(ws).head(25 * 24).select("customer_id", "churned")
    labelled.write_csv("labels.csv")
    assert mlyard("feedback", "labels.csv").exit_code == 0
    frame = versions.load_versions(ws).head(25 * 24)
    truth = frame["churned"].cast(pl.Float64).to_numpy()
    want = {version: evaluate("binary", truth, load_model(ws, str(version)).predict(frame))["auc"]
            for version in (1, 2)}
    [pair] = shadow_json()["comparisons"]
    live = pair["live"]
    assert (live["metric"], live["rows"]) == ("auc", 25 * 24)
    assert live["champion"]["value"] == pytest.approx(want[1])
    assert live["shadow"]["value"] == pytest.approx(want[2])
    assert live["difference"]["value"] == pytest.approx(want[1] - want[2])
    for side in ("champion", "shadow", "difference"):
        assert live[side]["low"] <= live[side]["value"] <= live[side]["high"]

    gates = json.loads(mlyard("check", "challenger", "--json").stdout)
    by_gate = {g["gate"]: g for g in gates["gates"]}
    assert by_gate["min_shadow_requests"]["passed"]
    assert by_gate["min_shadow_requests"]["value"] == len(batches)
    assert by_gate["max_shadow_regression"]["passed"]
    assert by_gate["max_shadow_regression"]["value"] == pytest.approx(want[1] - want[2])
    # A threshold the shadow's live metric does not meet: promotion is refused.
    text = Path("mlyard.toml").read_text().replace("max_shadow_regression = 0.5",
                                                    "max_shadow_regression = -1")
    Path("mlyard.toml").write_text(text)
    refused = mlyard("models", "promote", "challenger")
    assert refused.exit_code == 1
    assert "gate max_shadow_regression failed (live auc on 600 labelled rows" in refused.stderr


def test_the_shadow_follows_its_alias(project: Path) -> None:
    train_json("--param", "num_leaves=8", "--param", "num_iterations=50")  # v3
    with Server(project, "churn@champion", shadow_ref="challenger") as server:
        send(server, requests_of(project, [3])[0])
        shadow = server.app.state.shadow
        wait_for(lambda: shadow.scored == 1)
        assert mlyard("models", "alias", "challenger", "3").exit_code == 0
        wait_for(lambda: shadow.version == 3, what="the shadow swapped to v3")
        send(server, requests_of(project, [3])[0])
        wait_for(lambda: shadow.scored == 2)
    records = shadow_files.read(open_workspace(project).catalog.shadow_dir, "churn")
    assert records.column("version").to_pylist() == [2, 3]
    assert records.column("champion_version").to_pylist() == [1, 1]


def test_a_shadow_that_falls_behind_drops_and_counts_and_never_holds_up_answers(
        project: Path) -> None:
    ws = open_workspace(project)
    shadow = Shadow(ws, "challenger", queue_size=2)
    body = json.dumps({"dataframe_records": requests_of(project, [2])[0]}).encode()
    for number in range(5):  # nothing takes them yet
        shadow.offer(Answered(f"r{number}", 0.0, body, "application/json", "churn", 1, 2,
                              "[0.1, 0.2]", 0.001))
    assert (shadow.dropped, shadow.queued) == (3, 2)
    shadow.start()
    shadow.stop()  # the worker scores what was queued, then ends
    assert (shadow.scored, shadow.failed, shadow.version) == (2, 0, 2)
    records = shadow_files.read(ws.catalog.shadow_dir, "churn")
    assert records.column("request_id").to_pylist() == ["r0", "r1"]


def test_a_shadow_that_dies_leaves_the_champion_answering(project: Path) -> None:
    with Server(project, "churn@champion", shadow_ref="challenger") as server:
        shadow = server.app.state.shadow
        send(server, requests_of(project, [2])[0])
        wait_for(lambda: shadow.scored == 1)
        os.kill(shadow._worker.pid, signal.SIGKILL)  # what a model aborting LightGBM does
        wait_for(lambda: not shadow.alive, what="the server noticed")
        for rows in requests_of(project, [1, 3, 2]):
            assert send(server, rows).headers["x-mlyard-model-version"] == "1"
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "ok" and health["shadow"]["alive"] is False
        wait_for(lambda: shadow.dropped == 3)


def test_a_request_the_shadow_cannot_score_is_recorded_with_why(project: Path) -> None:
    ws = open_workspace(project)
    scorer = ShadowScorer(ModelHolder(ws, "challenger"))
    # A champion that needs fewer columns would answer this; the shadow needs them all.
    rows = requests_of(project, [2])[0]
    for row in rows:
        del row["monthly_charges"]
    header = {"request_id": "r0", "ts": 0.0, "content_type": "application/json",
              "model": "churn", "champion_version": 1, "rows": 2,
              "champion_outputs": "[0.1, 0.2]", "champion_seconds": 0.001}
    record = scorer.score(header, json.dumps({"dataframe_records": rows}).encode())
    assert scorer.failed == 1 and record[8] is None
    assert record[11] is not None and "monthly_charges" in record[11]
    # ... and one it can, with the ids labels will be joined by.
    rows = requests_of(project, [2])[0]
    record = scorer.score(header, json.dumps({"dataframe_records": rows}).encode())
    assert scorer.scored == 1 and json.loads(record[6]) == [r["customer_id"] for r in rows]


def test_serving_with_a_shadow_that_does_not_exist_is_one_line_and_exit_1(
        project: Path) -> None:
    done = mlyard_process("serve", "champion", "--shadow", "nosuch", "--port", "0",
                          cwd=project)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "nosuch" in done.stderr
    with open(project / "mlyard.toml", "a") as config:
        config.write('\n[serve]\nshadow = " "\n')
    done = mlyard_process("serve", "champion", "--port", "0", cwd=project)
    assert done.returncode == 1 and "key serve.shadow: expected a version" in done.stderr


def test_regression_agreement_is_the_mean_and_p95_absolute_difference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = sample_project(tmp_path, "demand")
    monkeypatch.chdir(project)
    assert mlyard("ingest", "data").exit_code == 0
    train_json("--param", "num_leaves=4", "--param", "num_iterations=10")
    train_json("--param", "num_leaves=31", "--param", "num_iterations=100")
    assert mlyard("models", "promote", "1", "--force").exit_code == 0
    ws = open_workspace(project)
    frame = versions.load_versions(ws).head(120).drop("date", "demand")
    with Server(project, "champion", shadow_ref="2") as server:
        for start in range(0, 120, 30):
            send(server, frame.slice(start, 30).to_dicts())
        wait_for(lambda: server.app.state.shadow.scored == 4)
    gaps = np.abs(load_model(ws, "1").predict(frame) - load_model(ws, "2").predict(frame))
    [pair] = shadow_json()["comparisons"]
    assert pair["task"] == "regression" and pair["same_label"] is None
    assert pair["mean_abs_diff"] == pytest.approx(gaps.mean())
    assert pair["p95_abs_diff"] == pytest.approx(np.quantile(gaps, 0.95))
    assert pair["live"] is None  # no id column: labels cannot be joined


def test_multiclass_agreement_is_the_same_class_and_the_probability_gaps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = levels_project(tmp_path)
    monkeypatch.chdir(project)
    assert mlyard("init", "--from", ".", "--target", "level").exit_code == 0
    assert mlyard("ingest", "levels.csv").exit_code == 0
    train_json("--param", "num_leaves=4", "--param", "num_iterations=5")
    train_json("--param", "num_leaves=31", "--param", "num_iterations=80")
    assert mlyard("models", "promote", "1", "--force").exit_code == 0
    ws = open_workspace(project)
    frame = versions.load_versions(ws).head(90).drop("level")
    with Server(project, "champion", shadow_ref="2") as server:
        for start in range(0, 90, 30):
            send(server, frame.slice(start, 30).to_dicts())
        wait_for(lambda: server.app.state.shadow.scored == 3)
    champion, challenger = load_model(ws, "1").predict(frame), load_model(ws, "2").predict(frame)
    assert champion.shape == (90, 3)
    gaps = np.abs(champion - challenger)
    [pair] = shadow_json()["comparisons"]
    assert pair["task"] == "multiclass" and pair["rows"] == 90
    assert pair["same_label"] == pytest.approx(
        (champion.argmax(axis=1) == challenger.argmax(axis=1)).mean())
    assert pair["mean_abs_diff"] == pytest.approx(gaps.mean())
    assert pair["p95_abs_diff"] == pytest.approx(np.quantile(gaps.max(axis=1), 0.95))
    assert 0 < pair["same_label"] < 1  # two models that disagree on some rows


def test_the_shadow_queue_is_bounded_in_bytes_as_well_as_in_requests(project: Path) -> None:
    shadow = Shadow(open_workspace(project), "challenger", queue_bytes=10_000)
    body = json.dumps({"dataframe_records": requests_of(project, [20])[0]}).encode()
    assert 2_000 < len(body) < 10_000
    for number in range(10):  # nothing takes them yet
        shadow.offer(Answered(f"r{number}", 0.0, body, "application/json", "churn", 1, 20,
                              "[]", 0.001))
    assert shadow.queued == 10_000 // len(body) and shadow.dropped == 10 - shadow.queued


def test_a_stuck_shadow_is_degraded_in_health_and_sigterm_still_ends_serve_in_seconds(
        project: Path) -> None:
    """A worker that stops reading (SIGSTOP: alive, silent) once kept `mlyard serve`
    alive through SIGTERM for minutes while /health said ok."""
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "mlyard", "serve", "champion", "--shadow",
                              "challenger", "--port", str(port)], cwd=project,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _health(url) is not None, timeout=120, what="serve to answer")
        [worker] = [child for child in psutil.Process(serve.pid).children(recursive=True)
                    if "shadow_worker" in " ".join(child.cmdline())]
        worker.suspend()
        body = {"dataframe_records": requests_of(project, [200])[0]}
        deadline = time.monotonic() + 120
        while not (_health(url) or {}).get("shadow", {}).get("stuck"):
            assert time.monotonic() < deadline, "the stuck shadow never showed in /health"
            assert httpx.post(f"{url}/invocations", json=body, timeout=30).status_code == 200
        health = _health(url)
        assert health is not None and health["status"] == "degraded", health
        serve.send_signal(signal.SIGTERM)
        started = time.monotonic()
        serve.wait(timeout=60)
        assert time.monotonic() - started < 20  # the stuck worker is killed, not waited on
        assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    finally:
        if serve.poll() is None:
            serve.kill()


def _health(url: str) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = httpx.get(f"{url}/health", timeout=5).json()
        return answer
    except httpx.HTTPError:
        return None
