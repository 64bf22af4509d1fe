"""Profiles' histograms, many columns at once, equal bin for bin to `np.histogram` of
each column (with everything in the first bin where numpy cannot cut the range)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlyard.core.data.histograms import BINS, histograms
from tests.conftest import examples


def numpy_histogram(values: np.ndarray) -> list[int]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    try:
        with np.errstate(all="ignore"):  # numpy's own overflow on huge ranges
            return [int(c) for c in np.histogram(finite, bins=BINS)[0]]
    except ValueError:
        return [int(finite.size)] + [0] * (BINS - 1)


floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10), st.integers(-3, 3).map(float),
    st.sampled_from([562949953421312.0, 562949953421312.5, 1e308, -1e308, 5e-324, 0.1, 0.3]))


@settings(max_examples=examples(400), deadline=None)
@given(columns=st.lists(st.lists(floats, max_size=30), min_size=1, max_size=6),
       offset=st.sampled_from([0.0, 1e15, -7.25, 1e-300]))
def test_each_column_counts_as_numpy_counts_it(columns: list[list[float]], offset: float
                                               ) -> None:
    arrays = [np.array(column, dtype=np.float64) + offset for column in columns]
    assert histograms(arrays) == [numpy_histogram(a) for a in arrays]


def test_values_on_every_edge_fall_where_numpy_puts_them() -> None:
    column = np.linspace(0.1, 0.7, BINS + 1)  # each value on an edge, last one on the end
    spread = np.random.default_rng(7).normal(size=10_000) * 1e-3 + 12345.678
    for array in (column, spread, np.array([3.0]), np.array([np.nan, np.inf]), np.array([])):
        assert histograms([array]) == [numpy_histogram(array)]
