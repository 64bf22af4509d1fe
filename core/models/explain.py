"""Per-prediction explanations: how much each feature moved a row's score.

LightGBM computes exact TreeSHAP values itself (`pred_contrib`), so no extra library is
needed and the numbers are the model's own. They live in the model's raw score space
(log-odds for binary, each class's raw score for multiclass, the target for regression):
a row's contributions plus the base value (the model's expected raw score) equal its raw
score exactly, which is what makes them checkable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from mlyard.core.models.loading import LoadedModel


@dataclass(frozen=True)
class Explanations:
    """Contributions of each feature to each row's raw score, per model output."""

    features: list[str]
    outputs: list[str] | None  # class labels for a multiclass model, else one output
    contributions: np.ndarray  # rows x outputs x features
    base_value: np.ndarray  # per output: the raw score before any feature is known

    def raw_scores(self) -> np.ndarray:
        """Each row's raw score per output: what the contributions add up to."""
        scores: np.ndarray = self.contributions.sum(axis=2) + self.base_value
        return scores

    def rows_json(self) -> list[dict[str, Any]]:
        """Each row as {feature: contribution}, or {class: {feature: contribution}}."""
        if self.outputs is None:
            return [dict(zip(self.features, row[0].tolist(), strict=True))
                    for row in self.contributions]
        return [{label: dict(zip(self.features, values.tolist(), strict=True))
                 for label, values in zip(self.outputs, row, strict=True)}
                for row in self.contributions]

    def base_value_json(self) -> float | dict[str, float]:
        if self.outputs is None:
            return float(self.base_value[0])
        return dict(zip(self.outputs, self.base_value.tolist(), strict=True))


def contributions(booster: lgb.Booster, matrix: np.ndarray, **options: Any) -> np.ndarray:
    """LightGBM's TreeSHAP values as rows x outputs x (features + 1); the last column is
    the base value. `options` go to `Booster.predict` (num_threads, num_iteration)."""
    raw = np.asarray(booster.predict(matrix, pred_contrib=True, **options))
    width = booster.num_feature() + 1
    return raw.reshape(matrix.shape[0], raw.shape[1] // width, width)


def mean_abs_contributions(booster: lgb.Booster, matrix: np.ndarray, names: list[str],
                           **options: Any) -> dict[str, float]:
    """Global importance in the model's own units: how far, on average over the rows (and
    outputs), each feature moves a row's raw score."""
    shaped = contributions(booster, matrix, **options)[:, :, :-1]
    means = np.abs(shaped).mean(axis=(0, 1)) if len(shaped) else np.zeros(len(names))
    return dict(zip(names, means.tolist(), strict=True))


def explain_matrix(model: LoadedModel, matrix: np.ndarray,
                   threads: int | None = None) -> Explanations:
    """Explanations for an encoded matrix, from the same iterations `predict` uses."""
    options: dict[str, Any] = {} if threads is None else {"num_threads": threads}
    shaped = contributions(model.booster, matrix, **options)
    names = model.spec.names
    outputs = shaped.shape[1]
    labels = None
    if outputs > 1:
        labels = model.spec.classes or [str(index) for index in range(outputs)]
    # The last column is the expected value; TreeSHAP gives every row the same one.
    base = shaped[0, :, -1].copy() if len(shaped) else np.zeros(outputs)
    return Explanations(names, labels, shaped[:, :, :-1], base)
