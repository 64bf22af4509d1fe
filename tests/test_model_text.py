"""A model text is read for the shape LightGBM does not check before anything loads it:
an out-of-range feature or child index, which kills the process on the first row that
reaches it, is refused with one line; and no small mutation of a real model text gets
past the check and then crashes a process that scores real rows with it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlyard.core.data import versions
from mlyard.core.models import registry
from mlyard.core.models.features import encode
from mlyard.core.models.loading import load_model
from mlyard.core.models.model_text import ModelRefused, check_model_text
from mlyard.core.models.trial import TRIAL_ROWS, Candidate, check_loads, trial_rows
from mlyard.core.workspace import open_workspace
from tests.conftest import examples, mlyard

ROWS = np.random.default_rng(3).normal(size=(300, 4))
ROWS[:, 3] = np.random.default_rng(4).integers(0, 6, 300)  # a categorical feature


@pytest.fixture(scope="module")
def model_text() -> str:
    labels = (np.isin(ROWS[:, 3], [0, 2, 5]) + 0.3 * ROWS[:, 0] > 0.5).astype(int)
    dataset = lgb.Dataset(ROWS, labels, categorical_feature=[3])
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1,
                         "min_data_in_leaf": 5}, dataset, num_boost_round=8)
    text: str = booster.model_to_string()
    return text


def test_a_model_lightgbm_wrote_passes(model_text: str) -> None:
    check_model_text(model_text, "m")
    assert "cat_boundaries" in model_text  # the categorical checks ran on real data


def _with_field(text: str, tree: int, field: str, edit: object) -> str:
    head, *trees = text.split("\nTree=")
    lines = trees[tree].split("\n")
    for index, line in enumerate(lines):
        if line.startswith(field + "="):
            values = line.split("=", 1)[1].split()
            values[0] = str(edit)
            lines[index] = f"{field}=" + " ".join(values)
    trees[tree] = "\n".join(lines)
    return _resized("\nTree=".join([head, *trees]))


def _resized(text: str) -> str:
    """The header's tree sizes made to fit the trees again (as a crafted file would
    be), so the checks behind that one are reached."""
    body, tail = text.split("end of trees", 1)
    head, *trees = body.split("\nTree=")
    sizes = [len(("Tree=" + tree + ("\n" if number < len(trees) - 1 else "")).encode())
             for number, tree in enumerate(trees)]
    before, after = head.split("tree_sizes=", 1)
    head = before + "tree_sizes=" + " ".join(map(str, sizes)) + "\n" + after.split("\n", 1)[1]
    return "\nTree=".join([head, *trees]) + "end of trees" + tail


@pytest.mark.parametrize(("field", "value", "said"), [
    ("split_feature", 9, "node 0 splits on feature 9, and the model has 4"),
    ("left_child", 40, "left_child 40 is outside the tree's"),
    ("right_child", -99, "right_child -99 is outside the tree's"),
    ("left_child", 0, "its child links do not make a tree"),  # the root its own child
    ("threshold", "nan", "threshold holds a NaN value"),
    ("leaf_value", "inf", "leaf_value holds an infinite or NaN value"),
    ("num_leaves", 0, "num_leaves = 0"),
])
def test_an_out_of_range_index_is_refused_naming_tree_and_field(
        model_text: str, field: str, value: object, said: str) -> None:
    with pytest.raises(ModelRefused, match=re.escape(said)) as refused:
        check_model_text(_with_field(model_text, 2, field, value), "churn/3")
    assert refused.value.msg.startswith("churn/3: tree 2: ")


def test_a_header_that_does_not_fit_the_trees_is_refused(model_text: str) -> None:
    head, rest = model_text.split("tree_sizes=", 1)
    with pytest.raises(ModelRefused, match="the header lists 9 trees and the text holds 8"):
        check_model_text(head + "tree_sizes=1 " + rest, "m")
    longer = model_text.replace("\nTree=3\n", "\nTree=3\n\n", 1)  # LightGBM aborts on it
    with pytest.raises(ModelRefused, match="tree 3 is .* bytes and the header says"):
        check_model_text(longer, "m")


SCORER = """
import sys
import lightgbm, numpy
booster = lightgbm.Booster(model_file=sys.argv[1])
rows = numpy.load(sys.argv[2])
booster.predict(rows)
"""


@pytest.mark.slow
@settings(max_examples=examples(25), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.integers(0, 7), field=st.sampled_from(
    ["split_feature", "left_child", "right_child", "threshold", "cat_boundaries",
     "cat_threshold", "num_cat", "decision_type", "leaf_value"]),
    value=st.one_of(st.integers(-40, 40), st.sampled_from([2**31, -2**31, 1e308, "nan"])))
def test_no_mutation_passes_the_check_and_then_crashes_a_scorer(
        model_text: str, tmp_path_factory: pytest.TempPathFactory, tree: int, field: str,
        value: object) -> None:
    mutated = _with_field(model_text, tree, field, value)
    try:
        check_model_text(mutated, "m")
    except ModelRefused:
        return
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "model.txt").write_text(mutated)
    np.save(folder / "rows.npy", ROWS)
    child = subprocess.run([sys.executable, "-c", SCORER, str(folder / "model.txt"),
                            str(folder / "rows.npy")], capture_output=True, timeout=60)
    assert child.returncode >= 0, (field, value, child.returncode)  # no signal death


def test_predict_with_a_tampered_model_is_one_line(churn: Path, tmp_path: Path) -> None:
    """The workspace's own model object rewritten with an out-of-range feature:
    `predict` refuses before LightGBM reads it."""
    assert mlyard("train").exit_code == 0
    ws = open_workspace(churn)
    with ws.catalog.session() as con:
        (digest,) = con.execute("SELECT model_hash FROM model_versions").fetchone()
    text = ws.objects.read_bytes(digest).decode()
    bad = ws.objects.put_bytes(_with_field(text, 1, "split_feature", 77).encode())
    with ws.catalog.session() as con:
        con.execute("UPDATE model_versions SET model_hash = ?", [bad])
    result = mlyard("predict", "1", str(churn / "data" / "churn_2026_01.csv"),
                    "-o", str(tmp_path / "out.parquet"))
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert "\n" not in message and "tree 1: node 0 splits on feature 77" in message


@pytest.mark.slow  # trains several models in processes of their own
def test_the_child_trial_scores_this_projects_newest_rows_and_the_edges(churn: Path) -> None:
    """A model from elsewhere is tried on the rows it will meet here, not one zero row:
    a bad node that only real values reach is reached in the child."""
    assert mlyard("train").exit_code == 0
    ws = open_workspace(churn)
    version = registry.resolve(ws, "1")
    spec = load_model(ws, "1").spec
    rows = trial_rows(ws, spec)
    [newest] = versions.select_versions(ws, window=1)
    real = encode(versions.read_versions(ws, [newest]), spec)
    assert rows.shape == (min(real.shape[0], TRIAL_ROWS) + 4, len(spec.features))
    sampled = {tuple(np.nan_to_num(row, nan=-7.0)) for row in rows[:-4]}
    assert sampled <= {tuple(np.nan_to_num(row, nan=-7.0)) for row in real}
    assert np.isnan(rows[-3]).all() and (rows[-4] == 0).all()
    check_loads(ws, Candidate(ws.objects.path_for(version.model_hash), "churn/1",
                              ws.objects.read_bytes(version.card_hash)))
