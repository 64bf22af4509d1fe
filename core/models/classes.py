"""Predictions of models that know different classes, put on one class index by name.

A model retrained after a class appeared knows one class more than the champion; to
compare them on the same rows, each one's probabilities are laid out over the union of
both class lists, a class a model does not know getting no probability from it.
"""

from __future__ import annotations

import numpy as np


def class_names(classes: list[str] | None, predicted: np.ndarray) -> list[str]:
    """A model's classes in output order: its card's names, else its codes 0..k-1 as
    text (how an int label is written)."""
    width = 2 if predicted.ndim == 1 else predicted.shape[1]
    return list(classes) if classes else [str(code) for code in range(width)]


def union(*class_lists: list[str]) -> list[str]:
    """Every class, the first list's in its order, then those only later lists know."""
    return list(dict.fromkeys(name for names in class_lists for name in names))


def aligned(predicted: np.ndarray, classes: list[str], names: list[str],
            binary: bool) -> np.ndarray:
    """`predicted` (probabilities over `classes`; binary: of the second class) as
    probabilities over `names`; binary gives the probability of `names[1]`."""
    predicted = np.asarray(predicted, dtype=np.float64)
    by_class = np.column_stack([1 - predicted, predicted]) if predicted.ndim == 1 \
        else predicted
    laid_out = np.zeros((len(by_class), len(names)))
    laid_out[:, [names.index(name) for name in classes]] = by_class
    return laid_out[:, 1] if binary else laid_out
