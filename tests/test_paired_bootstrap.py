"""The paired bootstrap behind the champion gate and the shadow report: its quick AUC per
resample (rows weighed by how often they were drawn) equals the AUC of the drawn rows,
ties and all; and a shortfall is signed the same whichever way the metric points."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlyard.core.tracking import evaluation
from tests.conftest import examples


@settings(max_examples=examples(60), deadline=None)
@given(rows=st.integers(2, 60), seed=st.integers(0, 2**32 - 1), levels=st.integers(1, 8))
def test_the_resampled_auc_is_the_auc_of_the_drawn_rows(rows: int, seed: int,
                                                        levels: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    scores = [rng.integers(0, levels, rows) / levels, rng.random(rows)]  # ties, and none
    draws = [rng.integers(0, rows, rows) for _ in range(5)]
    quick = evaluation._resampled_auc(truth, scores, iter(draws))
    for row, index in zip(quick, draws, strict=True):
        expected = [evaluation.evaluate("binary", truth[index], s[index])["auc"]
                    for s in scores]
        assert np.allclose(row, expected, equal_nan=True, rtol=0, atol=1e-12)


def test_a_worse_second_model_has_a_positive_shortfall_for_either_direction() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 3000)
    good = np.clip(truth * 0.6 + rng.random(3000) * 0.4, 0, 1)
    bad = rng.random(3000)
    auc = evaluation.paired_bootstrap("binary", truth, good, bad, "auc")
    loss = evaluation.paired_bootstrap("binary", truth, good, bad, "log_loss")
    for compared in (auc, loss):
        assert compared.rows == 3000 and compared.shortfall.value > 0
        assert compared.shortfall.low <= compared.shortfall.value <= compared.shortfall.high
        assert compared.relative.low > 0  # sure: the interval is all on the worse side
