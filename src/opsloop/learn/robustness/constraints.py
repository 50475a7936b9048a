"""What an adversarial example may change: ranges, integer columns, one-hot groups, fixed columns.

An attack on tabular data that moves a one-hot "region" to 0.4 or an "age" to 37.3 produces
inputs no client could send, so its accuracy under attack says little. :class:`FeatureConstraints`
holds the rules in the model's input space, and the attacks in
:mod:`opsloop.learn.robustness.evasion` keep every example inside them:

* a range ``[lower, upper]`` per feature (scalars apply to every feature);
* integer features move only by whole steps (``1`` unless the feature was scaled: a feature fed as
  ``(raw - center) / scale`` moves by ``1 / scale``);
* a one-hot group stays one-hot (exactly one 1);
* immutable features do not move at all.

:meth:`FeatureConstraints.from_schema` builds them from an :class:`opsloop.data.schema.Schema`
and the model's feature names: a numeric column gives its range (an ``int`` or ``bool`` column
its steps), a ``category`` column one-hot encoded as ``<column>_<value>`` (scikit-learn's
``OneHotEncoder`` names) gives a group, and a ``category`` column fed as one number (an ordinal
code) is immutable, since no step of a code is a meaningful change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _per_feature(name: str, value: Any, n_features: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(n_features, float(array))
    if array.shape != (n_features,):
        raise ValueError(
            f"constraints field {name!r}: expected a number or {n_features} numbers, "
            f"got shape {array.shape}"
        )
    if np.isnan(array).any():
        raise ValueError(f"constraints field {name!r}: NaN is not a bound")
    return array


def _index(name: str, value: Any, n_features: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"constraints field {name!r}: feature index must be an int, got {value!r}")
    if not 0 <= value < n_features:
        raise ValueError(
            f"constraints field {name!r}: feature index {value} is outside 0..{n_features - 1}"
        )
    return int(value)


@dataclass(frozen=True)
class FeatureConstraints:
    """The domain of each input feature of a model, for attacks that must stay in it.

    Parameters
    ----------
    n_features
        Number of input features.
    lower, upper
        Inclusive bounds, one number for every feature or one per feature; infinite means open.
    integer
        Integer features: a sequence of indices (step 1), or a mapping ``index -> step``.
    one_hot
        Groups of feature indices that together hold one category as 0/1 with exactly one 1.
    immutable
        Indices of features an attacker cannot change.
    feature_names
        Names used in error messages (``None``: ``feature <index>``).

    >>> c = FeatureConstraints(3, lower=0, upper=[1, 1, 10], integer=[2])
    >>> c.upper.tolist(), c.integer_steps
    ([1.0, 1.0, 10.0], {2: 1.0})
    >>> FeatureConstraints(2, one_hot=[[0, 3]])
    Traceback (most recent call last):
    ValueError: constraints field 'one_hot': feature index 3 is outside 0..1
    """

    n_features: int
    lower: Any = -math.inf
    upper: Any = math.inf
    integer: Any = ()
    one_hot: Sequence[Sequence[int]] = ()
    immutable: Sequence[int] = ()
    feature_names: Sequence[str] | None = None
    integer_steps: dict[int, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = self.n_features
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"constraints field 'n_features': must be a positive int, got {n!r}")
        lower = _per_feature("lower", self.lower, n)
        upper = _per_feature("upper", self.upper, n)
        wrong = np.flatnonzero(lower > upper)
        if wrong.size:
            j = int(wrong[0])
            raise ValueError(
                f"constraints field 'lower': {self._name(j)} has lower {lower[j]} above "
                f"upper {upper[j]}"
            )
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        steps_given = (
            self.integer if isinstance(self.integer, Mapping) else dict.fromkeys(self.integer, 1.0)
        )
        steps: dict[int, float] = {}
        for j, step in steps_given.items():
            step = float(step)
            if not (step > 0 and math.isfinite(step)):
                raise ValueError(
                    f"constraints field 'integer': step of {self._name(j)} must be positive, "
                    f"got {step}"
                )
            steps[_index("integer", j, n)] = step
        object.__setattr__(self, "integer_steps", steps)
        groups = tuple(tuple(_index("one_hot", j, n) for j in group) for group in self.one_hot)
        used = [j for group in groups for j in group]
        if len(used) != len(set(used)):
            raise ValueError("constraints field 'one_hot': a feature is in more than one group")
        if any(len(group) < 2 for group in groups):
            raise ValueError("constraints field 'one_hot': a group needs at least two features")
        object.__setattr__(self, "one_hot", groups)
        object.__setattr__(
            self, "immutable", tuple(sorted({_index("immutable", j, n) for j in self.immutable}))
        )
        if self.feature_names is not None:
            names = tuple(str(name) for name in self.feature_names)
            if len(names) != n:
                raise ValueError(
                    f"constraints field 'feature_names': {len(names)} names for {n} features"
                )
            object.__setattr__(self, "feature_names", names)

    def _name(self, j: int) -> str:
        if self.feature_names is None:
            return f"feature {j}"
        return f"feature {self.feature_names[j]!r}"

    @property
    def mutable_mask(self) -> np.ndarray:
        """1.0 for a feature an attack may move, 0.0 for an immutable one."""
        mask = np.ones(self.n_features)
        mask[list(self.immutable)] = 0.0
        return mask

    def check(self, X: np.ndarray) -> None:
        """Raise a ValueError naming the first feature and rule that a row of ``X`` breaks.

        >>> c = FeatureConstraints(2, lower=0, upper=1, integer=[1], feature_names=["x", "k"])
        >>> c.check(np.array([[0.5, 1.0], [0.2, 0.5]]))
        Traceback (most recent call last):
        ValueError: feature 'k' is integer, row 1 has 0.5
        """
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (rows, {self.n_features}), got {X.shape}")
        # bounds compared at the data's precision: a float32 row at a float64 bound is on it
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        X = X.astype(dtype, copy=False)
        lower, upper = self.lower.astype(dtype), self.upper.astype(dtype)
        for bound, broken in (("lower", lower > X), ("upper", upper < X)):
            rows, cols = np.nonzero(broken)
            if rows.size:
                i, j = int(rows[0]), int(cols[0])
                limit = (self.lower if bound == "lower" else self.upper)[j]
                raise ValueError(
                    f"{self._name(j)} has {bound} bound {limit}, row {i} has {X[i, j]}"
                )
        for j, step in self.integer_steps.items():
            # a scaled integer feature sits on a grid whose origin only the caller knows
            if step == 1.0:
                off = np.flatnonzero(X[:, j] != np.round(X[:, j]))
                if off.size:
                    raise ValueError(
                        f"{self._name(j)} is integer, row {int(off[0])} has {X[off[0], j]}"
                    )
        for group in self.one_hot:
            block = X[:, list(group)]
            bad = np.flatnonzero(~(np.isin(block, (0.0, 1.0)).all(axis=1) & (block.sum(1) == 1)))
            if bad.size:
                names = ", ".join(self._name(j) for j in group)
                raise ValueError(
                    f"one-hot group ({names}) must hold exactly one 1, row {int(bad[0])} has "
                    f"{block[bad[0]].tolist()}"
                )

    def clip(self, X: np.ndarray) -> np.ndarray:
        """``X`` with every feature clipped into its range."""
        return np.clip(X, self.lower.astype(X.dtype), self.upper.astype(X.dtype))

    def repair(self, X0: np.ndarray, X: np.ndarray, eps: float, norm: str) -> np.ndarray:
        """``X`` moved into the domain, each row still within ``eps`` of its row in ``X0``.

        ``X`` must already be within ``eps`` and the ranges (the attacks project every step). An
        integer feature's change is truncated towards the original to whole steps; a one-hot
        group takes its largest entry's category, if the budget allows a switch (1 in L∞; in
        L2 the changes of all integer and one-hot features together must stay within ``eps``,
        else they are all undone); in L2 the other features then shrink towards the original so
        that the row's whole change stays within ``eps``. Immutable features are restored.

        >>> c = FeatureConstraints(4, lower=0, upper=9, integer=[0], one_hot=[[1, 2]])
        >>> X0 = np.array([[3.0, 1.0, 0.0, 0.5]])
        >>> c.repair(X0, np.array([[3.9, 0.4, 0.6, 0.9]]), eps=1.0, norm="inf").tolist()
        [[3.0, 0.0, 1.0, 0.9]]
        >>> c.repair(X0, np.array([[3.9, 0.4, 0.6, 0.9]]), eps=0.9, norm="inf").tolist()
        [[3.0, 1.0, 0.0, 0.9]]
        """
        X0 = np.asarray(X0)
        delta = np.asarray(X, dtype=X0.dtype) - X0
        if self.immutable:
            delta[:, list(self.immutable)] = 0.0
        discrete: list[int] = []
        if self.integer_steps:
            columns = list(self.integer_steps)
            steps = np.array(list(self.integer_steps.values()), dtype=X0.dtype)
            delta[:, columns] = np.trunc(delta[:, columns] / steps) * steps
            discrete += columns
        for group in self.one_hot:
            columns = list(group)
            original = X0[:, columns]
            chosen = np.zeros_like(original)
            rows = np.arange(len(X0))
            chosen[rows, (X0[:, columns] + delta[:, columns]).argmax(axis=1)] = 1.0
            delta[:, columns] = original if norm == "inf" and eps < 1 else chosen
            delta[:, columns] -= original
            discrete += columns
        if norm == "l2" and discrete:
            discrete_size = np.linalg.norm(delta[:, discrete], axis=1)
            over = discrete_size > eps
            delta[np.ix_(over, discrete)] = 0.0
            discrete_size[over] = 0.0
            continuous = np.setdiff1d(np.arange(delta.shape[1]), discrete)
            if continuous.size:
                budget = np.sqrt(np.maximum(eps**2 - discrete_size**2, 0.0))
                size = np.linalg.norm(delta[:, continuous], axis=1)
                factor = np.where(size > budget, budget / np.maximum(size, 1e-30), 1.0)
                delta[:, continuous] *= factor[:, None].astype(delta.dtype)
        return X0 + delta

    @classmethod
    def from_schema(
        cls,
        schema: Any,
        feature_names: Sequence[str],
        *,
        center: Mapping[str, float] | None = None,
        scale: Mapping[str, float] | None = None,
    ) -> FeatureConstraints:
        """Constraints of a model fed ``feature_names``, from the schema of the raw columns.

        ``center`` and ``scale`` give, per numeric column, how it was standardised before the
        model (``(raw - center) / scale``); bounds and integer steps are moved with it. Feature
        names the schema does not describe are left unconstrained.

        >>> from opsloop.data.schema import ColumnSchema, Schema
        >>> schema = Schema((
        ...     ColumnSchema("age", "int", min=18, max=90),
        ...     ColumnSchema("region", "category", domain=("north", "south")),
        ... ))
        >>> c = FeatureConstraints.from_schema(
        ...     schema, ["age", "region_north", "region_south"],
        ...     center={"age": 50.0}, scale={"age": 10.0})
        >>> c.lower.tolist()[0], c.upper.tolist()[0], c.integer_steps, c.one_hot
        (-3.2, 4.0, {0: 0.1}, ((1, 2),))
        """
        names = [str(name) for name in feature_names]
        position = {name: j for j, name in enumerate(names)}
        if len(position) != len(names):
            raise ValueError("feature_names: a name appears more than once")
        # a pandas Series (frame.mean()) is a mapping too, but has no truth value
        center = {} if center is None else dict(center)
        scale = {} if scale is None else dict(scale)
        for given, what in ((center, "center"), (scale, "scale")):
            unknown = sorted(set(given) - set(position))
            if unknown:
                raise ValueError(f"{what}: {unknown[0]!r} is not one of the feature names")
        n = len(names)
        lower, upper = np.full(n, -math.inf), np.full(n, math.inf)
        integer: dict[int, float] = {}
        one_hot: list[tuple[int, ...]] = []
        immutable: list[int] = []
        for column in schema.columns:
            if column.type == "category" and column.domain is not None:
                encoded = [f"{column.name}_{value}" for value in column.domain]
                if all(name in position for name in encoded):
                    group = tuple(position[name] for name in encoded)
                    one_hot.append(group)
                    lower[list(group)], upper[list(group)] = 0.0, 1.0
                    continue
            j = position.get(column.name)
            if j is None:
                continue
            if column.type in ("int", "float", "bool"):
                s = float(scale.get(column.name, 1.0))
                c = float(center.get(column.name, 0.0))
                if not (s > 0 and math.isfinite(s)):
                    raise ValueError(f"scale of {column.name!r} must be positive, got {s}")
                low, high = (0, 1) if column.type == "bool" else (column.min, column.max)
                if low is not None:
                    lower[j] = (low - c) / s
                if high is not None:
                    upper[j] = (high - c) / s
                if column.type in ("int", "bool"):
                    integer[j] = 1.0 / s
            else:
                immutable.append(j)
        return cls(
            n,
            lower=lower,
            upper=upper,
            integer=integer,
            one_hot=one_hot,
            immutable=immutable,
            feature_names=names,
        )
