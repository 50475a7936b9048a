r"""The exact fail threshold of the rate SPRT: the whole false-alarm budget, none left unspent.

:class:`~opsloop.analysis.sequential.RateGate` fails a candidate when its log likelihood ratio
reaches a threshold. Ville's inequality makes :math:`\log(1/\alpha)` safe for any share, but
the statistic moves in jumps (:math:`+a` for a candidate event, :math:`-b` for a primary one)
and overshoots the threshold, so the chance of a false alarm is below :math:`\alpha`: 3.6-3.8%
for ``alpha=0.05`` at a 5-10% share. When the shares the gate can see are known, the walk under
the null is known exactly (an event is the candidate's with probability
:math:`\theta_0 = \pi r_0 / (\pi r_0 + 1 - \pi)`, whatever the primary's rate), and the smallest
threshold whose crossing probability is at most :math:`\alpha` can be computed.

With :math:`x` the distance left to the threshold, the crossing probability :math:`V(x)` obeys
:math:`V(x) = \max_\pi [\theta_0(\pi) V(x - a_\pi) + (1 - \theta_0(\pi)) V(x + b_\pi)]` with
:math:`V(x) = 1` for :math:`x \le 0`: the maximum over the shares makes it hold for any order
of the shares, even one chosen by looking at the statistic. Starting from Ville's bound
:math:`e^{-x}` (which the recursion never raises) and iterating on a grid of step ``h``
where each jump is rounded towards the threshold and the far end keeps Ville's bound, every
iterate is an upper bound on the true crossing probability, at every iteration; the threshold
returned is the smallest grid point whose bound is at most :math:`\alpha`, or Ville's
:math:`\log(1/\alpha)` if that is smaller. So the guarantee holds by construction.

For one share the gain is large (10% share, ``detect_ratio=3``: 2.662 instead of 2.996); when
the shares of a whole ramp may alternate in any order, an adversary can steer the walk so that
it hardly overshoots, and the threshold stays near Ville's (the ramp 5%, 25%, 50%: Ville's
exactly). For small shares (about 1% and below) the downward jump is a few grid steps or
none, the iteration stops before the bound settles, and the threshold returned is Ville's or
near it: safe, but nothing gained.

>>> round(exact_rate_threshold(0.05, 3.0, (0.1,)), 3)
2.662
>>> round(exact_rate_threshold(0.05, 3.0, (0.1,)), 3) < round(math.log(20), 3)
True
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from opsloop.errors import InvalidArgumentError

#: The grid step of the distance to the threshold (a rounding that only raises the bound).
GRID_STEP = 0.002
#: How far below the start the grid reaches; beyond it Ville's bound is used.
REACH = 12.0
MAX_ITERATIONS = 4000


def exact_rate_threshold(
    alpha: float, detect_ratio: float, shares: tuple[float, ...], ratio_margin: float = 1.0
) -> float:
    r"""The smallest fail threshold of the rate SPRT whose false-alarm chance is at most
    ``alpha`` for any sequence of the candidate's ``shares`` (no pass boundary; one only
    stops the walk sooner).

    >>> round(exact_rate_threshold(0.05, 3.0, (0.05,)), 3), round(math.log(20), 3)
    (2.714, 2.996)
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidArgumentError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    if not detect_ratio > 1.0 or not ratio_margin > 0.0:
        raise InvalidArgumentError(
            f"detect_ratio must exceed 1 and ratio_margin 0, got {detect_ratio!r}, {ratio_margin!r}"
        )
    unique = tuple(sorted({float(s) for s in shares}))
    if not unique or not all(0.0 < s < 1.0 for s in unique):
        raise InvalidArgumentError(f"shares must lie strictly between 0 and 1, got {shares!r}")
    return _threshold(float(alpha), float(detect_ratio), unique, float(ratio_margin))


def crossing_bound(
    alpha: float,
    detect_ratio: float,
    shares: tuple[float, ...],
    distance: float,
    ratio_margin: float = 1.0,
) -> float:
    r"""An upper bound on the chance that the null walk, ``distance`` below the fail
    threshold :func:`exact_rate_threshold` returns, ever reaches it, for any sequence of
    ``shares``: the bound the threshold was chosen by (at most ``alpha`` at distance equal
    to the threshold), and never above Ville's :math:`e^{-x}`.

    The bound, as a function of where the walk stands, can only fall on average with each
    event (each grid iterate keeps that property), so it is what a gate that stops reading
    these shares has left of its false-alarm budget (see
    :meth:`~opsloop.analysis.sequential.RateGate.allow_any_share`).

    >>> threshold = exact_rate_threshold(0.05, 3.0, (0.1,))
    >>> crossing_bound(0.05, 3.0, (0.1,), threshold) <= 0.05
    True
    >>> crossing_bound(0.05, 3.0, (0.1,), 0.0), crossing_bound(0.05, 3.0, (0.1,), 20.0)
    (1.0, 2.061153622438558e-09)
    """
    if distance <= 0.0:
        return 1.0
    unique = tuple(sorted({float(s) for s in shares}))
    exact_rate_threshold(alpha, detect_ratio, unique, ratio_margin)  # checks the arguments
    bound = _bound(float(alpha), float(detect_ratio), unique, float(ratio_margin))
    # The bound falls with the distance: the grid point at or below it bounds it.
    index = math.floor(distance / GRID_STEP)
    ville = math.exp(-distance)
    return min(float(bound[index]), ville) if index < bound.size else ville


@lru_cache(maxsize=64)
def _threshold(alpha: float, detect_ratio: float, shares: tuple, ratio_margin: float) -> float:
    bound = _bound(alpha, detect_ratio, shares, ratio_margin)
    x = np.arange(bound.size) * GRID_STEP
    # Ville's threshold is valid too: never return more than it.
    return min(float(x[int(np.argmax(bound <= alpha))]), math.log(1.0 / alpha))


@lru_cache(maxsize=64)
def _bound(alpha: float, detect_ratio: float, shares: tuple, ratio_margin: float) -> np.ndarray:
    moves = []
    for share in shares:
        r0, r1 = ratio_margin, ratio_margin * detect_ratio
        theta0 = share * r0 / (share * r0 + 1.0 - share)
        theta1 = share * r1 / (share * r1 + 1.0 - share)
        up, down = math.log(theta1 / theta0), math.log((1.0 - theta0) / (1.0 - theta1))
        moves.append((theta0, up, down))
    return _walk_bound(alpha, tuple(moves))


def exact_walk_threshold(
    alpha: float, theta0: float, up: float, down: float, *, fitted_grid: bool = False
) -> float:
    r"""The smallest fail threshold whose chance of ever being reached is at most ``alpha``
    by a walk that starts at 0 and moves up by ``up`` with probability at most ``theta0``
    and down by ``down`` otherwise (the log likelihood ratio of a one-sample Bernoulli
    SPRT, for instance), computed as for :func:`exact_rate_threshold`; never above
    Ville's :math:`\log(1/\alpha)`.

    A walk whose up-probability is below ``theta0`` reaches it less often: the bound the
    threshold is chosen by falls with the distance, so
    :math:`\theta V(x - a) + (1 - \theta) V(x + b)` grows with :math:`\theta`.

    One-sample SPRT of a 1% rate against 3%: up :math:`\log 3`, down
    :math:`\log(0.99/0.97)`:

    >>> round(exact_walk_threshold(0.05, 0.01, math.log(3.0), math.log(0.99 / 0.97)), 3)
    2.742

    With ``fitted_grid`` the grid step is the largest at most :data:`GRID_STEP` that
    divides ``down`` exactly (:func:`fitted_grid_step`), so the small downward step is not
    rounded at all and only the large upward one is (by less than a step). On the fixed
    grid a downward step of 10.9 grid steps counts as 10, a tenth of it lost, and the
    threshold moves up and down by up to a third of a nat as ``down`` varies; on the
    fitted grid it follows ``down`` smoothly. Either way every rounding is against the
    gate:

    >>> up, down = math.log(3.0), math.log((1 - 0.01077) / (1 - 3 * 0.01077))
    >>> round(exact_walk_threshold(0.036, 0.01077, up, down), 3)
    2.972
    >>> round(exact_walk_threshold(0.036, 0.01077, up, down, fitted_grid=True), 3)
    2.963
    """
    if not 0.0 < alpha < 1.0 or not 0.0 < theta0 < 1.0:
        raise InvalidArgumentError(
            f"alpha and theta0 must lie strictly between 0 and 1, got {alpha!r}, {theta0!r}"
        )
    if not up > 0.0 or not down > 0.0:
        raise InvalidArgumentError(f"up and down must be positive, got {up!r}, {down!r}")
    step = fitted_grid_step(float(down)) if fitted_grid else GRID_STEP
    bound = _walk_bound(float(alpha), ((float(theta0), float(up), float(down)),), step)
    x = np.arange(bound.size) * step
    return min(float(x[int(np.argmax(bound <= alpha))]), math.log(1.0 / alpha))


def fitted_grid_step(down: float) -> float:
    """The largest grid step at most :data:`GRID_STEP` of which ``down`` is a whole number;
    :data:`GRID_STEP` itself for a ``down`` below it, whose walk the fixed grid already
    treats as never moving away (Wald's threshold): a step fitted to a tiny ``down`` would
    make the grid, and its cost, grow as ``1 / down`` (a primary with no errors in a
    baseline of 100,000 requests: 160,000 points, 30 s).

    >>> round(fitted_grid_step(0.0219), 12), fitted_grid_step(0.004), fitted_grid_step(1e-6)
    (0.001990909091, 0.002, 0.002)
    """
    if down < GRID_STEP:
        return GRID_STEP
    steps = math.ceil(down / GRID_STEP)
    h = down / steps
    while math.floor(down / h) < steps:  # the grid floors the step: never lose one to rounding
        h = math.nextafter(h, 0.0)
    return h


def walk_crossing_bound(
    alpha: float, theta0: float, up: float, down: float, distance: float
) -> float:
    r"""An upper bound on the chance that the walk of :func:`exact_walk_threshold`,
    ``distance`` below the threshold that function returns, ever reaches it: 1 at or past
    it, never above Ville's :math:`e^{-x}`, at most ``alpha`` at the start.

    As a function of the distance it falls, and it can only fall on average with each
    step of a walk whose up-probability is at most ``theta0``: at a grid point it is
    either Ville's bound (which the steps leave unchanged on average) or a value set by
    one iteration from a larger bound; between grid points the bound of the grid point
    below is used, which rounds each step's destination as the iteration did or more
    favourably. So (the chance of having crossed) plus (the mean of this bound over the
    walks not yet across) is at most its value at the start, at every step.

    >>> up, down = math.log(3.0), math.log(0.98 / 0.94)
    >>> threshold = exact_walk_threshold(0.05, 0.02, up, down)
    >>> walk_crossing_bound(0.05, 0.02, up, down, threshold) <= 0.05
    True
    >>> walk_crossing_bound(0.05, 0.02, up, down, 0.0)
    1.0
    """
    if distance <= 0.0:
        return 1.0
    exact_walk_threshold(alpha, theta0, up, down)  # checks the arguments
    bound = _walk_bound(float(alpha), ((float(theta0), float(up), float(down)),))
    index = math.floor(distance / GRID_STEP)
    ville = math.exp(-distance)
    return min(float(bound[index]), ville) if index < bound.size else ville


@lru_cache(maxsize=512)
def _walk_bound(alpha: float, walk: tuple, h: float = GRID_STEP) -> np.ndarray:
    size = math.ceil((math.log(1.0 / alpha) + REACH) / h)
    x = np.arange(size + 1) * h
    j = np.arange(1, size + 1)
    moves = []
    for theta0, up, down in walk:
        # A candidate event brings the walk nearer by a: round the jump up (to the grid point
        # at or below x - a); a primary event moves it away by b: round it down.
        near = j - math.ceil(up / h)
        far = j + math.floor(down / h)
        far_bound = np.exp(-(x[1:] + down))  # Ville's bound beyond the grid's end
        # The indices never change between iterations: clip them once.
        moves.append(
            (
                theta0,
                near <= 0,
                np.clip(near, 0, size),
                far > size,
                np.clip(far, 0, size),
                far_bound,
            )
        )
    bound = np.exp(-x)
    bound[0] = 1.0
    for _ in range(MAX_ITERATIONS):
        step = np.zeros(size)
        for theta0, reached, near, beyond, far, far_bound in moves:
            v_near = np.where(reached, 1.0, bound[near])
            v_far = np.where(beyond, far_bound, bound[far])
            step = np.maximum(step, theta0 * v_near + (1.0 - theta0) * v_far)
        new = np.minimum(step, bound[1:])
        change = float(np.max(bound[1:] - new))
        bound[1:] = new
        if change < 1e-12:
            break
    bound.flags.writeable = False  # cached and shared
    return bound
