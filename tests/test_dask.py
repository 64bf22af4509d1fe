"""Training and scoring on a real `distributed.LocalCluster`: two worker processes on
127.0.0.1, started by the test."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mlyard.core.data import versions
from mlyard.core.models.loading import load_model
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, train_json

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as running:
        yield running


@pytest.fixture
def project(churn: Path) -> Path:
    config = churn / "mlyard.toml"
    config.write_text(config.read_text().replace(
        "[train]\n", "[train]\nnum_boost_round = 150\nearly_stopping_rounds = 1000\n", 1))
    return churn


def test_a_dask_trained_model_matches_the_local_one_in_quality(
        project: Path, cluster: distributed.LocalCluster) -> None:
    local = train_json()
    result = mlyard("train", "--json", "--cluster", cluster.scheduler_address)
    assert result.exit_code == 0, result.stderr
    remote = json.loads(result.stdout)
    assert remote["model_version"] == local["model_version"] + 1  # an ordinary version
    assert abs(remote["metrics"]["auc"] - local["metrics"]["auc"]) < 0.03
    ws = open_workspace()
    model = load_model(ws, str(remote["model_version"]))
    assert model.card.metrics["holdout.auc"] == remote["metrics"]["auc"]
    from mlyard.core.tracking import run_queries

    detail = run_queries.show_run(ws, remote["run_id"])
    assert detail.run.tags["mlyard.engine"] == "dask"
    assert detail.metric_points["valid.auc"] == 150  # every iteration tracked


def test_a_dask_trained_model_has_the_holdouts_figures_per_segment(
        project: Path, cluster: distributed.LocalCluster) -> None:
    """Segment columns travel beside the encoded features on the workers: the model's
    holdout figures per group, each holdout row in one group, as local training's."""
    config = project / "mlyard.toml"
    config.write_text(config.read_text() + '\n[monitor]\nsegments = ["region", '
                      '["contract", "has_partner"]]\n')
    local = train_json()
    result = mlyard("train", "--json", "--cluster", cluster.scheduler_address)
    assert result.exit_code == 0, result.stderr
    remote = json.loads(result.stdout)
    shown = {version: json.loads(mlyard("models", "show", str(version), "--json").stdout)
             for version in (local["model_version"], remote["model_version"])}
    groups = {version: {(g["segment"], g["group"]): g for g in detail["segments"]["groups"]}
              for version, detail in shown.items()}
    ours, theirs = groups[local["model_version"]], groups[remote["model_version"]]
    assert set(theirs) == set(ours)
    assert {key for key in theirs if key[0] == "region"} == {
        ("region", name) for name in ("east", "north", "south", "west")}
    assert ("contract+has_partner", "month-to-month, yes") in theirs
    for segment in ("region", "contract+has_partner"):  # the same holdout rows
        counted = sum(g["rows"] for key, g in theirs.items() if key[0] == segment)
        assert counted == sum(g["rows"] for key, g in ours.items() if key[0] == segment)
    for key, group in theirs.items():  # two fits of one model: close, group by group
        if group["rows"] >= 200:  # AUC on fewer rows moves more between two fits
            assert abs(group["metrics"]["auc"] - ours[key]["metrics"]["auc"]) < 0.1, key


def test_dask_predict_equals_local_predict(project: Path,
                                           cluster: distributed.LocalCluster) -> None:
    train_json()
    source = project / "data" / "churn_2026_02.csv"
    assert mlyard("predict", "1", str(source), "-o", "local.parquet").exit_code == 0
    result = mlyard("predict", "1", str(source), "-o", "remote.parquet", "--cluster",
                    cluster.scheduler_address)
    assert result.exit_code == 0, result.stderr
    local, remote = pl.read_parquet("local.parquet"), pl.read_parquet("remote.parquet")
    assert local.columns == remote.columns and local.height == remote.height == 3600
    assert np.allclose(local["prediction"].to_numpy(), remote["prediction"].to_numpy())


def test_a_worker_killed_mid_predict_is_survived_or_reported(
        project: Path, tmp_path: Path) -> None:
    train_json()
    ws = open_workspace()
    big = pl.concat([versions.load_versions(ws)] * 30)  # ~216k rows: many batches
    source = tmp_path / "big.parquet"
    big.write_parquet(source)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=50) as own:
        pids = [w.process.pid for w in own.workers.values()]  # type: ignore[union-attr]
        killed, fired = threading.Event(), threading.Event()

        def kill_once_writing_started() -> None:  # mid-predict: a batch is already written
            while not (project / "out.parquet.partial").exists():
                if killed.wait(0.005):
                    return
            os.kill(pids[0], signal.SIGKILL)
            fired.set()
            killed.set()

        killer = threading.Thread(target=kill_once_writing_started)
        killer.start()
        result = mlyard("predict", "1", str(source), "-o", "out.parquet", "--cluster",
                        own.scheduler_address)
        killed.set()
        killer.join()
    assert fired.is_set(), "the worker was not killed while scoring"
    output = project / "out.parquet"
    if result.exit_code == 0:  # the scheduler reran the lost batches elsewhere
        scored = pl.read_parquet(output)
        assert scored.height == big.height
        expected = load_model(ws, "1").predict(big.head(1000))
        assert np.allclose(scored["prediction"].to_numpy()[:1000], expected)
    else:  # or it said so, and wrote nothing
        assert "nothing written" in result.stderr and not output.exists()
    assert not (project / "out.parquet.partial").exists()


def test_without_a_scheduler_address_the_message_says_what_to_set(project: Path) -> None:
    config = project / "mlyard.toml"
    config.write_text(config.read_text() + '\n[compute]\nengine = "dask"\n')
    result = mlyard("train")
    assert result.exit_code == 2 and "[compute] address" in result.stderr
    unreachable = mlyard("train", "--cluster", "tcp://127.0.0.1:9")
    assert unreachable.exit_code == 2 and "cannot reach the Dask scheduler" in unreachable.stderr


def test_without_the_dask_extra_the_message_says_what_to_install(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    result = mlyard("train", "--cluster", "tcp://127.0.0.1:8786")
    assert result.exit_code == 2 and "pip install 'mlyard[dask]'" in result.stderr


def test_the_pipeline_trains_on_the_cluster_compute_names(
        project: Path, cluster: distributed.LocalCluster) -> None:
    config = project / "mlyard.toml"
    config.write_text(config.read_text() + f'\n[compute]\nengine = "dask"\n'
                      f'address = "{cluster.scheduler_address}"\n')
    result = mlyard("pipeline", "run", "train", "--no-ingest", "--json")
    assert result.exit_code == 0, result.stderr
    from mlyard.core.tracking import run_queries

    run_id = json.loads(result.stdout)["run_id"]
    assert run_queries.show_run(open_workspace(), run_id).run.tags["mlyard.engine"] == "dask"
