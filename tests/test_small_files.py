"""A burst of small files is checked in groups (core/data/small_files.py), and every
file's outcome is exactly what ingesting it alone gives: its version, snapshot, profile
and warnings, or its refusal, word for word."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlyard.core.data import small_files
from mlyard.core.data.ingest import FileOutcome, ingest_files
from mlyard.core.data.versions import current_contract
from mlyard.core.errors import IngestRefused
from mlyard.core.workspace import open_workspace
from tests.conftest import examples

CONFIG = """
[data]
target = "label"
id_column = "row_id"
[data.columns.row_id]
type = "int"
[data.columns.amount]
type = "float"
max_null_rate = 1
max = 1000  # inferred: advice only
[data.columns.count]
type = "int"
max_null_rate = 0.5
min = 0
strict = true
[data.columns.colour]
type = "category"
categories = ["red", "green", "blue"]
[data.columns.label]
type = "int"
"""
HEADER = ["row_id", "amount", "count", "colour", "label"]

cells = {
    "row_id": st.integers(-5, 40).map(str),
    "amount": st.one_of(st.floats(-1e4, 1e4, allow_nan=False).map(repr), st.just(""),
                        st.just("abc")),
    "count": st.one_of(st.integers(-3, 10**12).map(str), st.just("")),
    "colour": st.sampled_from(["red", "green", "blue", "purple", ""]),
    "label": st.sampled_from(["0", "1", "1", "0", "2"]),
}


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """A small CSV of the contract's columns, in a shape real uploads have: reordered,
    with an extra or a missing column, header only, or cut mid-row."""
    columns = list(HEADER)
    shape = draw(st.sampled_from(["plain"] * 6 + ["reordered", "extra", "missing",
                                                  "header only", "cut"]))
    if shape == "reordered":
        columns = columns[::-1]
    elif shape == "extra":
        columns.append("note")
    elif shape == "missing":
        columns.remove("amount")
    rows = 0 if shape == "header only" else draw(st.integers(1, 12))
    lines = [",".join(columns)]
    for _ in range(rows):
        lines.append(",".join(draw(cells.get(c, st.just("x"))) for c in columns))
    text = "\n".join(lines) + "\n"
    if shape == "cut":
        text = text[:draw(st.integers(len(lines[0]) + 2, max(len(lines[0]) + 2,
                                                            len(text) - 2)))]
    return text


def outcome_of(file: FileOutcome) -> object:
    """What a user sees of a file's outcome (the paths are the same files)."""
    if isinstance(file.outcome, IngestRefused):
        return ("refused", file.outcome.msg)
    version = file.outcome.version
    return ("version" if file.outcome.created else "existing", version.seq,
            version.snapshot_hash, version.rows, version.contract_hash,
            Close(msgspec.to_builtins(version.profile)), file.outcome.warnings)


class Close:
    """A profile compared figure by figure; a float's last bit may differ, as a grouped
    standard deviation sums in another order (1.5275252316519465 against ...468)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Close) and _close(self.value, other.value)

    def __repr__(self) -> str:
        return repr(self.value)


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=examples(25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(csv_texts(), min_size=2, max_size=9),
       copies=st.lists(st.integers(0, 8), max_size=2))
def test_files_checked_together_end_as_each_would_alone(texts: list[str],
                                                        copies: list[int]) -> None:
    texts += [texts[i % len(texts)] for i in copies]  # the same bytes again, later
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        incoming = root / "incoming"
        incoming.mkdir()
        paths = []
        for index, text in enumerate(texts):
            path = incoming / f"part-{index:02d}.csv"
            path.write_text(text)
            paths.append(path)
        seen = {}
        for name, alone in (("together", False), ("alone", True)):
            (root / name).mkdir()
            (root / name / "mlyard.toml").write_text(CONFIG)
            ws = open_workspace(root / name)
            if alone:
                seen[name] = [outcome_of(o) for p in paths for o in ingest_files(ws, [p])]
            else:
                seen[name] = [outcome_of(o) for o in ingest_files(ws, paths)]
        assert seen["together"] == seen["alone"]
        assert [p.read_text() for p in paths] == texts  # the user's files untouched


def test_files_of_one_shape_are_checked_together_and_the_odd_one_alone(
        tmp_path: Path) -> None:
    (tmp_path / "mlyard.toml").write_text(CONFIG)
    ws = open_workspace(tmp_path)
    rows = "1,2.5,3,red,0\n2,-1.5,4,blue,1\n"
    files = {"a.csv": ",".join(HEADER) + "\n" + rows,
             "b.csv": ",".join(HEADER) + "\n" + rows.replace("red", "green"),
             "c.csv": ",".join(reversed(HEADER)) + "\n0,red,3,2.5,1\n",
             "d.csv": ",".join(HEADER) + "\n" + "3,x,1,red,0\n"}
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    found = small_files.group(paths, ws.config.data, "binary", current_contract(ws))
    assert sorted(found.checked) == [0, 1, 3]  # c.csv's columns are in another order
    assert found.checked[0].rows is not None and found.checked[0].rows.height == 2
    assert found.checked[3].rows is None  # 'x' is not a number: the refusal is its own
    assert set(found.sniffed) == {0, 1, 2, 3}


def test_snapshots_written_from_memory_have_the_bytes_a_written_file_has(
        tmp_path: Path) -> None:
    """A version re-checked after a contract change, or a twin of an earlier one, is
    found by its snapshot's hash: bytes written from memory must be those the file
    writers give (and gave before this path existed)."""
    import polars as pl
    import pyarrow.parquet as pq

    from mlyard.core.data.snapshot import _parquet_bytes

    rows = pl.DataFrame({"id": [3, -1, 2], "x": [0.5, None, -2.0], "c": ["a", None, "b"]})
    with pq.ParquetWriter(tmp_path / "w.parquet", rows.to_arrow().schema,
                          compression="zstd") as writer:  # as a file of one batch
        writer.write_table(rows.to_arrow())
    assert _parquet_bytes(rows, False) == (tmp_path / "w.parquet").read_bytes()
    rows.write_parquet(tmp_path / "p.parquet", compression="zstd")  # as a deduplicated one
    assert _parquet_bytes(rows, True) == (tmp_path / "p.parquet").read_bytes()
