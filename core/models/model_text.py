"""A LightGBM model text checked for the shape LightGBM trusts without checking.

LightGBM reads a model's trees as they are written: a `split_feature` past the last
feature or a child index past the tree's nodes is read from memory that is not there, and
the process dies (SIGSEGV) on the first row that reaches that node, which a trial on one
row may never do. So before anything loads a model from outside (an import, a sync, a
server's swap), its text is read here, in plain Python that cannot crash, and held to
what LightGBM itself writes: the tree count and each tree's size in bytes in the
header, each tree's node counts, every feature index, child index, decision type and
category boundary in range, the child links a tree, no NaN threshold, every leaf value
finite.
"""

from __future__ import annotations

import math

from mlyard.core.errors import MlyardError
from mlyard.core.humanize import counted


class ModelRefused(MlyardError):
    title = "Model refused"


_INTERNAL = ("split_feature", "threshold", "decision_type", "left_child", "right_child")
_CATEGORICAL = 1  # decision_type bit: the split is on categories


def check_model_text(text: str, label: str) -> None:
    """Raise ModelRefused naming `label`, the tree and the field when the text is not
    a model LightGBM could read safely."""
    header, trees, sizes = _sections(text, label)
    features = _int(header, "max_feature_idx", label, "the header") + 1
    declared = header.get("tree_sizes", "").split()
    if len(declared) != len(trees):
        raise ModelRefused(f"{label}: the header lists {len(declared)} trees and the text "
                           f"holds {len(trees)}; refused")
    # LightGBM finds each tree by these byte counts, and aborts when one is off.
    for number, (said, size) in enumerate(zip(declared, sizes, strict=True)):
        if said != str(size):
            raise ModelRefused(f"{label}: tree {number} is {size} bytes and the header says "
                               f"{said[:20]}; refused")
    for number, tree in enumerate(trees):
        _check_tree(tree, features, f"{label}: tree {number}")


def _sections(text: str, label: str
              ) -> tuple[dict[str, str], list[dict[str, str]], list[int]]:
    """The header's fields, each tree's fields, and each tree's size in bytes as
    LightGBM counts it (from its `Tree=` line to the next tree or the end of trees)."""
    if not text.startswith("tree\n"):
        raise ModelRefused(f"{label}: not a LightGBM model text (it must start with "
                           "'tree'); refused")
    body = text.split("end of trees", 1)[0]
    blocks = body.split("\nTree=")
    sizes = [len(("Tree=" + block + ("\n" if number < len(blocks) - 2 else "")).encode())
             for number, block in enumerate(blocks[1:])]
    header = _fields(blocks[0])
    return header, [_fields(block.split("\n", 1)[1] if "\n" in block else "")
                    for block in blocks[1:]], sizes


def _fields(block: str) -> dict[str, str]:
    found = {}
    for line in block.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _check_tree(tree: dict[str, str], features: int, where: str) -> None:
    leaves = _int(tree, "num_leaves", where, "")
    if leaves < 1:
        raise ModelRefused(f"{where}: num_leaves = {leaves}; refused")
    _numbers(tree, "leaf_value", leaves, where, float)
    nodes = leaves - 1
    if nodes == 0:
        return
    split = _numbers(tree, "split_feature", nodes, where, int)
    threshold = _numbers(tree, "threshold", nodes, where, float, infinite=True)
    kinds = _numbers(tree, "decision_type", nodes, where, int)
    for node, kind in enumerate(kinds):  # bits: categorical, default left, missing 0-2
        if not 0 <= kind < 12 or (int(kind) >> 2) & 3 == 3:
            raise ModelRefused(f"{where}: node {node} has decision_type {kind}, which "
                               "LightGBM does not write; refused")
    children = []
    for side in ("left_child", "right_child"):
        for child in _numbers(tree, side, nodes, where, int):
            # A child is an inner node (0..nodes-1) or a leaf, written as ~leaf (-1..-leaves).
            if not (-leaves <= child < nodes):
                raise ModelRefused(f"{where}: {side} {child} is outside the tree's "
                                   f"{nodes} nodes and {leaves} leaves; refused")
            children.append(int(child))
    # A tree: every node but the root, and every leaf, is some node's child exactly once.
    # Anything else (a node its own descendant) can send prediction round a loop forever.
    if sorted(children) != [*range(-leaves, 0), *range(1, nodes)]:
        raise ModelRefused(f"{where}: its child links do not make a tree (a node reached "
                           "twice, or never); refused")
    for node, feature in enumerate(split):
        if not 0 <= feature < features:
            raise ModelRefused(f"{where}: node {node} splits on feature {feature}, and "
                                   f"the model has {features}; refused")
    categorical = [node for node, kind in enumerate(kinds) if int(kind) & _CATEGORICAL]
    if categorical:
        count = _int(tree, "num_cat", where, "")
        bounds = _numbers(tree, "cat_boundaries", count + 1, where, int)
        words = len(tree.get("cat_threshold", "").split())
        if bounds != sorted(bounds) or bounds[0] != 0 or bounds[-1] != words:
            raise ModelRefused(f"{where}: cat_boundaries do not fit its {words} "
                                   "category words; refused")
        for node in categorical:
            if not (float(threshold[node]).is_integer() and 0 <= threshold[node] < count):
                raise ModelRefused(f"{where}: node {node} names category set "
                                       f"{threshold[node]:g} of {count}; refused")


def _int(fields: dict[str, str], key: str, where: str, place: str) -> int:
    try:
        return int(fields[key])
    except (KeyError, ValueError):
        raise ModelRefused(f"{where}: {key} is missing or not a whole number"
                               f"{' in ' + place if place else ''}; refused") from None


def _numbers(fields: dict[str, str], key: str, count: int, where: str,
             kind: type[int] | type[float], infinite: bool = False) -> list[int | float]:
    """`count` numbers of `kind` under `key`: never NaN, infinite only where LightGBM
    writes it (a threshold splitting off missing values)."""
    words = fields.get(key, "").split()
    if len(words) != count:
        raise ModelRefused(f"{where}: {key} has {counted(len(words), 'value')} where the "
                           f"tree needs {count}; refused")
    try:
        values: list[int | float] = [kind(word) for word in words]
    except ValueError:
        raise ModelRefused(f"{where}: {key} holds a value that is not a number; "
                               "refused") from None
    if not all(math.isfinite(value) or infinite and not math.isnan(value)
               for value in values):
        raise ModelRefused(f"{where}: {key} holds {'a NaN' if infinite else 'an infinite or NaN'}"
                           " value; refused")
    return values
