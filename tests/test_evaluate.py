"""Holdout metrics on cases small enough to work out by hand, and AUC against
scikit-learn's on generated ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from mlyard.core.tracking.evaluation import evaluate
from tests.conftest import examples


def test_binary_metrics_match_hand_computed_values() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.8])
    metrics = evaluate("binary", y, scores)
    # Pairs (pos, neg): 0.4>0.1, 0.4<0.6, 0.8>0.1, 0.8>0.6 -> 3 of 4.
    assert metrics["auc"] == pytest.approx(0.75)
    # Predicted labels 0,1,0,1: one true positive, one false positive, one miss.
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)
    assert metrics["f1"] == pytest.approx(0.5)
    expected = -(math.log(0.9) + math.log(0.4) + math.log(0.4) + math.log(0.8)) / 4
    assert metrics["log_loss"] == pytest.approx(expected)


def test_auc_counts_ties_as_half_and_is_nan_with_one_class() -> None:
    assert evaluate("binary", np.array([0, 1]), np.array([0.5, 0.5]))["auc"] == 0.5
    assert math.isnan(evaluate("binary", np.array([1, 1]), np.array([0.2, 0.9]))["auc"])


@settings(max_examples=examples(200), deadline=None)
@given(rows=st.lists(st.tuples(st.booleans(), st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0, 1))), min_size=2, max_size=300))
def test_auc_equals_sklearns_with_ties_in_any_row_order(rows: list[tuple[bool, float]]) -> None:
    """Rows in score order skip the sort (segment figures hand them over so): both ways
    give scikit-learn's AUC, tied scores counting a half."""
    truth = np.array([label for label, _ in rows], dtype=np.int64)
    scores = np.array([score for _, score in rows])
    assume(0 < truth.sum() < len(truth))
    want = roc_auc_score(truth, scores)
    order = np.argsort(scores)
    assert evaluate("binary", truth, scores)["auc"] == pytest.approx(want, abs=1e-12)
    assert evaluate("binary", truth[order], scores[order])["auc"] == pytest.approx(want,
                                                                                   abs=1e-12)


def test_certain_wrong_answers_give_a_finite_log_loss() -> None:
    metrics = evaluate("binary", np.array([1, 0]), np.array([0.0, 1.0]))
    assert math.isfinite(metrics["log_loss"]) and metrics["log_loss"] > 30


def test_no_predicted_positives_gives_zero_precision_not_an_error() -> None:
    metrics = evaluate("binary", np.array([0, 1]), np.array([0.1, 0.2]))
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0 and metrics["f1"] == 0.0


def test_multiclass_metrics() -> None:
    y = np.array([0, 1, 2])
    probs = np.array([[0.5, 0.25, 0.25], [0.2, 0.5, 0.3], [0.6, 0.2, 0.2]])
    metrics = evaluate("multiclass", y, probs)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["multi_logloss"] == pytest.approx(-(math.log(0.5) * 2 + math.log(0.2)) / 3)


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    metrics = evaluate("regression", y, np.array([1.0, 2.0, 3.0, 6.0]))
    assert metrics["rmse"] == pytest.approx(1.0)
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5)
