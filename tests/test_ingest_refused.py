"""Each bad input is refused with one line naming the file and the problem, a non-zero
exit code, the catalog unchanged, a copy in quarantine and the source file untouched."""

from __future__ import annotations

import gzip
import io
import json
import random
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard


def _replace_header(old: str, new: str) -> Callable[[str], bytes]:
    def make(good: str) -> bytes:
        header, rest = good.split("\n", 1)
        return (",".join(new if c == old else c for c in header.split(",")) + "\n" + rest).encode()
    return make


def _drop_column(name: str) -> Callable[[str], bytes]:
    def make(good: str) -> bytes:
        frame = pl.read_csv(io.StringIO(good), infer_schema=False)
        return frame.drop(name).write_csv().encode()
    return make


def _set_values(column: str, value: Callable[[int, str], str]) -> Callable[[str], bytes]:
    def make(good: str) -> bytes:
        frame = pl.read_csv(io.StringIO(good), infer_schema=False)
        cells = [value(i, v) for i, v in enumerate(frame.get_column(column).to_list())]
        return frame.with_columns(pl.Series(column, cells, pl.String)).write_csv().encode()
    return make


def _drop_last_field(good: str, line: int) -> bytes:
    lines = good.split("\n")
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0]
    return "\n".join(lines).encode()


def _truncated_parquet(good: str) -> bytes:
    buffer = io.BytesIO()
    pl.read_csv(io.StringIO(good)).write_parquet(buffer)
    return buffer.getvalue()[:-100]


CASES: dict[str, tuple[str, Callable[[str], bytes], str]] = {
    "renamed column": ("x.csv", _replace_header("tenure_months", "tenure_mths"),
                       "missing column 'tenure_months' (renamed to 'tenure_mths'?)"),
    "missing column": ("x.csv", _drop_column("region"), "missing column 'region'"),
    "retyped column": ("x.csv", _set_values("monthly_charges", lambda i, v: "high"),
                       "column 'monthly_charges' (contract type float)"),
    "yes/no recoded as 1/0": ("x.csv",
                              _set_values("has_partner", lambda i, v: "1" if v == "yes" else "0"),
                              "100% of its values are levels the contract has never seen "
                              "('0' (159 rows), '1' (141 rows); known: 'no', 'yes') - were "
                              "the values recoded?"),
    "negative count": ("x.csv", _set_values("tenure_months", lambda i, v: "-3" if i == 4 else v),
                       "below the contract's min 0 (row 5: '-3')"),
    "too many missing": ("x.csv", _set_values("age", lambda i, v: "" if i % 3 == 0 else v),
                         "column 'age' is 34.3% missing (103 of 300 rows); "
                         "the contract allows at most 9%"),
    "infinite value": ("x.csv", _set_values("monthly_charges", lambda i, v: "inf" if i == 2 else v),
                       "not a finite number: row 3: 'inf'"),
    "fraction in int column": ("x.csv", _set_values("age", lambda i, v: "41.5" if i == 0 else v),
                               "not a whole number: row 1: '41.5'"),
    "missing target": ("x.csv", _set_values("churned", lambda i, v: "" if i == 0 else v),
                       "column 'churned' is 0.3% missing"),
    "header only": ("x.csv", lambda good: good.split("\n", 1)[0].encode() + b"\n",
                    "has a header but no data rows"),
    "zero bytes": ("x.csv", lambda good: b"", "empty file (0 bytes)"),
    "cut mid-row": ("x.csv", lambda good: good.encode()[: len(good) - 30],
                    "cut off mid-row at line 301"),
    "short row inside": ("x.csv", lambda good: _drop_last_field(good, line=10),
                         "line 10 has 12 fields, the header has 13"),
    "latin-1 bytes": ("x.csv", lambda good: good.replace("north", "n\u00f6rth").encode("latin-1"),
                      "not UTF-8 (invalid byte at offset"),
    "utf-16 bytes": ("x.csv", lambda good: good.encode("utf-16"), "UTF-16 encoded"),
    "duplicate header": ("x.csv", _replace_header("region", "contract"),
                         "duplicate column name 'contract' (columns 4 and 11)"),
    "binary garbage": ("x.csv", lambda good: random.Random(7).randbytes(4096),
                       "not UTF-8 text"),
    "gzip named .csv": ("x.csv", lambda good: gzip.compress(good.encode()), "gzip-compressed"),
    "truncated parquet": ("x.parquet", _truncated_parquet, "truncated Parquet file"),
    "text named .parquet": ("x.parquet", lambda good: good.encode()[:999], "not a Parquet file"),
    "unsupported type": ("x.xlsx", lambda good: b"PK\x03\x04", "unsupported file type '.xlsx'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_is_refused_and_quarantined(churn_project: Path, good_csv: str,
                                             case: str) -> None:
    (churn_project / "data" / "good.csv").write_text(good_csv)
    assert mlyard("ingest", "data/good.csv").exit_code == 0
    name, make, expected = CASES[case]
    bad = churn_project / "data" / name
    content = make(good_csv)
    bad.write_bytes(content)
    mtime = bad.stat().st_mtime_ns

    result = mlyard("ingest", str(bad))

    assert result.exit_code == 1
    message = result.stderr.strip()
    assert "\n" not in message, message
    assert str(bad) in message and expected in message, message
    assert bad.read_bytes() == content and bad.stat().st_mtime_ns == mtime
    ws = open_workspace()
    versions = mlyard("data", "list", "--json")
    assert [v["version"] for v in json.loads(versions.stdout)] == ["churn:v1"]
    copies = [p for p in ws.quarantine_dir.iterdir() if not p.name.endswith(".reason.json")]
    assert len(copies) == 1 and copies[0].read_bytes() == content
    reason = json.loads(copies[0].with_name(copies[0].name + ".reason.json").read_text())
    assert expected in reason["reason"] and reason["source"] == str(bad)


def test_refused_file_among_good_ones_does_not_stop_the_others(churn_project: Path,
                                                               good_csv: str) -> None:
    (churn_project / "data" / "a.csv").write_text(good_csv)
    (churn_project / "data" / "b.csv").write_bytes(b"")
    (churn_project / "data" / "c.csv").write_text(good_csv.replace(",north,", ",south,"))
    result = mlyard("ingest", "--json", "data")
    assert result.exit_code == 1
    statuses = [item["status"] for item in json.loads(result.stdout)]
    assert statuses == ["ingested", "refused", "ingested"]


def test_missing_path_is_an_error_without_quarantine(churn_project: Path) -> None:
    result = mlyard("ingest", "data/nope.csv")
    assert result.exit_code == 1 and "nope.csv: not found" in result.stderr
    assert not (churn_project / ".mlyard" / "quarantine").exists()
