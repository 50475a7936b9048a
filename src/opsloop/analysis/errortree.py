"""The error tree: a shallow decision tree fitted on "was this prediction wrong", whose leaves
are slices with high (or low) error described by readable rules.

Categorical columns are one-hot encoded so a split reads ``device = mobile`` rather than a
threshold on an arbitrary code; numeric columns keep their values, and missing numbers go
down the side the tree learned for them (scikit-learn trees handle ``NaN``). The conditions
on one path are merged per column, missing categories get their own ``<missing>`` indicator,
so a leaf reads ``30.5 < age <= 45.5 and device = mobile``.
Leaf counts come from ``tree.apply`` and ``np.bincount`` on the data, not from the tree's
stored fractions, so they are exact.

>>> import pandas as pd
>>> X = pd.DataFrame({"device": ["tv"] * 50 + ["pc"] * 50})
>>> tree = error_tree(X, [1] * 100, [0] * 40 + [1] * 60, max_depth=1, min_samples_leaf=10)
>>> [(leaf.rule, leaf.errors, leaf.n) for leaf in tree.leaves]
[('device = tv', 40, 50), ('device ≠ tv', 0, 50)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

from opsloop.analysis.design import numeric_design
from opsloop.analysis.intervals import wilson_interval
from opsloop.analysis.labels import as_labels


@dataclass(frozen=True)
class ErrorLeaf:
    """One leaf of the error tree: its rule, rows, errors and error rate (Wilson interval).

    >>> ErrorLeaf("age <= 30", 10, 5, 0.5, 0.24, 0.76, 0.5).to_dict()["rule"]
    'age <= 30'
    """

    rule: str
    n: int
    errors: int
    error_rate: float
    ci_low: float
    ci_high: float
    share_of_errors: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> ErrorLeaf("x", 1, 0, 0.0, 0.0, 0.79, None).to_dict()["share_of_errors"]
        """
        return {
            "rule": self.rule,
            "n": int(self.n),
            "errors": int(self.errors),
            "error_rate": float(self.error_rate),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "share_of_errors": self.share_of_errors,
        }


@dataclass(frozen=True)
class ErrorTree:
    """The fitted error tree's leaves, highest error rate first, and the overall error rate.

    >>> X = pd.DataFrame({"x": [0, 1] * 20})
    >>> error_tree(X, [0] * 40, [0, 1] * 20, max_depth=1, min_samples_leaf=5).leaves[0].rule
    'x > 0.5'
    """

    leaves: tuple[ErrorLeaf, ...]
    n: int
    errors: int
    error_rate: float
    max_depth: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values, leaves as a list of dicts.

        >>> X = pd.DataFrame({"x": [0, 1]})
        >>> error_tree(X, [0, 0], [0, 1], min_samples_leaf=1).to_dict()["errors"]
        1
        """
        return {
            "n": int(self.n),
            "errors": int(self.errors),
            "error_rate": float(self.error_rate),
            "max_depth": int(self.max_depth),
            "leaves": [leaf.to_dict() for leaf in self.leaves],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per leaf.

        >>> X = pd.DataFrame({"x": [0, 1]})
        >>> error_tree(X, [0, 0], [0, 1], min_samples_leaf=1).to_frame()["n"].tolist()
        [1, 1]
        """
        columns = list(ErrorLeaf.__dataclass_fields__)
        return pd.DataFrame([leaf.to_dict() for leaf in self.leaves], columns=columns)


def error_tree(
    X: pd.DataFrame,
    y_true: Any,
    y_pred: Any,
    *,
    max_depth: int = 3,
    min_samples_leaf: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> ErrorTree:
    """Fit a tree of depth ``max_depth`` on ``y_pred != y_true`` from the columns of ``X``.

    ``min_samples_leaf`` defaults to 1% of the rows (at least 20), so that no leaf is a
    handful of rows. ``seed`` fixes the tree's tie-breaking between equally good splits.

    >>> X = pd.DataFrame({"age": range(100)})
    >>> tree = error_tree(X, [0] * 100, [0] * 70 + [1] * 30, max_depth=1)
    >>> [(leaf.rule, leaf.error_rate) for leaf in tree.leaves]
    [('age > 69.5', 1.0), ('age <= 69.5', 0.0)]
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    truth = as_labels(y_true, "y_true")
    predicted = as_labels(y_pred, "y_pred", len(truth))
    if len(X) != len(truth):
        raise ValueError(f"X has {len(X)} rows but y_true has {len(truth)}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int | np.integer) or max_depth < 1:
        raise ValueError(f"max_depth must be an integer >= 1, got {max_depth!r}")
    if min_samples_leaf is None:
        min_samples_leaf = max(20, len(truth) // 100)
    wrong = predicted != truth
    features, names = numeric_design(X)
    model = DecisionTreeClassifier(
        max_depth=int(max_depth), min_samples_leaf=int(min_samples_leaf), random_state=seed
    )
    model.fit(features, wrong)
    leaf_of_row = model.apply(features)
    n = np.bincount(leaf_of_row, minlength=model.tree_.node_count)
    errors = np.bincount(leaf_of_row, weights=wrong, minlength=model.tree_.node_count)
    leaf_ids = np.flatnonzero(n)
    low, high = wilson_interval(errors[leaf_ids], n[leaf_ids], confidence)
    rules = _rules(model, names)
    total_errors = int(wrong.sum())
    leaves = [
        ErrorLeaf(
            rule=rules[node],
            n=int(n[node]),
            errors=int(errors[node]),
            error_rate=float(errors[node] / n[node]),
            ci_low=float(lo),
            ci_high=float(hi),
            share_of_errors=float(errors[node] / total_errors) if total_errors else None,
        )
        for node, lo, hi in zip(leaf_ids, low, high, strict=True)
    ]
    leaves.sort(key=lambda leaf: (-leaf.error_rate, -leaf.n, leaf.rule))
    return ErrorTree(
        tuple(leaves), len(truth), total_errors, total_errors / len(truth), int(max_depth)
    )


def _rules(model: DecisionTreeClassifier, names: list[tuple[str, str | None]]) -> dict[int, str]:
    """Rule text of each leaf, conditions merged per source column."""
    tree = model.tree_
    rules: dict[int, str] = {}
    # each stack entry: node, {column: (low, high)} for numbers, {column: (equal, not_equal)}
    stack: list[tuple[int, dict, dict]] = [(0, {}, {})]
    while stack:
        node, bounds, categories = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == right:
            rules[node] = _render(bounds, categories)
            continue
        column, category = names[tree.feature[node]]
        threshold = float(tree.threshold[node])
        if category is None:
            low, high = bounds.get(column, (None, None))
            left_high = threshold if high is None else min(high, threshold)
            right_low = threshold if low is None else max(low, threshold)
            stack.append((right, {**bounds, column: (right_low, high)}, categories))
            stack.append((left, {**bounds, column: (low, left_high)}, categories))
        else:
            equal, excluded = categories.get(column, (None, ()))
            stack.append((right, bounds, {**categories, column: (category, excluded)}))
            stack.append((left, bounds, {**categories, column: (equal, (*excluded, category))}))
    return rules


def _render(bounds: dict, categories: dict) -> str:
    parts: list[str] = []
    for column, (low, high) in bounds.items():
        if low is not None and high is not None:
            parts.append(f"{low:.6g} < {column} <= {high:.6g}")
        elif low is not None:
            parts.append(f"{column} > {low:.6g}")
        else:
            parts.append(f"{column} <= {high:.6g}")
    for column, (equal, excluded) in categories.items():
        if equal is not None:
            parts.append(f"{column} = {equal}")
        else:
            parts.append(
                f"{column} ∉ {{{', '.join(excluded)}}}"
                if len(excluded) > 1
                else f"{column} ≠ {excluded[0]}"
            )
    return " and ".join(parts) if parts else "(all)"
