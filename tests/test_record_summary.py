"""The run screen's reading of a run's reproducibility record: the split, seed, git and
environment typed once, whichever engine wrote the record, and a record it cannot read
shown as missing rather than failing the screen."""

from __future__ import annotations

import json
from pathlib import Path

from mlyard.core.tracking import run_queries
from mlyard.core.tracking.record_summary import read_summary
from mlyard.core.workspace import open_workspace
from tests.conftest import train_json


def test_a_trained_run_shows_its_split_seed_and_environment(churn: Path) -> None:
    trained = train_json("--seed", "7")
    ws = open_workspace()
    record = run_queries.run_documents(ws, run_queries.show_run(ws, trained["run_id"])).record
    assert record is not None and record.seed == 7
    assert record.split.how != "-" and sum(record.split.rows.values()) == 7200
    assert record.environment.python.count(".") == 2
    assert record.environment.packages["lightgbm"]


def test_a_dask_record_and_a_damaged_one() -> None:
    dask = read_summary(json.dumps({"seed": 1, "split": {
        "kind": "hash holdout, random validation", "engine": "dask", "workers": 2}}).encode())
    assert dask is not None and dask.split.how == "hash holdout, random validation"
    assert dask.git is None and dask.split.rows == {}
    assert read_summary(b'{"seed": "not a number"}') is None
    assert read_summary(b"\x00 not json") is None
