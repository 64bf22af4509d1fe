"""Holdout metrics for each task, and which direction is better for each metric."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

DEFAULT_METRIC = {"binary": "auc", "multiclass": "multi_logloss", "regression": "rmse"}
LIGHTGBM_METRICS = {"binary": ["auc", "binary_logloss"], "multiclass": ["multi_logloss",
                    "multi_error"], "regression": ["rmse", "l1"]}
HIGHER_IS_BETTER = {"auc", "accuracy", "f1", "precision", "recall", "r2", "best_iteration"}


def higher_is_better(metric: str) -> bool:
    """Direction of a metric by its last name part (`holdout.auc` -> auc)."""
    return metric.rsplit(".", 1)[-1] in HIGHER_IS_BETTER


def evaluate(task: str, y_true: np.ndarray, predicted: np.ndarray,
             threshold: float = 0.5) -> dict[str, float]:
    """The holdout metrics a person compares models by, for one task."""
    if task == "binary":
        labels = (predicted >= threshold).astype(int)
        two_classes = len(np.unique(y_true)) == 2
        return {
            "auc": float(skm.roc_auc_score(y_true, predicted)) if two_classes else float("nan"),
            "log_loss": float(skm.log_loss(y_true, predicted, labels=[0, 1])),
            "accuracy": float(skm.accuracy_score(y_true, labels)),
            "f1": float(skm.f1_score(y_true, labels, zero_division=0)),
            "precision": float(skm.precision_score(y_true, labels, zero_division=0)),
            "recall": float(skm.recall_score(y_true, labels, zero_division=0)),
        }
    if task == "multiclass":
        classes = list(range(predicted.shape[1]))
        return {
            "multi_logloss": float(skm.log_loss(y_true, predicted, labels=classes)),
            "accuracy": float(skm.accuracy_score(y_true, predicted.argmax(axis=1))),
        }
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, predicted))),
        "mae": float(skm.mean_absolute_error(y_true, predicted)),
        "r2": float(skm.r2_score(y_true, predicted)),
    }
