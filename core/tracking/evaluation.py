"""Holdout metrics for each task, and which direction is better for each metric.

Plain numpy: scikit-learn (or scipy.stats) would do the same arithmetic, but importing
either costs every process that loads a model, the scoring server included, tens of MB
and up to half a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_METRIC = {"binary": "auc", "multiclass": "multi_logloss", "regression": "rmse"}
LIGHTGBM_METRICS = {"binary": ["auc", "binary_logloss"], "multiclass": ["multi_logloss",
                    "multi_error"], "regression": ["rmse", "l1"]}
HIGHER_IS_BETTER = {"auc", "accuracy", "f1", "precision", "recall", "r2", "best_iteration"}
_EPS = np.finfo(np.float64).eps  # probabilities are clipped here before the log, as sklearn
# LightGBM's names for metrics `evaluate` spells its own way.
_OUR_NAMES = {"binary_logloss": "log_loss", "binary_error": "accuracy", "l1": "mae",
              "l2": "rmse", "multi_error": "accuracy"}
RESAMPLES = 200  # bootstrap resamples behind each interval


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
    # Rows already in score order (segment_figures) need no sort; ties share a rank,
    # so their order does not matter.
    if not (scores[1:] >= scores[:-1]).all():
        order = np.argsort(scores)
        scores, positive = scores[order], positive[order]
    starts = np.flatnonzero(np.concatenate(([True], scores[1:] != scores[:-1])))
    counts = np.diff(np.append(starts, len(scores)))
    ends = np.cumsum(counts)
    ranks = np.repeat(ends - (counts - 1) / 2, counts)  # tied scores share their average
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def comparable_metric(task: str, configured: str) -> str:
    """The configured metric as `evaluate` names it, or the task's default when
    `evaluate` does not compute it."""
    name = _OUR_NAMES.get(configured, configured)
    probe = {"binary": (np.array([0, 1]), np.array([0.2, 0.8])),
             "multiclass": (np.array([0, 1]), np.array([[0.8, 0.2], [0.2, 0.8]])),
             "regression": (np.array([0.0, 1.0]), np.array([0.1, 0.9]))}[task]
    return name if name in evaluate(task, *probe) else DEFAULT_METRIC[task]


@dataclass(frozen=True)
class Interval:
    value: float
    low: float  # 95% bootstrap interval; nan when no resample could be measured
    high: float


@dataclass(frozen=True)
class PairedComparison:
    """Two sets of predictions measured on the same rows, and the second's shortfall
    (positive: the second is worse, whichever way the metric points)."""

    metric: str
    rows: int
    first: Interval
    second: Interval
    shortfall: Interval  # second's value worse than the first's, in the metric's units
    relative: Interval  # the shortfall as a share of |first|


def paired_bootstrap(task: str, truth: np.ndarray, first: np.ndarray, second: np.ndarray,
                     metric: str, threshold: float = 0.5) -> PairedComparison:
    """`metric` of both on all rows, with 95% intervals from the same resampled rows for
    both (a paired bootstrap: the rows' own difficulty cancels out of the shortfall)."""
    sign = 1.0 if higher_is_better(metric) else -1.0

    def measured(index: np.ndarray) -> tuple[float, float]:
        return (_one(task, metric, truth[index], first[index], threshold),
                _one(task, metric, truth[index], second[index], threshold))

    ours, theirs = measured(np.arange(len(truth)))
    rng = np.random.default_rng(0)
    resampled = (rng.integers(0, len(truth), len(truth)) for _ in range(RESAMPLES))
    if task == "binary" and metric == "auc":  # no sort per resample: see _resampled_auc
        draws = _resampled_auc(truth, [first, second], resampled)
    else:
        draws = np.array([measured(index) for index in resampled]).reshape(-1, 2)
    draws = draws[~np.isnan(draws).any(axis=1)]  # a resample with one class only
    shortfall = sign * (draws[:, 0] - draws[:, 1])
    scale = abs(ours) if ours else float("nan")
    return PairedComparison(metric, len(truth), _interval(ours, draws[:, 0]),
                            _interval(theirs, draws[:, 1]),
                            _interval(sign * (ours - theirs), shortfall),
                            _interval(sign * (ours - theirs) / scale,
                                      shortfall / np.abs(draws[:, 0])))


def _one(task: str, metric: str, truth: np.ndarray, predicted: np.ndarray,
         threshold: float) -> float:
    """One metric, as `evaluate` gives it; the ranking ones without the rest (a bootstrap
    asks for it hundreds of times)."""
    if task == "binary" and metric == "auc":
        return _auc(np.asarray(truth).astype(np.int64) == 1, np.asarray(predicted))
    if task == "regression" and metric == "rmse":
        return float(np.sqrt(((np.asarray(truth, dtype=np.float64) - predicted) ** 2).mean()))
    return evaluate(task, truth, predicted, threshold)[metric]


def _resampled_auc(truth: np.ndarray, predictions: list[np.ndarray],
                   resamples: Iterator[np.ndarray]) -> np.ndarray:
    """`_auc` of each prediction on each resample of the rows, from counts: each row's
    score is ranked once, and a resample weighs the rows by how often it drew them. The
    same Mann-Whitney statistic, ties a half, as `_auc` on the drawn rows, without a sort
    per resample (a 40,000-row bootstrap: 1.7 s -> about 0.2 s)."""
    positive = np.asarray(truth).astype(np.int64) == 1
    groups = [np.unique(p, return_inverse=True)[1] for p in predictions]  # ties share one
    sizes = [int(g.max()) + 1 if len(g) else 0 for g in groups]
    out = []
    for index in resamples:
        counts = np.bincount(index, minlength=len(truth)).astype(np.float64)
        pos = counts * positive
        neg = counts - pos
        pairs = pos.sum() * neg.sum()
        row = []
        for group, size in zip(groups, sizes, strict=True):
            pos_at = np.bincount(group, weights=pos, minlength=size)
            neg_at = np.bincount(group, weights=neg, minlength=size)
            below = np.cumsum(neg_at) - neg_at
            row.append(float((pos_at * (below + 0.5 * neg_at)).sum() / pairs) if pairs
                       else float("nan"))
        out.append(row)
    return np.array(out).reshape(-1, len(predictions))


def _interval(value: float, draws: np.ndarray) -> Interval:
    if not len(draws):
        return Interval(value, float("nan"), float("nan"))
    low, high = np.quantile(draws, [0.025, 0.975])
    return Interval(value, float(low), float(high))
