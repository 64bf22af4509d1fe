"""Property: any frame that polars writes as CSV ingests back to the same values, and a
file either becomes a version or is refused with IngestRefused, never anything else."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import msgspec
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlyard.core.data import versions
from mlyard.core.data.ingest import ingest_file
from mlyard.core.errors import IngestRefused
from mlyard.core.workspace import open_workspace
from tests.conftest import examples

CATEGORIES = ["red", "green", "blue"]


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.integers(min_value=1, max_value=40))
    floats = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64,
                                            min_value=-1e12, max_value=1e12))
    ints = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))
    return pl.DataFrame({
        "row_id": list(range(rows)),
        "amount": draw(st.lists(floats, min_size=rows, max_size=rows)),
        "count": draw(st.lists(ints, min_size=rows, max_size=rows)),
        "colour": draw(st.lists(st.sampled_from(CATEGORIES), min_size=rows, max_size=rows)),
        "label": draw(st.lists(st.sampled_from([0, 1]), min_size=rows, max_size=rows)),
    }, schema={"row_id": pl.Int64, "amount": pl.Float64, "count": pl.Int64,
               "colour": pl.String, "label": pl.Int64})


CONFIG = """
[data]
target = "label"
id_column = "row_id"
[data.columns.row_id]
type = "int"
[data.columns.amount]
type = "float"
max_null_rate = 1
[data.columns.count]
type = "int"
max_null_rate = 1
[data.columns.colour]
type = "category"
categories = ["red", "green", "blue"]
[data.columns.label]
type = "int"
"""


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames())
def test_written_frames_ingest_back_unchanged(frame: pl.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "mlyard.toml").write_text(CONFIG)
        path = project / "batch.csv"
        frame.write_csv(path)
        ws = open_workspace(project)
        result = ingest_file(ws, path)
        assert result.version.rows == frame.height
        assert versions.load_version(ws, result.version.ref).equals(frame)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(min_size=0, max_size=300),
       header=st.sampled_from([b"", b"row_id,amount,count,colour,label\n"]))
def test_arbitrary_bytes_are_ingested_or_refused_cleanly(content: bytes, header: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "mlyard.toml").write_text(CONFIG)
        path = project / "batch.csv"
        path.write_bytes(header + content)
        ws = open_workspace(project)
        try:
            result = ingest_file(ws, path)
        except IngestRefused as refusal:
            assert str(path) in refusal.msg and "\n" not in refusal.msg
            assert len(versions.list_versions(ws)) == 0
        else:
            snapshot = versions.load_version(ws, result.version.ref)
            assert snapshot.columns == ["row_id", "amount", "count", "colour", "label"]
        assert path.read_bytes() == header + content


def test_a_column_of_one_huge_value_is_profiled() -> None:
    """Found by the property test above: numpy cannot cut 562949953421312 +- 0.5 into
    twelve bins; the profile still comes out, everything in the first bin."""
    import numpy as np

    from mlyard.core.data.histograms import histograms

    assert histograms([np.array([562949953421312.0])]) == [[1] + [0] * 11]


@given(frames())
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_small_version_is_profiled_as_a_large_one_would_be(frame: pl.DataFrame) -> None:
    """Small snapshots are profiled in memory, large ones streamed: the same profile."""
    from mlyard.core.data import profile

    types = {"row_id": "int", "amount": "float", "count": "int", "colour": "category",
             "label": "int"}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "snapshot.parquet"
        frame.with_columns(pl.col("colour").cast(pl.String)).write_parquet(path)
        in_memory = profile.profile_parquet(path, types, frame)
        read_back = profile.profile_parquet(path, types)
        original = profile.IN_MEMORY_ROWS
        profile.IN_MEMORY_ROWS = 0
        try:
            streamed = profile.profile_parquet(path, types)
        finally:
            profile.IN_MEMORY_ROWS = original

    def same(a: object, b: object, scale: float = 0.0) -> bool:
        # Sums in another order may differ in the last bits of a float: relative to the
        # column's largest value when values cancel (9e18 + 1e10 - 9e18).
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 + scale * 1e-12)
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k], scale) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y, scale) for x, y in zip(a, b, strict=True))
        return a == b

    for other in (read_back, streamed):
        for column, entry in in_memory.items():
            low, high = entry.min, entry.max
            scale = max(abs(low or 0.0), abs(high or 0.0)) \
                if isinstance(low, float) and isinstance(high, float) else 0.0
            assert same(msgspec.to_builtins(entry), msgspec.to_builtins(other[column]), scale), \
                (column, entry, other[column])
