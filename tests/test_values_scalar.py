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

from mlyard.core.data.values import FAILED, MISSING, parse_column, plain_numbers, scalar_reader
from mlyard.core.models.features import Feature, FeatureSpec, encode
from mlyard.core.serving.request import (
    JsonRows,
    ScoringRejected,
    rows_frame,
    small_request,
    typed_features,
)
from mlyard.core.serving.row_reader import RowReader
from tests.conftest import examples

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
    series = rows_frame(JsonRows.of([{"x": value}]), ["x"]).get_column("x")
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


@settings(max_examples=examples(400), deadline=None)
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


@settings(max_examples=examples(300), deadline=None)
@given(columns=st.fixed_dictionaries({name: st.lists(VALUES, min_size=3, max_size=3)
                                      for name in ("n", "x", "b", "c")}))
def test_a_small_request_reads_as_the_column_path_does(columns: dict[str, list[Any]]) -> None:
    rows = [{name: values[i] for name, values in columns.items()} for i in range(3)]
    for row in rows:  # JSON integers past 64 bits travel as text in both paths
        for name, value in row.items():
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
                row[name] = str(value)
    by_column = JsonRows(columns={name: [row[name] for row in rows] for name in columns})
    try:
        typed = typed_features(rows_frame(JsonRows.of(rows), SPEC.names), SPEC)
    except ScoringRejected as column_refusal:
        for sent in (JsonRows.of(rows), by_column):
            with pytest.raises(ScoringRejected) as small_refusal:
                small_request(sent, SPEC)
            assert small_refusal.value.msg == column_refusal.msg
        return
    for sent in (JsonRows.of(rows), by_column):  # an object per row, or a list per column
        # Every feature a key (a segment): kept as the text the larger requests' frame
        # path keeps for it.
        matrix, logged, keys = small_request(sent, SPEC, tuple(SPEC.names))
        assert np.array_equal(matrix, encode(typed, SPEC), equal_nan=True)
        assert json.loads(logged) == json.loads(typed.write_json())
        assert list(keys) == [typed.get_column(name).cast(pl.String).to_list()
                              for name in SPEC.names]


NUMERIC_SPEC = FeatureSpec([Feature("n", "int"), Feature("x", "float"),
                            Feature("c", "category", ["a", "b", " ", "1"], closed=False)],
                           "y", "int", None, {})


@settings(max_examples=examples(400), deadline=None)
@given(row=st.fixed_dictionaries({  # values the reader takes as often as any others
    "n": st.one_of(st.integers(-2**63, 2**63), st.none(), VALUES),
    "x": st.one_of(st.floats(), st.integers(-2**64, 2**64), st.none(), VALUES),
    "c": st.one_of(st.sampled_from(["a", "b", " ", "1", None]), VALUES),
    "id": st.one_of(st.text(max_size=5), VALUES),
    "seg": st.one_of(st.text(max_size=5), VALUES)}),  # a segment, logged as sent
    drop=st.sampled_from([None, "n", "x", "c", "id", "seg"]))
def test_the_one_row_reader_reads_as_the_rules_do(row: dict[str, Any], drop: str | None) -> None:
    if drop is not None:
        del row[drop]
    for name, value in row.items():  # JSON integers past 64 bits travel as text
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            row[name] = str(value)
    keys = ("id", "seg", "c", "x")  # the id, a segment, two features that are segments
    fast = RowReader(NUMERIC_SPEC, keys).read(row)
    if fast is None:
        return  # the server takes small_request itself
    matrix, logged, kept = small_request(JsonRows.of([row]), NUMERIC_SPEC, keys)
    assert np.array_equal(fast[0], matrix, equal_nan=True)
    assert fast[1] == logged
    assert list(map(list, fast[2])) == list(map(list, kept))  # each key's rows' values


@settings(max_examples=examples(300), deadline=None)
@given(row=st.fixed_dictionaries({
    "n": st.one_of(st.integers(-2**63 + 1, 2**63 - 1), st.none()),
    "x": st.one_of(st.floats(allow_infinity=False), st.integers(-2**63 + 1, 2**63 - 1),
                   st.none()),
    "c": st.sampled_from(["a", "b", "1", None]), "id": st.text(max_size=5)}))
def test_plain_rows_are_read_fast_and_as_the_rules_read_them(row: dict[str, Any]) -> None:
    fast = RowReader(NUMERIC_SPEC, ("id",)).read(row)
    assert fast is not None
    matrix, logged, keys = small_request(JsonRows.of([row]), NUMERIC_SPEC, ("id",))
    assert np.array_equal(fast[0], matrix, equal_nan=True)
    assert fast[1] == logged
    assert list(map(list, fast[2])) == list(map(list, keys)) == [[row["id"]]]


def test_plain_rows_take_the_one_row_reader() -> None:
    reader = RowReader(NUMERIC_SPEC, ("id",))
    for row in ({"n": 3, "x": 1.5, "c": "a", "id": "k1"}, {"n": None, "x": 2, "c": None},
                {"n": -7, "x": float("nan"), "c": "b", "extra": [1]}):
        assert reader.read(row) is not None, row
    for row in ({"n": "3", "x": 1.5, "c": "a"}, {"n": 3, "x": 1.5, "c": "new"},
                {"n": 3, "x": 1.5, "c": " "}, {"n": 3, "x": float("inf"), "c": "a"},
                {"n": 3, "c": "a"}, {"n": 3, "x": 1.5, "c": "a", "id": 12}):
        assert reader.read(row) is None, row  # the rules read these, or refuse them
    with_bool = FeatureSpec([*NUMERIC_SPEC.features, Feature("b", "bool")], "y", "int", None,
                            {})
    assert RowReader(with_bool).read({"n": 3, "x": 1.5, "c": "a", "b": True}) is None


DATE_TEXT = st.sampled_from(["2024-03-01", " 2024-03-01 ", "2024-03-01 10:00", "01/03/2024",
                             "2024-02-30", "", "  ", "NA", "null", "x"])


@settings(max_examples=examples(400), deadline=None)
@given(kind=st.sampled_from(["int", "float", "bool", "category", "string", "date",
                             "datetime"]),
       values=st.lists(st.one_of(VALUES, DATE_TEXT), min_size=1, max_size=6),
       as_text=st.booleans(), closed=st.booleans())
def test_a_missing_cell_is_never_typed_and_staged_reading_reads_the_same(
        kind: str, values: list[Any], as_text: bool, closed: bool) -> None:
    """The contract counts the values that do not fit as untyped cells less missing ones,
    and reads numbers from text through working columns: both rest on this."""
    values = [str(v) if isinstance(v, int) and abs(v) >= 2**63 else v for v in values]
    series = pl.Series("x", [None if v is None else str(v) for v in values], pl.String) \
        if as_text else rows_frame(JsonRows.of([{"x": v} for v in values]), ["x"]).get_column("x")
    frame = pl.DataFrame([series])
    inline = parse_column("x", kind, series.dtype, levels=LEVELS, closed=closed)
    staged = parse_column("x", kind, series.dtype, levels=LEVELS, closed=closed, staged=True)

    def read(parsed: Any) -> pl.DataFrame:
        worked = frame.with_columns([e.alias(n) for n, e in parsed.work.items()]) \
            if parsed.work else frame
        return worked.select(parsed.typed.alias("typed"), parsed.missing.alias("missing"),
                             *[mask.alias(text) for text, mask in parsed.notes.items()])

    assert inline.work == {}
    assert (staged.work != {}) == (kind in {"int", "float"} and not series.dtype.is_numeric())
    once, twice = read(inline), read(staged)
    assert once.equals(twice), (kind, values, once, twice)
    assert not once.filter(pl.col("missing") & pl.col("typed").is_not_null()).height, \
        (kind, values, once)


@settings(max_examples=examples(300), deadline=None)
@given(texts=st.lists(st.one_of(
    st.integers(-2**70, 2**70).map(str), st.floats().map(str),
    st.sampled_from(["", " 7", "3.0", "1,234", "+5", "NA", "nan", "inf", "-0", "1e3",
                     "0x10", "٣", "1_000"]), st.none()), min_size=1, max_size=12),
    kind=st.sampled_from(["int", "float"]))
def test_plain_numbers_read_as_the_rules_do(texts: list[str | None], kind: str) -> None:
    """Labels of plain numbers skip the rules (a tenth of the time); whenever they do,
    every value reads exactly as the rules read it."""
    values = pl.Series("label", texts, dtype=pl.String)
    plain = plain_numbers(values, kind)
    if plain is None:
        return
    parsed = parse_column("label", kind, pl.String)
    ruled = values.to_frame().select(parsed.typed, parsed.failed().alias("failed"))
    assert not ruled.get_column("failed").any()
    assert plain.to_list() == ruled.get_column("label").to_list()
