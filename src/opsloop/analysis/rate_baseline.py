r"""The primary's rate before the canary began, as a second test of the rate gate.

:class:`~opsloop.analysis.sequential.RateGate` compares the candidate with the primary's
*concurrent* traffic, which makes it exact for any primary rate but slow at large shares:
at 50% the primary's concurrent sample is as small as the candidate's, and the comparison's
noise is dominated by the primary's side. The primary's requests *before* the canary began
(``events`` errors in ``requests``) know its rate much better. :class:`BaselineArm` tests
the candidate's requests against that rate, beside the concurrent test:

* an upper confidence bound :math:`U` on the primary's rate, Clopper and Pearson's exact
  bound at level :math:`\alpha_U` from the baseline, and the null rate
  :math:`u = \text{ratio\_margin} \cdot U + \text{margin}`;
* a one-sample SPRT on the candidate's requests alone, of the rate :math:`u` against
  :math:`\rho u` (:math:`\rho` = ``detect_ratio``): each candidate error adds
  :math:`\log \rho`, each answer without one
  :math:`\log((1 - \rho u)/(1 - u))`; it reaches its threshold :math:`T` with chance at most
  :math:`\alpha_S` when the candidate's rate is at most :math:`u`
  (:func:`~opsloop.analysis.rate_sprt_threshold.exact_walk_threshold`, on a grid fitted
  to the small downward step, which it then does not round: on the fixed grid the
  threshold jumped by up to a third of a nat from one baseline count to the next);
* a guard: the same test on the primary's *concurrent* requests, of a rise of its rate
  from the baseline's :math:`\hat p = (k + 1/2)/(n + 1)` to :math:`\rho \hat p`, its log
  likelihood ratio kept from falling below :data:`GUARD_FLOOR`,
  :math:`G_t = \max(-F, G_{t-1} + s_t)` from :math:`G_0 = 0`. The arm fails the
  candidate only at a request where its statistic is at or above :math:`T` **and**
  :math:`G_t` is below ``guard``: a rise the primary shows too (an outage hitting both
  versions) is not the candidate's fault, and this arm holds while it lasts; the
  concurrent test, exact whatever the primary's rate, still judges. The floor lets the
  guard see an outage that begins late in the ramp within :math:`F` + ``guard`` nats of
  evidence; without it a healthy primary's statistic sinks without bound and a late
  outage would take ever longer to show. A healthy primary is above ``guard`` rarely
  (about :math:`e^{-(F + \text{guard})}` of the time, whatever its traffic), and then the
  arm only waits.

**Why the false-alarm chance stays at most** :math:`\alpha`. Suppose the null: the primary
errs with the same probability :math:`p` on every request, before the canary and during it,
the candidate with probability at most :math:`\text{ratio\_margin} \cdot p + \text{margin}`,
each request independently. The gate fails only if (a) the concurrent test reaches its
threshold, or (b) this arm's statistic reaches :math:`T`. (a) has chance at most
:math:`\alpha_C` (its own guarantee, for any primary rate). For (b), either :math:`U < p`,
which Clopper and Pearson's bound allows with chance at most :math:`\alpha_U` for every
:math:`p`, or :math:`U \ge p`: then the candidate's rate is at most :math:`u`, and given the
baseline (which the candidate's requests do not depend on) its walk reaches :math:`T` with
chance at most :math:`\alpha_S`. The guard only removes failures. So the chance of a false
alarm is at most :math:`\alpha_C + \alpha_U + \alpha_S = \alpha`, however long the gate
runs. The premise that matters is the primary's rate staying where the baseline saw it:
when both versions get worse together, (b)'s bound no longer holds, and the guard is what
keeps the candidate (the benchmark measures how well).

100 errors in 10,000 requests before the canary: the primary's rate is at most 1.261% (at
level 0.009), and three canary errors in a row (:math:`3 \log 3 = 3.296`) pass the
threshold:

>>> arm = BaselineArm(100, 10_000, alpha=0.045, detect_ratio=3.0)
>>> round(arm.upper, 5), round(arm.threshold, 3)
(0.01261, 2.96)
>>> arm.fails([True] * 3, [True] * 3).tolist()
[False, False, True]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from opsloop.analysis.rate_sprt_threshold import exact_walk_threshold
from opsloop.errors import InvalidArgumentError

#: The share of a gate's ``alpha`` its baseline test gets unless told.
BASELINE_ALPHA = 0.9
#: The share of the arm's false-alarm budget spent on the baseline's upper bound.
BOUND_SHARE = 0.2
#: The guard's threshold unless given (nats of evidence that the primary's rate rose).
DEFAULT_GUARD = 1.0
#: How far below 0 the guard's statistic may fall (nats).
GUARD_FLOOR = 3.0
#: Fewest baseline requests accepted: fewer know the primary's rate no better than the
#: concurrent traffic does.
MIN_BASELINE_REQUESTS = 1_000


def baseline_share(alpha: float, baseline_alpha: Any) -> float:
    """The part of a gate's ``alpha`` its baseline test spends: ``baseline_alpha``, or
    :data:`BASELINE_ALPHA` of ``alpha`` when ``None``; strictly between 0 and ``alpha``.

    >>> round(baseline_share(0.05, None), 4), baseline_share(0.05, 0.01)
    (0.045, 0.01)
    >>> baseline_share(0.05, 0.05)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: baseline_alpha must be below alpha 0.05, got 0.05
    """
    spent = BASELINE_ALPHA * alpha if baseline_alpha is None else baseline_alpha
    if isinstance(spent, bool) or not isinstance(spent, int | float) or not 0.0 < spent < 1.0:
        raise InvalidArgumentError(
            f"baseline_alpha must lie strictly between 0 and 1, got {baseline_alpha!r}"
        )
    if spent >= alpha:
        raise InvalidArgumentError(
            f"baseline_alpha must be below alpha {alpha!r}, got {baseline_alpha!r}"
        )
    return float(spent)


def checked_guard(guard: Any) -> float:
    """The guard's threshold, a finite number > 0.

    >>> checked_guard(2)
    2.0
    >>> checked_guard(0.0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: guard must be a number > 0, got 0.0
    """
    if not (
        isinstance(guard, int | float)
        and not isinstance(guard, bool)
        and math.isfinite(guard)
        and guard > 0
    ):
        raise InvalidArgumentError(f"guard must be a number > 0, got {guard!r}")
    return float(guard)


def _count(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():  # a JSON number read as float
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


class BaselineArm:
    r"""The one-sample test of the candidate against the primary's rate before the canary,
    with its guard (see the module).

    Parameters
    ----------
    events, requests
        The primary's errors (or other events) and requests before the canary began
        (``requests`` at least :data:`MIN_BASELINE_REQUESTS`).
    alpha
        The false-alarm budget of this arm: :data:`BOUND_SHARE` of it for the upper bound
        :math:`U`, the rest for the one-sample SPRT.
    detect_ratio, ratio_margin, margin
        As the :class:`~opsloop.analysis.sequential.RateGate`'s: the null rate is
        ``ratio_margin * U + margin`` and the alternative ``detect_ratio`` times it.
    guard
        The threshold of the guard's statistic on the primary's concurrent requests at or
        above which this arm fails nothing.

    >>> BaselineArm(5, 100, alpha=0.025)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: baseline: at least 1000 requests, got 100
    """

    def __init__(
        self,
        events: int,
        requests: int,
        *,
        alpha: float,
        detect_ratio: float = 3.0,
        ratio_margin: float = 1.0,
        margin: float = 0.0,
        guard: float = DEFAULT_GUARD,
    ) -> None:
        self.events = _count("baseline events", events)
        self.requests = _count("baseline requests", requests)
        if self.requests < MIN_BASELINE_REQUESTS:
            raise InvalidArgumentError(
                f"baseline: at least {MIN_BASELINE_REQUESTS} requests, got {self.requests}"
            )
        if self.events > self.requests:
            raise InvalidArgumentError(
                f"baseline: {self.events} events in {self.requests} requests is more than one "
                "per request"
            )
        self.guard = checked_guard(guard)
        self.alpha, self.detect_ratio = float(alpha), float(detect_ratio)
        k, n = self.events, self.requests
        bound_alpha = BOUND_SHARE * self.alpha
        self.upper = 1.0 if k == n else float(stats.beta.ppf(1.0 - bound_alpha, k + 1, n - k))
        self.null_rate = ratio_margin * self.upper + margin
        if not 0.0 < self.null_rate * self.detect_ratio < 1.0:
            raise InvalidArgumentError(
                f"baseline: the primary's rate before the canary (at most {self.upper:.4g}) "
                f"times detect_ratio {self.detect_ratio:g} leaves no rate to detect"
            )
        self.up = math.log(self.detect_ratio)
        self.down = math.log((1.0 - self.null_rate) / (1.0 - self.detect_ratio * self.null_rate))
        # The grid fitted to the small downward step: on the fixed grid its rounding made
        # the threshold jump by up to a third of a nat from one baseline count to the next.
        self.threshold = exact_walk_threshold(
            self.alpha - bound_alpha, self.null_rate, self.up, self.down, fitted_grid=True
        )
        rate = (k + 0.5) / (n + 1.0)
        self.guard_down = math.log((1.0 - rate) / (1.0 - min(self.detect_ratio * rate, 0.999)))
        self.log_likelihood_ratio = 0.0
        self.guard_statistic = 0.0

    def fails(self, candidate: Any, event: Any) -> np.ndarray:
        """Read requests in order (flag arrays); whether this arm fails the candidate at
        each. Keeps the statistics after the last request; the caller cuts its reading at
        the first failure with :meth:`keep`.

        >>> arm = BaselineArm(10, 1000, alpha=0.025)
        >>> arm.fails([False, True], [True, False]).tolist(), round(arm.guard_statistic, 4)
        ([False, False], 1.0986)
        """
        llr, guard = self.paths(candidate, event)
        self.keep(llr, guard, llr.size)
        return (llr >= self.threshold) & (guard < self.guard)

    def paths(self, candidate: Any, event: Any) -> tuple[np.ndarray, np.ndarray]:
        """The arm's statistic and the guard's after each request, from the kept state on
        (nothing kept).

        >>> llr, guard = BaselineArm(10, 1000, alpha=0.025).paths([True, False], [True] * 2)
        >>> np.round(llr, 4).tolist(), np.round(guard, 4).tolist()
        ([1.0986, 1.0986], [0.0, 1.0986])
        """
        is_candidate = np.asarray(candidate, dtype=bool)
        is_event = np.asarray(event, dtype=bool)
        step = np.where(is_event, self.up, -self.down)
        steps = np.where(is_candidate, step, 0.0)
        # From the kept value on, as one pass over every request would add them.
        llr = np.add.accumulate(np.concatenate(([self.log_likelihood_ratio], steps)))[1:]
        guard_step = np.where(is_event, self.up, -self.guard_down)
        walk = np.cumsum(np.where(is_candidate, 0.0, guard_step))
        # G_t + F follows Page's recursion C_t = max(0, C_{t-1} + s_t) from C_0 = G_0 + F,
        # whose closed form is the walk minus its running minimum, the start counting as a
        # minimum of -C_0.
        start = self.guard_statistic + GUARD_FLOOR
        guard = walk - np.minimum(np.minimum.accumulate(walk), -start) - GUARD_FLOOR
        return llr, guard

    def keep(self, llr: np.ndarray, guard: np.ndarray, end: int) -> None:
        """Keep the statistics after the first ``end`` requests of :meth:`paths`.

        >>> arm = BaselineArm(10, 1000, alpha=0.025)
        >>> arm.keep(*arm.paths([False] * 3, [True] * 3), 2)
        >>> round(arm.guard_statistic, 4)
        2.1972
        """
        if end:
            self.log_likelihood_ratio = float(llr[end - 1])
            self.guard_statistic = float(guard[end - 1])

    def evidence(self) -> dict[str, Any]:
        """The arm's numbers as JSON-ready values: the baseline, its upper bound, the
        statistic and threshold, the guard's CUSUM and threshold.

        >>> BaselineArm(10, 1000, alpha=0.025).evidence()["requests"]
        1000
        """
        return {
            "events": self.events,
            "requests": self.requests,
            "upper_rate": self.upper,
            "null_rate": self.null_rate,
            "statistic": self.log_likelihood_ratio,
            "fail_threshold": self.threshold,
            "guard": self.guard_statistic,
            "guard_threshold": self.guard,
            "guard_holds_back": self.guard_statistic >= self.guard,
        }
