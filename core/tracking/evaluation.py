"""Holdout metrics for each task, and which direction is better for each metric.

Plain numpy: scikit-learn (or scipy.stats) would do the same arithmetic, but importing
either costs every process that loads a model, the scoring server included, tens of MB
and up to half a second.
"""

from __future__ import annotations

import numpy as np

DEFAULT_METRIC = {"binary": "auc", "multiclass": "multi_logloss", "regression": "rmse"}
LIGHTGBM_METRICS = {"binary": ["auc", "binary_logloss"], "multiclass": ["multi_logloss",
                    "multi_error"], "regression": ["rmse", "l1"]}
HIGHER_IS_BETTER = {"auc", "accuracy", "f1", "precision", "recall", "r2", "best_iteration"}
_EPS = np.finfo(np.float64).eps  # probabilities are clipped here before the log, as sklearn


def higher_is_better(metric: str) -> bool:
    """Direction of a metric by its last name part (`holdout.auc` -> auc)."""
    return metric.rsplit(".", 1)[-1] in HIGHER_IS_BETTER


def evaluate(task: str, y_true: np.ndarray, predicted: np.ndarray,
             threshold: float = 0.5) -> dict[str, float]:
    """The holdout metrics a person compares models by, for one task."""
    y_true = np.asarray(y_true)
    predicted = np.asarray(predicted, dtype=np.float64)
    if task == "binary":
        return _binary(y_true.astype(np.int64), predicted, threshold)
    if task == "multiclass":
        rows = np.clip(predicted, _EPS, 1 - _EPS)
        rows = rows / rows.sum(axis=1, keepdims=True)
        truth = y_true.astype(np.int64)
        return {
            "multi_logloss": float(-np.log(rows[np.arange(len(truth)), truth]).mean()),
            "accuracy": float((predicted.argmax(axis=1) == truth).mean()),
        }
    errors = y_true.astype(np.float64) - predicted
    spread = ((y_true - y_true.mean()) ** 2).sum()
    return {
        "rmse": float(np.sqrt((errors ** 2).mean())),
        "mae": float(np.abs(errors).mean()),
        "r2": float(1 - (errors ** 2).sum() / spread) if spread > 0 else float("nan"),
    }


def _binary(y_true: np.ndarray, predicted: np.ndarray, threshold: float) -> dict[str, float]:
    labels = predicted >= threshold
    positive = y_true == 1
    true_pos = float((labels & positive).sum())
    predicted_pos, actual_pos = float(labels.sum()), float(positive.sum())
    precision = true_pos / predicted_pos if predicted_pos else 0.0
    recall = true_pos / actual_pos if actual_pos else 0.0
    clipped = np.clip(predicted, _EPS, 1 - _EPS)
    return {
        "auc": _auc(positive, predicted),
        "log_loss": float(-np.where(positive, np.log(clipped), np.log(1 - clipped)).mean()),
        "accuracy": float((labels == positive).mean()),
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "precision": precision,
        "recall": recall,
    }


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: the chance a positive outranks a negative,
    ties counting a half; undefined (nan) unless both classes are present."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2)[inverse]  # tied scores share their average rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
