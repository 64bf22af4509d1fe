"""Quarantine a person can manage: `mlyard data quarantine` lists each refused file with
its reason, an entry is resolved once the same source is ingested, and `--clear` removes
the resolved copies only (never the user's file, never an open entry)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import mlyard


def test_a_refused_file_is_listed_resolved_by_its_fix_and_cleared(churn_project: Path,
                                                                  good_csv: str) -> None:
    source = churn_project / "data" / "march.csv"
    other = churn_project / "data" / "april.csv"
    source.write_text("customer_id,tenure\nC1,3\n")
    other.write_text("customer_id\nC2\n")
    assert mlyard("ingest", str(source)).exit_code == 1
    assert mlyard("ingest", str(other)).exit_code == 1

    listed = json.loads(mlyard("data", "quarantine", "--json").stdout)
    assert {Path(e["source"]).name for e in listed} == {"march.csv", "april.csv"}
    assert all(e["resolved_by"] is None and "missing column" in e["reason"] for e in listed)
    table = mlyard("data", "quarantine")
    assert table.exit_code == 0 and "march.csv" in table.stdout and "open" in table.stdout

    source.write_text(good_csv)  # fixed at the source, ingested again
    assert mlyard("ingest", str(source)).exit_code == 0
    listed = {Path(e["source"]).name: e for e in
              json.loads(mlyard("data", "quarantine", "--json").stdout)}
    assert listed["march.csv"]["resolved_by"] == "churn:v1"
    assert listed["april.csv"]["resolved_by"] is None

    cleared = json.loads(mlyard("data", "quarantine", "--clear", "--json").stdout)
    assert [Path(e["source"]).name for e in cleared] == ["march.csv"]
    assert not Path(cleared[0]["copy"]).exists()
    left = json.loads(mlyard("data", "quarantine", "--json").stdout)
    assert [Path(e["source"]).name for e in left] == ["april.csv"]
    assert Path(left[0]["copy"]).exists() and other.exists() and source.read_text() == good_csv
    assert mlyard("data", "quarantine", "--clear").stdout.strip() == "cleared 0 resolved entries"


def test_an_empty_quarantine_says_so(churn_project: Path) -> None:
    result = mlyard("data", "quarantine")
    assert result.exit_code == 0 and result.stdout.strip() == "no files in quarantine"
