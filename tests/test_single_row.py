"""The fast single-row scorer gives what `Booster.predict` gives, for every kind of model
the server scores, and is the path the server takes."""

from __future__ import annotations

import threading

import lightgbm as lgb
import numpy as np
import pytest

from mlyard.core.models.single_row import SingleRowPredictor


def booster(objective: str, **params: object) -> lgb.Booster:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(600, 6))
    features[rng.random(features.shape) < 0.1] = np.nan  # missing values take their branch
    score = features[:, 0] * 2 - np.nan_to_num(features[:, 1])
    label = {"binary": score > 0, "multiclass": np.digitize(score, [-1, 1]),
             "regression": score}[objective].astype(np.float64)
    return lgb.train({"objective": objective, "verbose": -1, "num_leaves": 15, **params},
                     lgb.Dataset(features, label), num_boost_round=30)


@pytest.mark.parametrize("objective, params", [
    ("binary", {}), ("multiclass", {"num_class": 3}), ("regression", {})])
def test_one_row_scores_as_booster_predict(objective: str, params: dict[str, object]) -> None:
    model = booster(objective, **params)
    fast = SingleRowPredictor.for_booster(model)
    assert fast is not None, "LightGBM's fast single-row API is not reachable"
    rows = np.random.default_rng(1).normal(size=(200, 6))
    rows[::7, 2] = np.nan
    for row in rows:
        expected = model.predict(row.reshape(1, -1), num_threads=1)
        got = fast.predict(row.reshape(1, -1))
        assert got.shape == expected.shape
        assert np.array_equal(got, expected)


def test_the_best_iteration_is_used_as_predict_uses_it() -> None:
    rng = np.random.default_rng(3)
    features = rng.normal(size=(400, 4))
    label = features[:, 0] + rng.normal(scale=2.0, size=400)
    data = lgb.Dataset(features[:300], label[:300])
    model = lgb.train({"objective": "regression", "verbose": -1}, data, num_boost_round=200,
                      valid_sets=[lgb.Dataset(features[300:], label[300:], reference=data)],
                      callbacks=[lgb.early_stopping(5, verbose=False)])
    assert 0 < model.best_iteration < 200
    fast = SingleRowPredictor.for_booster(model)
    assert fast is not None
    row = features[:1]
    assert np.array_equal(fast.predict(row), model.predict(row, num_threads=1))


def test_a_row_of_the_wrong_width_is_refused() -> None:
    fast = SingleRowPredictor.for_booster(booster("binary"))
    assert fast is not None
    with pytest.raises(ValueError, match="expected 6 feature values, got 5"):
        fast.predict(np.zeros((1, 5)))


def test_threads_sharing_one_predictor_each_get_their_own_row() -> None:
    model = booster("regression")
    fast = SingleRowPredictor.for_booster(model)
    assert fast is not None
    rows = np.random.default_rng(5).normal(size=(4, 400, 6))
    wrong: list[int] = []

    def score(block: np.ndarray) -> None:
        expected = model.predict(block, num_threads=1)
        wrong.extend(i for i, row in enumerate(block)
                     if fast.predict(row.reshape(1, -1))[0] != expected[i])

    threads = [threading.Thread(target=score, args=(block,)) for block in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
