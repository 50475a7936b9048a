"""Checks that a loaded model's decision trees are well formed, before anything predicts.

scikit-learn's compiled tree code follows a tree's node arrays without bounds checks: a
child index, a feature index or a category bitset index outside its array makes predict
read memory outside it, or crash the process. A skops file stores those arrays as plain
data, so a crafted file loads cleanly and misbehaves at the first predict; skops lists
``sklearn.tree._tree.Tree`` and the histogram boosting's ``TreePredictor`` as unsafe to load
by default for this reason. opsloop's allow-list (:mod:`.model_trust`) admits them, since
tree models are common, and this module is what makes that safe: every tree a loaded model
holds is checked, in numpy, before the model is handed back.

- ``Tree`` (decision trees, random forests, extra trees, gradient boosting): a leaf has both
  children -1 and every split node's two children come after it and inside the node array
  (so every walk from the root ends at a leaf); every split's feature is inside the tree's
  feature count, which equals its estimator's ``n_features_in_``, and a forest's or
  boosting's trees take as many features as the ensemble.
- ``TreePredictor`` (histogram gradient boosting): the same rules for ``left``, ``right``
  and ``feature_idx`` against the estimator's ``n_features_in_``, and a categorical split's
  bitset index inside the bitsets.

Written here: scikit-learn validates these arrays only for trees it grows itself.

>>> import numpy as np
>>> from sklearn.tree import DecisionTreeClassifier
>>> tree = DecisionTreeClassifier().fit(np.array([[0.0], [1.0]]), [0, 1])
>>> print(tree_problem(tree))
None
>>> state = tree.tree_.__getstate__()
>>> state["nodes"]["left_child"][0] = 10**6  # past the end of the three nodes
>>> tree.tree_.__setstate__(state)
>>> tree_problem(tree)
'a decision tree has a split whose child is not a later node of its 3 (node 0)'
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: How many objects a model's graph may hold before the walk stops with a problem.
MAX_OBJECTS = 1_000_000
_LEAF = -1


def _children_problem(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, what: str) -> str:
    """The first node whose children break the rules (see the module), or ''."""
    count = len(left)
    ids = np.arange(count)
    bad_leaf = leaf & ((left != _LEAF) | (right != _LEAF))
    split = ~leaf
    bad_split = split & ((left <= ids) | (left >= count) | (right <= ids) | (right >= count))
    wrong = np.flatnonzero(bad_leaf | bad_split)
    if wrong.size:
        kind = "leaf has a child" if bad_leaf[wrong[0]] else "split whose child is not"
        tail = f" a later node of its {count}" if not bad_leaf[wrong[0]] else ""
        return f"{what} has a {kind}{tail} (node {wrong[0]})"
    return ""


def _tree_problem(tree: Any, n_features: int | None) -> str:
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    feature = np.asarray(tree.feature, dtype=np.int64)
    if not len(left) == len(right) == len(feature) == int(tree.node_count) or not len(left):
        return "a decision tree's node arrays disagree on its node count"
    leaf = left == _LEAF
    found = _children_problem(left, right, leaf, "a decision tree")
    if found:
        return found
    features = int(tree.n_features)
    if n_features is not None and features != n_features:
        return f"a decision tree takes {features} features where its model takes {n_features}"
    split = ~leaf
    outside = np.flatnonzero(split & ((feature < 0) | (feature >= features)))
    if outside.size:
        return (
            f"a decision tree splits on feature {feature[outside[0]]} of its {features} "
            f"(node {outside[0]})"
        )
    return ""


def _predictor_problem(predictor: Any, n_features: int) -> str:
    nodes = predictor.nodes
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    leaf = nodes["is_leaf"].astype(bool)
    if not len(nodes):
        return "a boosting tree has no node"
    # A leaf's children are 0 in these arrays, not -1: judge the splits' only.
    found = _children_problem(
        np.where(leaf, _LEAF, left), np.where(leaf, _LEAF, right), leaf, "a boosting tree"
    )
    if found:
        return found
    feature = nodes["feature_idx"].astype(np.int64)
    outside = np.flatnonzero(~leaf & ((feature < 0) | (feature >= n_features)))
    if outside.size:
        return (
            f"a boosting tree splits on feature {feature[outside[0]]} of its model's "
            f"{n_features} (node {outside[0]})"
        )
    categorical = ~leaf & nodes["is_categorical"].astype(bool)
    bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
    index = nodes["bitset_idx"].astype(np.int64)
    outside = np.flatnonzero(categorical & ((index < 0) | (index >= bitsets)))
    if outside.size:
        return (
            f"a boosting tree's categorical split names bitset {index[outside[0]]} of its "
            f"{bitsets} (node {outside[0]})"
        )
    return ""


def _objects(model: Any):
    """Every object reachable from ``model`` through attributes, containers and object
    arrays, once each; a graph past :data:`MAX_OBJECTS` ends the walk with ``None``."""
    seen: set[int] = set()
    stack = [model]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(item))
        if len(seen) > MAX_OBJECTS:
            yield None
            return
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, np.ndarray):
            if item.dtype == object:
                stack.extend(item.ravel().tolist())
        elif hasattr(item, "__dict__"):
            stack.extend(vars(item).values())


def tree_problem(model: Any) -> str | None:
    """The first rule (see the module) that a tree held by ``model`` breaks, or ``None``
    when every tree is well formed (or there is none).

    >>> tree_problem({"no": "trees"}) is None
    True
    """
    from sklearn.ensemble import BaseEnsemble
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    for item in _objects(model):
        if item is None:
            return f"the model holds more than {MAX_OBJECTS:,} objects"
        if isinstance(item, TreePredictor):
            continue  # judged with its estimator's feature count, below
        width = getattr(item, "n_features_in_", None)
        width = int(width) if isinstance(width, int | np.integer) else None
        own = getattr(item, "tree_", None) if not isinstance(item, Tree) else None
        if isinstance(own, Tree):
            found = _tree_problem(own, width)
        elif isinstance(item, Tree):
            found = _tree_problem(item, None)
        else:
            found = ""
        if found:
            return found
        predictors = getattr(item, "_predictors", None)
        if predictors is not None and width is not None:
            for stage in predictors:
                for predictor in stage:
                    if not isinstance(predictor, TreePredictor):
                        return "a boosting model holds something other than its trees"
                    found = _predictor_problem(predictor, width)
                    if found:
                        return found
        members = getattr(item, "estimators_", None)
        # Forests and boosting hand their trees the rows they checked, unchecked again.
        if isinstance(item, BaseEnsemble | _gradient_boosting()) and members is not None:
            for member in np.asarray(members, dtype=object).ravel().tolist():
                taken = getattr(member, "n_features_in_", width)
                if width is not None and taken != width and _unsubsampled(item):
                    return (
                        f"a tree of the ensemble takes {taken} features where the ensemble "
                        f"takes {width}"
                    )
    return None


def _gradient_boosting() -> type:
    from sklearn.ensemble._gb import BaseGradientBoosting

    return BaseGradientBoosting


def _unsubsampled(ensemble: Any) -> bool:
    """Whether the ensemble gives each member every feature (bagging may give a subset,
    which it then selects itself)."""
    return getattr(ensemble, "estimators_features_", None) is None
