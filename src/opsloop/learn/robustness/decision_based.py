"""Decision-based black-box evasion: fool a model that answers only labels, within a query budget.

:func:`hop_skip_jump_attack` follows Chen, Jordan and Wainwright's HopSkipJump (2020). It needs
nothing but ``predict``:

1. **Start** from a row the model already labels differently: another row of ``X`` with a
   different answer (its immutable features set to the attacked row's), then bisect along the
   line back to the attacked row to a point :math:`x_b` just on the adversarial side of the
   boundary.
2. **Estimate the boundary's normal** at :math:`x_b` from ``B`` labels around it:
   :math:`v = \\frac{1}{B}\\sum_b (\\phi(x_b + \\delta u_b) - \\bar\\phi)\\, u_b`, with
   :math:`\\phi = \\pm 1` for adversarial or not, :math:`u_b` random unit directions and
   :math:`\\delta = \\lVert x_b - x \\rVert / d`. ``B`` grows as :math:`\\sqrt{t}` at iteration
   ``t``. For L∞ the step direction is :math:`\\mathrm{sign}(v)`.
3. **Jump** from :math:`x_b` along :math:`v` by :math:`\\xi = \\lVert x_b - x\\rVert / \\sqrt{t}`,
   halving :math:`\\xi` until the point is adversarial (geometric search), and **bisect** back
   towards the row again: the new :math:`x_b` is closer to it.

All rows advance together: each bisection step, each round of the geometric search and each
gradient estimate is one ``predict`` call over every row still attacked (the estimate over
``rows × B`` points). A row stops when its queries left cannot pay for another iteration, so no
row ever exceeds ``max_queries``. In L∞ the bisection moves the bound of a box around the row
rather than along a line, as in the paper. With :class:`~.constraints.FeatureConstraints` every
query is clipped to the ranges and repaired (integer steps, one-hot groups, immutable features
restored) before the model sees it.

The result is a :class:`~.blackbox.BlackBoxResult`: a row counts as fooled when the closest
adversarial point found is within ``eps`` (``eps=None``: any adversarial point counts), and the
median perturbation is over the fooled rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.robustness.blackbox import BlackBoxResult
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.evasion import check_norm


def _distance(change: np.ndarray, norm: str) -> np.ndarray:
    return np.abs(change).max(axis=-1) if norm == "inf" else np.linalg.norm(change, axis=-1)


class _Labels:
    """The model's ``predict`` behind a per-row query counter: is a point adversarial?"""

    def __init__(self, model: Any, labels: np.ndarray, n: int) -> None:
        self.model, self.labels = model, labels
        self.queries = np.zeros(n, dtype=np.int64)

    def adversarial(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether each row of ``X`` (a point for attacked row ``rows[i]``) is labelled apart."""
        np.add.at(self.queries, rows, 1)
        return np.asarray(self.model.predict(X)) != self.labels[rows]


def hop_skip_jump_attack(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    eps: float | None,
    norm: Any = "l2",
    max_queries: int = 1000,
    init_evals: int = 20,
    max_evals: int = 200,
    bisection_steps: int = 10,
    geometric_steps: int = 10,
    init_tries: int = 10,
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
) -> BlackBoxResult:
    """HopSkipJump evasion of a classifier seen only through ``predict``.

    Parameters
    ----------
    model
        A fitted classifier with ``predict`` (labels, no scores).
    X, y
        Rows to attack and their labels (``None``: the model's own answers). Rows the model
        already gets wrong are not attacked. The other rows of ``X`` are the starting points,
        so ``X`` should hold rows the model labels differently.
    eps
        Budget a row's perturbation must be within to count as fooled (``None``: any).
    norm
        ``2`` (default) or ``"inf"``.
    max_queries
        Labels asked per row, everything included.
    init_evals, max_evals
        Points of the first boundary estimate, growing as :math:`\\sqrt{t}` up to ``max_evals``.
    bisection_steps, geometric_steps
        Queries of each bisection (precision :math:`2^{-steps}` of the distance) and at most
        how many halvings of the jump.
    init_tries
        Other rows tried as a start before a row is given up.
    constraints
        Ranges, integer features, one-hot groups and immutable features to respect.
    seed
        Seeds the starts and the random directions.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.svm import SVC
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> model = SVC().fit(X[:1000], y[:1000])
    >>> result = hop_skip_jump_attack(model, X[1000:1050], y[1000:1050], eps=1.5,
    ...                               max_queries=500)
    >>> result.attacked, result.success_rate, round(result.median_perturbation, 2)
    (50, 0.96, 0.92)
    >>> bool((model.predict(result.X_adv[result.success]) != y[1000:1050][result.success]).all())
    True
    """
    norm = check_norm(norm)
    eps_value = math.inf if eps is None else float(eps)
    if not eps_value > 0:
        raise ValueError(f"eps must be above 0 or None, got {eps!r}")
    for name, value in (
        ("max_queries", max_queries),
        ("init_evals", init_evals),
        ("max_evals", max_evals),
        ("bisection_steps", bisection_steps),
        ("geometric_steps", geometric_steps),
        ("init_tries", init_tries),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not hasattr(model, "predict"):
        raise TypeError(f"model must have predict, got {type(model).__name__}")
    X0 = finite_rows("X", X)
    check_model_width("X", X0, model)
    if constraints is not None:
        constraints.check(X0)
    n, d = X0.shape
    answers = np.asarray(model.predict(X0))
    labels = answers if y is None else np.asarray(y)
    if len(labels) != n:
        raise ValueError(f"y must hold one label per row of X ({n}), got {len(labels)}")
    attacked = answers == labels
    oracle = _Labels(model, labels, n)
    rng = np.random.default_rng(seed)
    mutable = np.ones(d) if constraints is None else constraints.mutable_mask

    def admissible(rows: np.ndarray, points: np.ndarray) -> np.ndarray:
        if constraints is None:
            return points
        return constraints.repair(X0[rows], constraints.clip(points), math.inf, norm)

    def blend(rows: np.ndarray, target: np.ndarray, t: np.ndarray) -> np.ndarray:
        change = target - X0[rows]
        if norm == "l2":
            return X0[rows] + t[:, None] * change
        bound = t[:, None] * np.abs(change).max(axis=1, keepdims=True)
        return X0[rows] + np.clip(change, -bound, bound)

    def bisect(rows: np.ndarray, target: np.ndarray) -> np.ndarray:
        # target is adversarial; the row itself is not: halve the gap between them
        low, high = np.zeros(len(rows)), np.ones(len(rows))
        best = target.copy()
        for _ in range(bisection_steps):
            middle = (low + high) / 2
            candidate = admissible(rows, blend(rows, target, middle))
            hit = oracle.adversarial(candidate, rows)
            best[hit] = candidate[hit]
            high = np.where(hit, middle, high)
            low = np.where(hit, low, middle)
        return best

    # 1. starts: rows of X answered differently, immutable features taken from the row
    boundary = X0.copy()
    found = np.zeros(n, dtype=bool)
    for _ in range(init_tries):
        rows = np.flatnonzero(attacked & ~found)
        if not rows.size:
            break
        # a row answered with another label: known from the answers already asked, no query
        picks = rng.integers(0, n, size=rows.size)
        for _ in range(100):
            same = answers[picks] == labels[rows]
            if not same.any():
                break
            picks[same] = rng.integers(0, n, size=int(same.sum()))
        start = X0[rows] + (X0[picks] - X0[rows]) * mutable
        start = admissible(rows, start)
        hit = oracle.adversarial(start, rows)
        boundary[rows[hit]] = start[hit]
        found[rows[hit]] = True
    rows = np.flatnonzero(found)
    if rows.size:
        boundary[rows] = bisect(rows, boundary[rows])
    best = boundary.copy()
    best_size = np.where(found, _distance(boundary - X0, norm), np.inf)
    first_success = np.where(best_size <= eps_value, oracle.queries, -1)

    iteration = 0
    while True:
        iteration += 1
        evals = min(int(init_evals * math.sqrt(iteration)), max_evals)
        cost = evals + geometric_steps + bisection_steps
        rows = np.flatnonzero(found & (oracle.queries + cost <= max_queries))
        if not rows.size:
            break
        point = boundary[rows]
        size = _distance(point - X0[rows], norm)
        # 2. the boundary's normal from `evals` labels around each boundary point
        directions = (
            rng.standard_normal((rows.size, evals, d))
            if norm == "l2"
            else (rng.uniform(-1.0, 1.0, (rows.size, evals, d)))
        )
        directions *= mutable
        directions /= np.maximum(np.linalg.norm(directions, axis=2, keepdims=True), 1e-30)
        delta = (size / d)[:, None, None]
        probes = (point[:, None, :] + delta * directions).reshape(-1, d)
        repeated = np.repeat(rows, evals)
        signs = np.where(oracle.adversarial(admissible(repeated, probes), repeated), 1.0, -1.0)
        signs = signs.reshape(rows.size, evals)
        mean = signs.mean(axis=1, keepdims=True)
        # the baseline lowers the estimate's variance, unless every label agreed
        signs = np.where(np.abs(mean) == 1.0, signs, signs - mean)
        normal = (signs[:, :, None] * directions).mean(axis=1)
        if norm == "l2":
            step = normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-30)
        else:
            step = np.sign(normal)
        # 3. jump along it, halving the jump until the point is adversarial
        jump = size / math.sqrt(iteration)
        landed = point.copy()
        open_rows = np.ones(rows.size, dtype=bool)
        for _ in range(geometric_steps):
            trying = np.flatnonzero(open_rows)
            if not trying.size:
                break
            candidate = admissible(rows[trying], point[trying] + jump[trying, None] * step[trying])
            hit = oracle.adversarial(candidate, rows[trying])
            landed[trying[hit]] = candidate[hit]
            open_rows[trying[hit]] = False
            jump[trying[~hit]] /= 2
        boundary[rows] = bisect(rows, landed)
        sizes = _distance(boundary[rows] - X0[rows], norm)
        closer = sizes < best_size[rows]
        best[rows[closer]] = boundary[rows[closer]]
        best_size[rows[closer]] = sizes[closer]
        newly = rows[(best_size[rows] <= eps_value) & (first_success[rows] < 0)]
        first_success[newly] = oracle.queries[newly]

    success = attacked & (best_size <= eps_value)
    fooled = np.flatnonzero(success)
    X_adv = np.where(success[:, None], best, X0)
    return BlackBoxResult(
        norm=norm,
        eps=eps_value,
        max_queries=max_queries,
        attacked=int(attacked.sum()),
        fooled=int(fooled.size),
        success_rate=float(fooled.size / attacked.sum()) if attacked.any() else 0.0,
        median_perturbation=float(np.median(best_size[fooled])) if fooled.size else None,
        median_queries=float(np.median(first_success[fooled])) if fooled.size else None,
        X_adv=X_adv,
        queries=oracle.queries,
        success=success,
        attack="HopSkipJump",
    )
