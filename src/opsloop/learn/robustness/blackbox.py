"""Black-box evasion: fool a model seen only through ``predict_proba``, within a query budget.

:func:`random_search_attack` is a score-based random search in the spirit of Andriushchenko et
al.'s Square Attack (2020), for tabular rows: start from a random corner of the ``eps``-ball
(L∞) or a random point on its sphere (L2); then, each round, redraw the change of a random
``fraction`` of the features and keep the proposal when it lowers the margin
:math:`p_y(x) - \\max_{k \\ne y} p_k(x)`. A row is fooled when the model's top class is no longer
``y``. Once fooled, a bisection along the line back to the original finds the smallest
multiple of the change that still fools the model, so the reported perturbation is near the
smallest one along that direction, not just the budget.

Every round costs one query per row still being attacked, and all rows of a round go to the
model in one ``predict_proba`` call. Rows the model already gets wrong are not attacked and not
counted in the success rate. Constraints (:class:`~.constraints.FeatureConstraints`) hold for
every query: proposals are clipped to the ranges, immutable features are not drawn, and integer
and one-hot features are repaired before the model sees them.

A model with ``predict`` only (labels, no scores) needs a decision-based attack:
:func:`~.decision_based.hop_skip_jump_attack`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.evasion import check_norm
from opsloop.learn.robustness.membership import (
    class_probabilities,
    label_columns,
    model_classes,
)


@dataclass(frozen=True)
class BlackBoxResult:
    """Outcome of a black-box evasion attack.

    ``success_rate`` is the share of attacked rows (those the model got right) that were fooled
    within the budget; ``median_perturbation`` the median distance (in ``norm``) of the fooled
    rows from their originals, and ``median_queries`` the median number of queries they took.
    ``X_adv`` holds every row: fooled rows replaced, others unchanged. ``attack`` names the
    attack that produced it.
    """

    norm: str
    eps: float
    max_queries: int
    attacked: int
    fooled: int
    success_rate: float
    median_perturbation: float | None
    median_queries: float | None
    X_adv: np.ndarray = field(repr=False, compare=False)
    queries: np.ndarray = field(repr=False, compare=False)
    success: np.ndarray = field(repr=False, compare=False)
    attack: str = "random search"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the arrays left out)."""
        return {
            "attack": self.attack,
            "norm": self.norm,
            # no budget (a decision-based attack counting any adversarial point) is null
            "eps": None if np.isinf(self.eps) else self.eps,
            "max_queries": self.max_queries,
            "attacked": self.attacked,
            "fooled": self.fooled,
            "success_rate": self.success_rate,
            "median_perturbation": self.median_perturbation,
            "median_queries": self.median_queries,
        }


def _distance(change: np.ndarray, norm: str) -> np.ndarray:
    return np.abs(change).max(axis=1) if norm == "inf" else np.linalg.norm(change, axis=1)


class _Oracle:
    """The model behind a query counter: margins of rows, each call counted per row."""

    def __init__(self, model: Any, classes: np.ndarray, labels: np.ndarray, n: int) -> None:
        self.model, self.classes, self.labels = model, classes, labels
        self.queries = np.zeros(n, dtype=np.int64)

    def margin(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        self.queries[rows] += 1
        probabilities = class_probabilities(self.model, X, self.classes)
        own = probabilities[np.arange(len(rows)), self.labels[rows]]
        probabilities[np.arange(len(rows)), self.labels[rows]] = -np.inf
        return own - probabilities.max(axis=1)


def random_search_attack(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    eps: float,
    norm: Any = "inf",
    max_queries: int = 500,
    fraction: float = 0.1,
    bisection_steps: int = 10,
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
) -> BlackBoxResult:
    """Score-based random-search evasion of a classifier with ``predict_proba``.

    Parameters
    ----------
    model
        A fitted classifier with ``predict_proba`` (and ``classes_`` if its classes are not
        ``0..k-1``).
    X, y
        Rows to attack and their classes (``None``: the model's own predictions).
    eps
        Budget: largest change of a row in ``norm`` (``"inf"`` or ``2``).
    max_queries
        Queries allowed per row, the bisection's included.
    fraction
        Share of the (mutable) features whose change each proposal redraws.
    bisection_steps
        Queries spent shrinking each fooled row's change (0: keep the change found).
    constraints
        Ranges, integer features, one-hot groups and immutable features to respect.
    seed
        Seeds the proposals.

    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((300, 5)); y = (X[:, 0] + X[:, 1] > 1).astype(int)
    >>> model = LogisticRegression(C=100).fit(X, y)
    >>> result = random_search_attack(model, X[:50], y[:50], eps=0.2, max_queries=200)
    >>> result.success_rate > 0.5, result.median_perturbation <= 0.2
    (True, True)
    """
    norm = check_norm(norm)
    eps = float(eps)
    if not (eps > 0 and np.isfinite(eps)):
        raise ValueError(f"eps must be finite and above 0, got {eps}")
    if isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 2:
        raise ValueError(f"max_queries must be an int of at least 2, got {max_queries!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if not 0 <= bisection_steps < max_queries:
        raise ValueError(f"bisection_steps must be in [0, max_queries), got {bisection_steps!r}")
    X0 = finite_rows("X", X)
    check_model_width("X", X0, model)
    if constraints is not None:
        constraints.check(X0)
    n, d = X0.shape
    classes = model_classes(model, X0)
    probabilities = class_probabilities(model, X0, classes)
    labels = probabilities.argmax(axis=1) if y is None else label_columns(y, classes)
    if len(labels) != n:
        raise ValueError(f"y must hold one class per row of X ({n}), got {len(labels)}")
    attacked = probabilities.argmax(axis=1) == labels
    mutable = np.arange(d) if constraints is None else np.flatnonzero(constraints.mutable_mask > 0)
    rng = np.random.default_rng(seed)
    oracle = _Oracle(model, classes, labels, n)

    def admissible(rows: np.ndarray, delta: np.ndarray) -> np.ndarray:
        candidate = X0[rows] + delta
        if constraints is None:
            return candidate
        # clipping towards the range can only shorten the change, so the budget still holds
        return constraints.repair(X0[rows], constraints.clip(candidate), eps, norm)

    def draw(shape: tuple[int, int]) -> np.ndarray:
        if norm == "inf":
            return eps * rng.choice((-1.0, 1.0), size=shape)
        return rng.normal(size=shape)

    def to_sphere(delta: np.ndarray) -> np.ndarray:
        if norm == "inf":
            return delta
        size = np.linalg.norm(delta, axis=1, keepdims=True)
        return eps * delta / np.maximum(size, 1e-30)

    delta = np.zeros_like(X0)
    delta[:, mutable] = to_sphere(draw((n, mutable.size)))
    active = np.flatnonzero(attacked)
    current = X0.copy()
    margins = np.full(n, np.inf)
    success = np.zeros(n, dtype=bool)
    if active.size:
        current[active] = admissible(active, delta[active])
        margins[active] = oracle.margin(current[active], active)
        success[active] = margins[active] < 0
    changed = max(1, round(fraction * mutable.size))
    search_budget = max_queries - bisection_steps
    while True:
        active = np.flatnonzero(attacked & ~success & (oracle.queries < search_budget))
        if not active.size:
            break
        proposal = delta[active].copy()
        # a random `changed` of the mutable features per row, drawn without replacement
        picks = mutable[np.argsort(rng.random((active.size, mutable.size)), axis=1)[:, :changed]]
        redrawn = draw((active.size, changed))
        if norm == "inf":
            np.put_along_axis(proposal, picks, redrawn, axis=1)
        else:
            moved = np.take_along_axis(proposal, picks, axis=1) + redrawn * eps / np.sqrt(d)
            np.put_along_axis(proposal, picks, moved, axis=1)
            proposal[:, mutable] = to_sphere(proposal[:, mutable])
        candidate = admissible(active, proposal)
        candidate_margin = oracle.margin(candidate, active)
        better = candidate_margin < margins[active]
        keep = active[better]
        delta[keep], current[keep] = proposal[better], candidate[better]
        margins[keep] = candidate_margin[better]
        success[keep] = margins[keep] < 0
    fooled = np.flatnonzero(success)
    if fooled.size and bisection_steps:
        # the smallest t in [0, 1] with x0 + t * change still fooling the model, by bisection
        low, high = np.zeros(fooled.size), np.ones(fooled.size)
        change = current[fooled] - X0[fooled]
        best = current[fooled].copy()
        for _ in range(bisection_steps):
            middle = (low + high) / 2
            candidate = admissible(fooled, middle[:, None] * change)
            still = oracle.margin(candidate, fooled) < 0
            best[still] = candidate[still]
            high = np.where(still, middle, high)
            low = np.where(still, low, middle)
        current[fooled] = best
    sizes = _distance(current[fooled] - X0[fooled], norm)
    X_adv = np.where(success[:, None], current, X0)
    return BlackBoxResult(
        norm=norm,
        eps=eps,
        max_queries=max_queries,
        attacked=int(attacked.sum()),
        fooled=int(fooled.size),
        success_rate=float(fooled.size / attacked.sum()) if attacked.any() else 0.0,
        median_perturbation=float(np.median(sizes)) if fooled.size else None,
        median_queries=float(np.median(oracle.queries[fooled])) if fooled.size else None,
        X_adv=X_adv,
        queries=oracle.queries,
        success=success,
    )
