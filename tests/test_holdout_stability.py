"""Property: holdout membership is a function of a row's identity. A row held out once
is held out in every later training, whatever arrived since, so the rows one version
trained on never meet the rows another version is judged on. The same rows read back
through pandas (as Dask workers read them) are held out the same."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from mlyard.core.errors import UsageError
from mlyard.core.training.split import holdout_mask, split_rows
from tests.conftest import examples

values = st.one_of(st.none(), st.integers(-10**12, 10**12),
                   st.floats(allow_nan=False, allow_infinity=False, width=64))


@st.composite
def growing_data(draw: st.DrawFn) -> tuple[pl.DataFrame, int, str | None]:
    """All rows so far, how many the earlier training saw, and the id column if any."""
    rows = draw(st.integers(12, 120))
    with_id = draw(st.booleans())
    frame = pl.DataFrame({
        "amount": draw(st.lists(values, min_size=rows, max_size=rows)),
        "plan": draw(st.lists(st.sampled_from(["a", "b", None, "ü"]), min_size=rows,
                              max_size=rows)),
        "day": [dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 400)))
                for _ in range(rows)],
        "y": draw(st.lists(st.integers(0, 1), min_size=rows, max_size=rows)),
    }, schema={"amount": pl.Float64, "plan": pl.String, "day": pl.Date, "y": pl.Int64})
    if with_id:
        frame = frame.with_columns(pl.Series("key", draw(st.permutations(range(rows)))))
    earlier = draw(st.integers(10, rows))
    return frame, earlier, "key" if with_id else None


def _identity(frame: pl.DataFrame, id_column: str | None) -> list[tuple[object, ...]]:
    return frame.select(id_column).rows() if id_column else frame.rows()


@settings(max_examples=examples(80), deadline=None)
@given(data=growing_data(), seeds=st.tuples(st.integers(0, 99), st.integers(0, 99)))
def test_no_version_trains_on_rows_another_is_judged_on(
        data: tuple[pl.DataFrame, int, str | None], seeds: tuple[int, int]) -> None:
    everything, earlier, id_column = data
    before = everything.head(earlier).sample(fraction=1.0, shuffle=True, seed=seeds[0])
    try:
        first = split_rows(before, None, 0.2, 0.2, seeds[0], id_column)
        second = split_rows(everything, None, 0.2, 0.2, seeds[1], id_column)
    except UsageError as refused:  # a handful of rows, none held out: said, not fudged
        assert "add rows or change [train] holdout_fraction" in refused.msg
        return
    trained_first = set(_identity(before[np.concatenate([first.train, first.valid])],
                                  id_column))
    judged_second = set(_identity(everything[second.holdout], id_column))
    held_first = set(_identity(before[first.holdout], id_column))
    trained_second = set(_identity(everything[np.concatenate([second.train, second.valid])],
                                   id_column))
    assert not trained_first & judged_second
    assert not trained_second & held_first


@settings(max_examples=examples(40), deadline=None)
@given(data=growing_data())
def test_rows_read_back_through_pandas_are_held_out_the_same(
        data: tuple[pl.DataFrame, int, str | None]) -> None:
    frame, _, id_column = data
    round_trip = pl.from_pandas(frame.to_pandas())
    assert np.array_equal(holdout_mask(frame, 0.3, id_column),
                          holdout_mask(round_trip, 0.3, id_column))


def test_the_holdout_share_is_close_to_the_fraction_asked_for() -> None:
    frame = pl.DataFrame({"x": np.arange(50_000, dtype=np.float64)})
    share = holdout_mask(frame, 0.2).mean()
    assert abs(share - 0.2) < 0.01
