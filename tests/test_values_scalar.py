"""The server's one-value-at-a-time reader and the column reader ingest and `mlyard
predict` use are one set of rules: on generated JSON values of every kind, both give the
same typed value, or both call it missing, or both refuse it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlyard.core.data.values import FAILED, MISSING, parse_column, scalar_reader
from mlyard.core.models.features import Feature, FeatureSpec, encode
from mlyard.core.serving.request import (
    ScoringRejected,
    _json_column,
    small_request,
    typed_features,
)

NUMBER_TEXT = st.sampled_from(["7", " 7 ", "7.0", "-2.5", "+5", "1e3", ".5", "5.", "1,000",
                               "1,234.50", "12,34", "9.7", "NaN", "NA", "null", "", "  ",
                               "forty", "inf", "-inf", "Infinity", "0x10", "1_000", "007",
                               "1e400", "99999999999999999999", "true", "yes", "0", "1"])
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), NUMBER_TEXT,
    st.sampled_from(["a", "b", "c", " a", "yes", "No", "T", "n", "2", "x"]),
)
LEVELS = ["a", "b", "1", "true"]


def column_result(kind: str, value: Any, closed: bool) -> Any:
    series = _json_column("x", [{"x": value}])
    parsed = parse_column("x", kind, series.dtype, levels=LEVELS, closed=closed)
    typed, failed, missing = pl.DataFrame([series]).select(
        parsed.typed.alias("t"), parsed.failed().alias("f"), parsed.missing.alias("m")).row(0)
    if failed:
        return FAILED
    return MISSING if typed is None else typed


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a is b if a in (MISSING, FAILED) or b in (MISSING, FAILED) else a == b


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["int", "float", "bool", "category"]), value=VALUES,
       closed=st.booleans())
def test_one_value_reads_as_its_column_would(kind: str, value: Any, closed: bool) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        value = str(value)  # a JSON integer past 64 bits travels as text in both paths
    reader = scalar_reader(kind, LEVELS, closed)
    assert reader is not None
    mine, theirs = reader(value), column_result(kind, value, closed)
    assert same(mine, theirs), (kind, value, mine, theirs)


SPEC = FeatureSpec([Feature("n", "int"), Feature("x", "float"), Feature("b", "bool"),
                    Feature("c", "category", LEVELS, closed=False)], "y", "int", None, {})


@settings(max_examples=300, deadline=None)
@given(columns=st.fixed_dictionaries({name: st.lists(VALUES, min_size=3, max_size=3)
                                      for name in ("n", "x", "b", "c")}))
def test_a_small_request_reads_as_the_column_path_does(columns: dict[str, list[Any]]) -> None:
    rows = [{name: values[i] for name, values in columns.items()} for i in range(3)]
    for row in rows:  # JSON integers past 64 bits travel as text in both paths
        for name, value in row.items():
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
                row[name] = str(value)
    try:
        typed = typed_features(pl.DataFrame([_json_column(n, rows) for n in SPEC.names]), SPEC)
    except ScoringRejected as column_refusal:
        with pytest.raises(ScoringRejected) as small_refusal:
            small_request(rows, SPEC, None)
        assert small_refusal.value.msg == column_refusal.msg
        return
    matrix, logged = small_request(rows, SPEC, None)
    assert np.array_equal(matrix, encode(typed, SPEC), equal_nan=True)
    assert json.loads(logged) == json.loads(typed.write_json())
