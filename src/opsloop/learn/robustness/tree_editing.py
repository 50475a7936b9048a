"""Model editing for decision trees: override what a fitted tree or forest predicts in a region.

A region is a box of the features: comparisons of one feature with a number, joined by
``and`` (``"x3 > 0.5 and x7 <= 2"``, in the rule language of :mod:`opsloop.analysis.assertions`),
or one leaf of a single tree. :func:`override_region` returns a new model that answers
``value`` for every row inside the box and exactly what the model answered before for every
other row (bit for bit); a row outside lands in its old leaf, or in a leaf added where the
box cut its old one.

How, in each tree: the leaves that lie wholly inside the box get ``value``. A leaf that the
box cuts through becomes a split on the box's bound, one split per bound that cuts it, so
the part outside keeps the leaf's answer and the part inside gets ``value``; the nodes it
adds go after every existing node, so children still come after their parents and the tree
passes the registry's structure check (:mod:`opsloop.registry.tree_structure`). A forest's
every tree is edited, so a classifier forest votes ``value`` unanimously inside the box and
a regressor forest averages ``value`` (to within the rounding of the average).

An edit can grow a deep model a lot: a leaf's box is unbounded along every feature its path
never split on, so a box through the data cuts most of the leaves it meets, each by one
split per bound (two nodes each). On a 100-tree forest grown on 10,000 rows of 20 features,
``"x3 > 0.5 and x7 <= 0"`` added 197,358 nodes to its 119,416. ``nodes_added`` says what an
edit cost; a shallower model, or a narrower box, costs less.

The box is judged on the features as the trees read them: as float32 (scikit-learn casts
before it compares), so ``x3 < 0.5`` is the split "x3 <= the largest float32 below 0.5".
A missing value (NaN) of a feature the rule names puts the row outside the box, as a false
comparison does in the assertions. The nodes an edit adds keep the split leaf's impurity
and halve its sample counts at each cut (the model does not keep which rows reached the
leaf), so they add nothing to ``feature_importances_``; an overridden leaf keeps the
statistics of its training rows.

Boosted models (``GradientBoosting*``, ``HistGradientBoosting*``) are refused: their answer
is a sum over many trees, so no leaf decides a region. A serving assertion rule with the
``override`` action changes their answers instead.

>>> import numpy as np
>>> from sklearn.tree import DecisionTreeClassifier
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
>>> tree = DecisionTreeClassifier(random_state=0).fit(X, [0, 0, 1, 1])
>>> edit = override_region(tree, 0, where="x0 > 0.5 and x1 > 0.5")
>>> edit.model.predict(X).tolist(), tree.predict(X).tolist()
([0, 0, 1, 0], [0, 0, 1, 1])
>>> edit.leaves_overridden, edit.nodes_added  # the leaf of x0 > 0.5 was cut in two twice
(0, 4)

Its leaf for ``x0 > 0.5`` was cut at ``x1 > 0.5``, and at ``x0 > 0.5`` again: the tree sends a
row missing ``x0`` to that leaf, and such a row is outside the region.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opsloop.errors import InvalidArgumentError

_LEAF = -1
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}


def _tree_classes() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """The single trees, the forests, and the boosted models (refused)."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    return (
        (DecisionTreeClassifier, DecisionTreeRegressor),  # ExtraTree* are subclasses
        (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor),
        (
            GradientBoostingClassifier,
            GradientBoostingRegressor,
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
        ),
    )


def feature_names(model: Any) -> list[str]:
    """The names a rule may use: ``feature_names_in_`` where the model was fitted on a
    DataFrame, else ``x0, x1, ...`` (scikit-learn's names for unnamed columns).

    >>> from sklearn.tree import DecisionTreeRegressor
    >>> feature_names(DecisionTreeRegressor().fit([[0, 1], [1, 0]], [0, 1]))
    ['x0', 'x1']
    """
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    return [f"x{i}" for i in range(int(model.n_features_in_))]


def float32_below(value: float) -> float:
    """The largest float32 strictly below ``value``: ``x < value`` is ``x <= float32_below(value)``
    for every float32 ``x``.

    >>> float32_below(0.5) < 0.5, float(np.float32(float32_below(0.5))) == float32_below(0.5)
    (True, True)
    """
    below = np.float32(value)
    if float(below) >= value:
        below = np.nextafter(below, np.float32(-np.inf))
    return float(below)


@dataclass(frozen=True)
class TreeRegion:
    """A box of the features: ``lower[i] < x[features[i]] <= upper[i]`` for every ``i``, on
    the float32 values a tree compares, with no named feature missing.

    >>> region = TreeRegion.parse("x1 <= 2 and x0 > 0.5 and 1 < x1", ["x0", "x1"])
    >>> region.features, region.lower, region.upper
    ((0, 1), (0.5, 1.0), (inf, 2.0))
    >>> region.contains(np.array([[0.6, 1.5], [0.6, 2.5], [np.nan, 1.5]])).tolist()
    [True, False, False]
    >>> region.to_rule()
    'x0 > 0.5 and x1 > 1.0 and x1 <= 2.0'
    """

    features: tuple[int, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    names: tuple[str, ...] = field(repr=False)

    @classmethod
    def parse(cls, where: Any, names: list[str]) -> TreeRegion:
        """The box a rule describes; an error names what is not a box or not a feature."""
        from opsloop.analysis.assertions import Assertion

        condition = Assertion.from_dict({"name": "where", "when": where, "action": "flag"})
        bounds: dict[int, list[float]] = {}
        for part in _conjuncts(condition.condition):
            index, op, number = _comparison(part, names)
            low, high = bounds.setdefault(index, [-math.inf, math.inf])
            if op in ("<", "<=", "=="):
                high = min(high, number if op != "<" else float32_below(number))
            if op in (">", ">=", "=="):
                low = max(low, number if op == ">" else float32_below(number))
            bounds[index] = [low, high]
        order = sorted(bounds)
        for index in order:
            low, high = bounds[index]
            if low >= high:
                raise InvalidArgumentError(
                    f"where: the region is empty: no value of {names[index]!r} is above "
                    f"{low!r} and at most {high!r}"
                )
        return cls(
            tuple(order),
            tuple(bounds[i][0] for i in order),
            tuple(bounds[i][1] for i in order),
            tuple(names),
        )

    def contains(self, X: Any) -> np.ndarray:
        """Which rows of ``X`` (the model's columns, in its order) lie inside the box."""
        values = np.asarray(X, dtype=np.float32)
        inside = np.ones(len(values), dtype=bool)
        for index, low, high in zip(self.features, self.lower, self.upper, strict=True):
            column = values[:, index].astype(np.float64)
            inside &= (column > low) & (column <= high)  # NaN compares false: outside
        return inside

    def to_rule(self) -> str:
        """The box as a rule of ``<=`` and ``>`` comparisons, exact (it parses back equal)."""
        parts = []
        for index, low, high in zip(self.features, self.lower, self.upper, strict=True):
            name = _quoted(self.names[index])
            if low > -math.inf:
                parts.append(f"{name} > {low!r}")
            if high < math.inf or low == -math.inf:
                parts.append(f"{name} <= {high!r}")
        return " and ".join(parts)


def _quoted(name: str) -> str:
    if name.isidentifier() and name not in ("and", "or", "not", "in", "true", "false"):
        return name
    if "`" in name:
        raise InvalidArgumentError(f"feature name {name!r} has a backtick; a rule cannot name it")
    return f"`{name}`"


def _conjuncts(node: tuple) -> list[tuple]:
    if node[0] == "and":
        return _conjuncts(node[1]) + _conjuncts(node[2])
    if node[0] in ("or", "not", "in"):
        word = {"or": "'or'", "not": "'not'", "in": "'in'"}[node[0]]
        raise InvalidArgumentError(
            f"where: a region is comparisons of a feature with a number joined by 'and' "
            f"(a box the trees can split on); {word} is not allowed"
        )
    return [node]


def _number(node: tuple) -> float | None:
    """A constant number (folding unary minus and arithmetic on numbers), else ``None``."""
    if node[0] == "const":
        value = node[1]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    if node[0] == "arith":
        left, right = _number(node[2]), _number(node[3])
        if left is None or right is None:
            return None
        if node[1] == "/":
            return left / right if right else None
        return {"+": left + right, "-": left - right, "*": left * right}[node[1]]
    return None


def _comparison(node: tuple, names: list[str]) -> tuple[int, str, float]:
    if node[0] != "cmp":
        raise InvalidArgumentError(
            "where: a region is comparisons of a feature with a number joined by 'and'"
        )
    op, left, right = node[1], node[2], node[3]
    if right[0] == "field" and left[0] != "field":
        left, right, op = right, left, _FLIP.get(op, op)
    number = _number(right)
    if left[0] != "field" or number is None or math.isnan(number):
        raise InvalidArgumentError(
            "where: each comparison is of one feature with a number (like x3 > 0.5)"
        )
    if op == "!=":
        raise InvalidArgumentError("where: '!=' is not a box; write two regions instead")
    name = left[1]
    if name not in names:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise InvalidArgumentError(
            f"where: {name!r} is not a feature of the model (its features: {shown})"
        )
    return names.index(name), op, number


def leaf_rule(tree_model: Any, leaf: int) -> str:
    """The rule of the box that a single tree's leaf covers (its path's splits, merged per
    feature), to override the same box in a forest. Rows with a missing value that the tree
    sends to the leaf are not in the box.

    >>> from sklearn.tree import DecisionTreeRegressor
    >>> tree = DecisionTreeRegressor(max_depth=1).fit([[0.0], [1.0]], [0.0, 1.0])
    >>> leaf_rule(tree, 2)
    'x0 > 0.5'
    """
    structure = tree_model.tree_
    _checked_leaf(structure, leaf)
    parent: dict[int, tuple[int, bool]] = {}
    for node in range(structure.node_count):
        if structure.children_left[node] != _LEAF:
            parent[int(structure.children_left[node])] = (node, True)
            parent[int(structure.children_right[node])] = (node, False)
    bounds: dict[int, list[float]] = {}
    node = leaf
    while node in parent:
        node, went_left = parent[node]
        index, threshold = int(structure.feature[node]), float(structure.threshold[node])
        low, high = bounds.setdefault(index, [-math.inf, math.inf])
        bounds[index] = [low, min(high, threshold)] if went_left else [max(low, threshold), high]
    order = sorted(bounds)
    region = TreeRegion(
        tuple(order),
        tuple(bounds[i][0] for i in order),
        tuple(bounds[i][1] for i in order),
        tuple(feature_names(tree_model)),
    )
    return region.to_rule()


def _checked_leaf(structure: Any, leaf: Any) -> int:
    if isinstance(leaf, bool) or not isinstance(leaf, int | np.integer):
        raise InvalidArgumentError(f"leaf must be a node number (int), got {leaf!r}")
    if not 0 <= leaf < structure.node_count or structure.children_left[leaf] != _LEAF:
        raise InvalidArgumentError(
            f"leaf: node {leaf} is not a leaf of the tree (it has {structure.node_count} "
            "nodes; model.apply(X) gives the leaf of each row)"
        )
    return int(leaf)


@dataclass(frozen=True)
class TreeEdit:
    """An edited model and what the edit did: ``where`` (the region's rule as normalised by
    :meth:`TreeRegion.to_rule`) or ``leaf``, the ``value`` answered there, how many trees were
    edited, how many of their leaves were overridden whole and how many nodes were added.

    ``model`` is the edited copy; the model given is left as it was.
    """

    where: str | None
    leaf: int | None
    value: Any
    trees: int
    leaves_overridden: int
    nodes_added: int
    model: Any = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the model left out), as a registered edit records them."""
        value = self.value.item() if isinstance(self.value, np.generic) else self.value
        return {
            "where": self.where,
            "leaf": self.leaf,
            "value": value,
            "trees": self.trees,
            "leaves_overridden": self.leaves_overridden,
            "nodes_added": self.nodes_added,
        }


def _value_row(model: Any, value: Any, classifier: bool) -> tuple[np.ndarray, Any]:
    """The leaf value array that answers ``value``, and ``value`` as the model's label."""
    if int(getattr(model, "n_outputs_", 1)) != 1:
        raise InvalidArgumentError(
            f"model: {type(model).__name__} predicts {model.n_outputs_} outputs; "
            "editing supports one output"
        )
    if classifier:
        classes = list(np.asarray(model.classes_).tolist())
        if value not in classes:
            typed = [c for c in classes if str(c) == str(value)]
            if len(typed) != 1:
                raise InvalidArgumentError(
                    f"value: {value!r} is not one of the model's classes {classes}"
                )
            value = typed[0]
        row = np.zeros((1, len(classes)))
        row[0, classes.index(value)] = 1.0
        return row, np.asarray(model.classes_)[classes.index(value)]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"value: a regressor answers a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise InvalidArgumentError(f"value: must be a finite number, got {value!r}")
    return np.array([[number]]), number


def _edit_tree(structure: Any, region: TreeRegion, row: np.ndarray) -> tuple[Any, int, int]:
    """A new ``Tree`` answering ``row`` inside ``region`` (see the module), with the counts
    of leaves overridden and nodes added."""
    from sklearn.tree._tree import Tree

    state = structure.__getstate__()
    nodes, values = state["nodes"].copy(), state["values"].copy()
    # Plain lists and tuples: a walk touches each node once, and numpy's per-call cost on
    # arrays of two or three bounds would dominate it.
    left_of, right_of = nodes["left_child"].tolist(), nodes["right_child"].tolist()
    feature_of, threshold_of = nodes["feature"].tolist(), nodes["threshold"].tolist()
    missing_left_of = nodes["missing_go_to_left"].tolist()
    lower, upper = region.lower, region.upper
    slot = {feature: k for k, feature in enumerate(region.features)}
    count = len(region.features)
    inside_leaves: list[int] = []
    partial: list[tuple[int, tuple, tuple, tuple, int]] = []
    # Each entry: a node, the box of its rows on the named features, and whether a row
    # missing each feature can reach it.
    stack = [(0, (-math.inf,) * count, (math.inf,) * count, (True,) * count, 0)]
    while stack:
        node, low, high, missing, depth = stack.pop()
        if any(
            max(a, lo) >= min(b, hi) for a, b, lo, hi in zip(low, high, lower, upper, strict=True)
        ):
            continue  # no row here is inside
        left = left_of[node]
        if left != _LEAF:
            right, k = right_of[node], slot.get(feature_of[node])
            if k is None:
                stack.append((left, low, high, missing, depth + 1))
                stack.append((right, low, high, missing, depth + 1))
                continue
            threshold, to_left = threshold_of[node], bool(missing_left_of[node])
            high_left = (*high[:k], min(high[k], threshold), *high[k + 1 :])
            low_right = (*low[:k], max(low[k], threshold), *low[k + 1 :])
            missing_left = (*missing[:k], missing[k] and to_left, *missing[k + 1 :])
            missing_right = (*missing[:k], missing[k] and not to_left, *missing[k + 1 :])
            stack.append((left, low, high_left, missing_left, depth + 1))
            stack.append((right, low_right, high, missing_right, depth + 1))
        elif (
            all(a >= lo for a, lo in zip(low, lower, strict=True))
            and all(b <= hi for b, hi in zip(high, upper, strict=True))
            and not any(missing)
        ):
            inside_leaves.append(node)
        else:
            partial.append((node, low, high, missing, depth))
    values[inside_leaves] = row
    first_new, fields = len(nodes), nodes.dtype.names
    added: list[tuple] = []  # rows of the node array, in its field order
    added_values: list[np.ndarray] = []
    depth_reached = int(state["max_depth"])
    for node, low, high, missing, depth in partial:
        cuts = []  # (feature, threshold, inside is left)
        for k, feature in enumerate(region.features):
            need_low, need_high = low[k] < lower[k], high[k] > upper[k]
            if missing[k] and not (need_low or need_high):
                # only rows missing the feature are outside: any one bound's cut drops them
                need_low, need_high = lower[k] > -math.inf, lower[k] == -math.inf
            if need_low:
                cuts.append((feature, lower[k], False))
            if need_high:
                cuts.append((feature, upper[k], True))
        leaf = dict(zip(fields, nodes[node].tolist(), strict=True))
        n, w = leaf["n_node_samples"], leaf["weighted_n_node_samples"]
        outside_value = values[node].copy()
        current = node
        for feature, threshold, inside_left in cuts:
            outside, inside = first_new + len(added), first_new + len(added) + 1
            left, right = (inside, outside) if inside_left else (outside, inside)
            split = leaf | {
                "left_child": left,
                "right_child": right,
                "feature": feature,
                "threshold": threshold,
                "n_node_samples": n,
                "weighted_n_node_samples": w,
                # a row missing the feature goes to the outside child
                "missing_go_to_left": 0 if inside_left else 1,
            }
            if current == node:
                nodes[node] = tuple(split[name] for name in fields)
            else:
                added[current - first_new] = tuple(split[name] for name in fields)
            half_n, half_w = n // 2, w / 2
            outside_leaf = leaf | {"n_node_samples": half_n, "weighted_n_node_samples": half_w}
            added.append(tuple(outside_leaf[name] for name in fields))
            added_values.append(outside_value)  # answers as the leaf did
            n, w = n - half_n, w - half_w
            inside_leaf = leaf | {"n_node_samples": n, "weighted_n_node_samples": w}
            added.append(tuple(inside_leaf[name] for name in fields))
            added_values.append(row)  # replaced by the next cut, or the final leaf
            current = inside
        depth_reached = max(depth_reached, depth + len(cuts))
    if added:
        nodes = np.concatenate([nodes, np.array(added, dtype=nodes.dtype)])
        values = np.concatenate([values, np.array(added_values, dtype=values.dtype)])
    edited = Tree(
        int(structure.n_features),
        np.asarray(structure.n_classes, dtype=np.intp),
        int(structure.n_outputs),
    )
    edited.__setstate__(
        {"max_depth": depth_reached, "node_count": len(nodes), "nodes": nodes, "values": values}
    )
    return edited, len(inside_leaves), len(added)


def override_region(model: Any, value: Any, *, where: Any = None, leaf: Any = None) -> TreeEdit:
    """A copy of a fitted tree or forest that answers ``value`` inside a region, and as
    before everywhere else (see the module).

    Parameters
    ----------
    model
        A fitted ``DecisionTreeClassifier``/``Regressor``, ``ExtraTreeClassifier``/``Regressor``,
        ``RandomForestClassifier``/``Regressor`` or ``ExtraTreesClassifier``/``Regressor``
        with one output.
    value
        The answer inside the region: one of a classifier's ``classes_`` (or its text, as a
        command line gives it), or a regressor's number.
    where
        The region: a rule such as ``"x3 > 0.5 and x7 <= 2"`` (or its dict form), naming the
        features by :func:`feature_names`.
    leaf
        Or, for a single tree, one leaf's node number (``model.apply(X)`` gives each row's);
        every row that reaches it, missing values included, gets ``value``.

    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> forest = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    >>> edit = override_region(forest, 100.0, where="x2 > 0.05")
    >>> inside = edit.model.predict(X[X[:, 2] > 0.06])
    >>> bool(np.allclose(inside, 100.0)), edit.trees
    (True, 5)
    """
    singles, forests, boosted = _tree_classes()
    if isinstance(model, boosted):
        raise InvalidArgumentError(
            f"model: {type(model).__name__} is not supported: a boosted model's answer is a "
            "sum over its trees, so no leaf decides a region (an assertion rule with the "
            "'override' action changes its answers at serving time)"
        )
    if not isinstance(model, singles + forests):
        names = ", ".join(kind.__name__ for kind in singles + forests)
        raise InvalidArgumentError(
            f"model: {type(model).__name__} is not supported; editing takes {names} "
            "(and ExtraTreeClassifier/Regressor)"
        )
    if not hasattr(model, "n_features_in_"):
        raise InvalidArgumentError(f"model: {type(model).__name__} is not fitted")
    if (where is None) == (leaf is None):
        raise InvalidArgumentError("give the region as where= (a rule) or leaf= (a node), one")
    from sklearn.base import is_classifier

    row, label = _value_row(model, value, is_classifier(model))
    edited = copy.deepcopy(model)
    if leaf is not None:
        if isinstance(model, forests):
            raise InvalidArgumentError(
                "leaf: a forest's leaves belong to one tree each; give where= "
                "(leaf_rule(forest.estimators_[i], leaf) writes one leaf's rule)"
            )
        node = _checked_leaf(model.tree_, leaf)
        state = edited.tree_.__getstate__()
        state["values"][node] = row
        edited.tree_.__setstate__(state)
        return TreeEdit(None, node, label, 1, 1, 0, edited)
    region = TreeRegion.parse(where, feature_names(model))
    trees = edited.estimators_ if isinstance(model, forests) else [edited]
    overridden = added = 0
    for member in trees:
        member.tree_, leaves, nodes = _edit_tree(member.tree_, region, row)
        overridden += leaves
        added += nodes
    return TreeEdit(region.to_rule(), None, label, len(trees), overridden, added, edited)
