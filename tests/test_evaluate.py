"""Holdout metrics on cases small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlyard.core.tracking.evaluation import evaluate


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
