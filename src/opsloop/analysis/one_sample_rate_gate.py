r"""A canary gate on one rate the user accepts: the candidate's requests alone, checked after each.

Some events have no counterpart on the primary's side. A candidate's *disagreement* with the
primary is the clearest: on each request routed to the candidate the primary answers the same
records too (a mirrored copy), and the event is "the two answers differ"; the primary never
disagrees with itself, so a test of the candidate's rate against the primary's compares it
with zero. What the user can say instead is which rate they accept ("up to 2% of answers may
change"). :class:`OneSampleRateGate` tests exactly that, on the candidate's requests only:

.. math:: H_0: p \le p_0 \quad\text{against}\quad H_1: p = p_1 = \rho\, p_0,

with :math:`p_0` = ``max_rate`` and :math:`\rho` = ``detect_ratio``, by Wald's sequential
probability ratio test. A request is one trial, its outcome :math:`x \in [0, 1]`: 0 or 1
(did the event happen), or the fraction of its records on which it happened. Each adds

.. math:: x a - (1 - x) b, \qquad a = \log(p_1/p_0),\; b = \log((1-p_0)/(1-p_1))

to the log likelihood ratio :math:`S_n`: :math:`a` for an event, :math:`-b` for a request
without one; after :math:`k` events in :math:`n` 0/1 requests :math:`S_n = k a - (n-k) b`,
the log of the ratio of the two binomial likelihoods (the binomial coefficient cancels).
One request moves :math:`S_n` by at most :math:`\max(a, b)`, however many records it has.
The gate fails the candidate when :math:`S_n` reaches its threshold :math:`c`; there is no
pass boundary: it holds or fails, and the ramp advances on its schedule while it holds.

**Why the false-alarm chance is bounded** by :math:`\alpha`, however long the gate runs
and however often it is read. The premise: given everything before, the candidate's mean
outcome per request is at most ``max_rate``, :math:`E[x_t \mid \text{past}] \le p_0` (for
fractions: the mean fraction of disagreeing records per request; the records of one
request may depend on each other in any way). :math:`L_n = e^{S_n}` multiplies by
:math:`e^{x a - (1-x) b} = r_1^x r_0^{1-x}` with :math:`r_1 = p_1/p_0 = e^a`,
:math:`r_0 = (1-p_1)/(1-p_0) = e^{-b}`, which is convex in :math:`x`, so at most its chord
:math:`x r_1 + (1-x) r_0` on :math:`[0, 1]` (equal at 0 and 1), and

.. math:: E[L_n / L_{n-1} \mid \text{past}] \le E[x_t \mid \text{past}]\, r_1
          + (1 - E[x_t \mid \text{past}])\, r_0 \le 1,

the middle being linear in the mean with a positive slope (:math:`p_1 > p_0`) and equal to
1 at :math:`p_0`. So :math:`L` is a non-negative supermartingale from :math:`L_0 = 1` for
any outcomes in :math:`[0, 1]`, and Ville's inequality gives
:math:`P(\sup_n L_n \ge e^T \mid \text{past at } m) \le e^{S_m - T}`: Wald's threshold
:math:`\log(1/\alpha)` is valid at any horizon.

*Requests of one record* (every outcome 0 or 1 so far) move :math:`S` in jumps that
overshoot a threshold, so part of the budget stays unspent; while every outcome is 0 or 1
the gate fails instead at the smallest threshold :math:`c` whose crossing chance is at
most :math:`\alpha` for the walk that moves up by :math:`a` with probability at most
:math:`p_0` and down by :math:`b` otherwise, computed on a grid that only rounds against
the gate (:func:`~opsloop.analysis.rate_sprt_threshold.exact_walk_threshold`; never above
Wald's), so requests of one record are tested exactly as they always were. That :math:`c`
is not valid for fractions: an adversary choosing each request's fraction from the
statistic can land on :math:`c` exactly, and Ville covers :math:`c` only up to
:math:`e^{-c}` (0.0595 for ``max_rate`` 0.02).

*The first fractional outcome* (strictly between 0 and 1), read with the statistic at
:math:`s`, moves the gate for good to the threshold

.. math:: T(s) = s + \max\bigl(a - \log V(c - s - a),\; -b - \log V(c - s + b)\bigr),

with :math:`V(d)` the grid's bound on the chance that the 0/1 walk, :math:`d` below
:math:`c`, ever reaches it (:math:`V = 1` for :math:`d \le 0`;
:func:`~opsloop.analysis.rate_sprt_threshold.walk_crossing_bound`). Simply switching to
:math:`\log(1/\alpha)` is not known to hold: the adversary would play 0/1 where the exact
walk is cheap for it and fractions where Ville's bound is, and the two budgets add. The
proof: let :math:`Y_n = V(c - S_n)` while every outcome is 0 or 1 (1 once :math:`c` is
reached), and :math:`Y_n = e^{S_n - T(s)}` from the switch on. Before the switch, at
:math:`S = s`, a 0/1 outcome :math:`x` leads to :math:`V(c-s-a)` or :math:`V(c-s+b)`; a
fractional one to at most :math:`e^{s - T(s)} (x e^{a} + (1-x) e^{-b})` (the chord again),
which by the choice of :math:`T(s)` is at most :math:`x V(c-s-a) + (1-x) V(c-s+b)`. So
whatever mixture of outcomes the adversary picks,
:math:`E[Y_n \mid \text{past}] \le V(c-s+b) + E[x_t \mid \text{past}](V(c-s-a) - V(c-s+b))
\le V(c - s)`: :math:`V` falls with the distance and, on the grid, on average with each
step of the 0/1 walk at up-probability :math:`p_0`. After the switch :math:`Y` is
:math:`L` scaled, a supermartingale as shown above. :math:`Y` is a non-negative
supermartingale from :math:`Y_0 = V(c) \le \alpha` and is at least 1 whenever the gate
fails, so by Ville's inequality the gate fails a candidate within the premise with chance
at most :math:`\alpha`, whatever its mixture of one-record and many-record requests.
:math:`T(s)` is never below :math:`c`; from the start (:math:`s = 0`) it is near Wald's
(3.057 for ``max_rate`` 0.02, Wald's 2.996): the price of keeping the exact threshold for
requests of one record.

Routing by a key sends one user's requests to one arm; when users differ in how often the
versions disagree on them, the rate given the past is no longer one number, and the
premise is that it stays at most ``max_rate`` for each request.

The test reads the candidate's requests only, so its threshold and its speed do not depend on
the traffic share, and a share changing during the ramp (or set by hand) changes nothing.

Written here, not taken from a library: neither ``scipy.stats`` nor ``statsmodels`` offers a
sequential probability ratio test (both test at a fixed sample size), and the gate's state
must be a few numbers that the store keeps and several serving workers update.

Three disagreements in a row against an accepted 1% (:math:`3 \log 3 = 3.296`) pass the
threshold for ``alpha=0.05``, 2.742 (Wald's :math:`\log 20` is 2.996):

>>> gate = OneSampleRateGate(max_rate=0.01)
>>> round(gate.fail_threshold, 3)
2.742
>>> [gate.update(True).verdict for _ in range(3)]
['continue', 'continue', 'fail']

References
----------
Abraham Wald. Sequential tests of statistical hypotheses. Annals of Mathematical Statistics
16(2), 1945, pp. 117-186.

Jean Ville. Étude critique de la notion de collectif. Gauthier-Villars, Paris, 1939
(the maximal inequality for non-negative supermartingales).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from opsloop.analysis.rate_sprt_threshold import exact_walk_threshold, walk_crossing_bound
from opsloop.analysis.sequential import GateDecision, Verdict, flag_array
from opsloop.errors import InvalidArgumentError


def fraction_array(name: str, values: Any) -> np.ndarray:
    """``values`` (bool, or numbers in ``[0, 1]``, one-dimensional) as a float array, or an
    error naming ``name`` and the first value that is neither.

    >>> fraction_array("event", [True, 0, 0.25]).tolist()
    [1.0, 0.0, 0.25]
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgumentError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype == bool:
        return array.astype(float)
    ok = array.dtype.kind in "iuf"
    if ok:
        array = array.astype(float)
        inside = np.isfinite(array) & (array >= 0.0) & (array <= 1.0)
        if not inside.all():
            bad = int(np.argmax(~inside))
            raise InvalidArgumentError(
                f"{name}[{bad}] = {array[bad].item()!r}: values are fractions in [0, 1]"
            )
        return array
    if array.size == 0:
        return np.zeros(0)
    raise InvalidArgumentError(f"{name} must hold numbers or bools, got {array.dtype}")


def _rate(name: str, value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0.0 < value < 1.0:
        raise InvalidArgumentError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)


class OneSampleRateGate:
    r"""Wald's SPRT of the candidate's event rate against the rate the user accepts: fails a
    candidate whose rate rose above it (see the module for the test and its bound).

    Parameters
    ----------
    max_rate
        :math:`p_0`, the event rate accepted (0.02: up to 2% of the candidate's answers may
        differ from the primary's). Strictly between 0 and 1; no default: only the user
        knows how much change is fine.
    alpha
        Bound on the chance of ever failing a candidate whose rate is at most ``max_rate``.
    detect_ratio
        :math:`\rho`, the alternative's rate as a multiple of ``max_rate`` (3: a tripled
        rate); ``detect_ratio * max_rate`` must stay below 1. The statistic drifts upward
        only at rates above :math:`b/(a+b)`, with :math:`a = \log\rho` and
        :math:`b = -\log\frac{1-\rho p_0}{1-p_0}` (0.01824 for ``max_rate`` 0.01 and
        ``detect_ratio`` 3): a rise to below that point is caught with a chance well
        under 1 (computed exactly for 0.01 and 3: 0.11 at a rate of 0.012, 0.34 at 0.015,
        0.89 at 0.018, 0.9999 at 0.02), and larger values of ``detect_ratio`` move the
        point up, catching large rises sooner and small ones less often.

    >>> OneSampleRateGate(max_rate=0.4, detect_ratio=3.0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: detect_ratio times max_rate must stay below 1, got 3.0 ...
    """

    test = "rate_sprt_one_sample"

    def __init__(self, *, max_rate: float, alpha: float = 0.05, detect_ratio: float = 3.0) -> None:
        self.max_rate = _rate("max_rate", max_rate)
        self.alpha = _rate("alpha", alpha)
        ok = (
            isinstance(detect_ratio, int | float)
            and not isinstance(detect_ratio, bool)
            and math.isfinite(detect_ratio)
            and detect_ratio > 1.0
        )
        if not ok:
            raise InvalidArgumentError(
                f"detect_ratio must be a finite number greater than 1, got {detect_ratio!r}"
            )
        self.detect_ratio = float(detect_ratio)
        if not self.detect_ratio * self.max_rate < 1.0:
            raise InvalidArgumentError(
                "detect_ratio times max_rate must stay below 1, got "
                f"{detect_ratio!r} * {max_rate!r}"
            )
        p0, p1 = self.max_rate, self.detect_rate
        self.up = math.log(p1 / p0)
        self.down = math.log((1.0 - p0) / (1.0 - p1))
        self.binary_threshold = exact_walk_threshold(self.alpha, p0, self.up, self.down)
        self.fail_threshold = self.binary_threshold
        # Set at the first fractional outcome: {"after": requests read before it,
        # "statistic": the statistic then, "threshold": the fail threshold from then on}.
        self.switch: dict[str, Any] | None = None
        self.log_likelihood_ratio = 0.0
        self.n = 0
        self.events: int | float = 0
        self.verdict: Verdict = "continue"
        self.decided_at: int | None = None

    @property
    def detect_rate(self) -> float:
        """:math:`p_1`, the alternative's rate.

        >>> OneSampleRateGate(max_rate=0.02, detect_ratio=2.5).detect_rate
        0.05
        """
        return self.detect_ratio * self.max_rate

    def fractional_threshold(self, statistic: float) -> float:
        r"""The fail threshold :math:`T(s)` the gate moves to when its first fractional
        outcome is read with the statistic at ``statistic`` (see the module: the rest of
        the false-alarm budget of the 0/1 walk, held for outcomes anywhere in
        :math:`[0, 1]`). Never below the 0/1 threshold.

        >>> gate = OneSampleRateGate(max_rate=0.02)
        >>> round(gate.binary_threshold, 3), round(gate.fractional_threshold(0.0), 3)
        (2.822, 3.057)
        """
        distance = self.binary_threshold - statistic
        bound = self.binary_bound
        near, far = bound(distance - self.up), bound(distance + self.down)
        return statistic + max(self.up - math.log(near), -self.down - math.log(far))

    def binary_bound(self, distance: float) -> float:
        """The bound on the chance that the 0/1 walk, ``distance`` below the 0/1 threshold,
        ever reaches it (1 at or past it; at most ``alpha`` from the start).

        >>> gate = OneSampleRateGate(max_rate=0.02)
        >>> gate.binary_bound(gate.binary_threshold) <= 0.05, gate.binary_bound(0.0)
        (True, 1.0)
        """
        return walk_crossing_bound(self.alpha, self.max_rate, self.up, self.down, distance)

    def _walk(self, outcomes: np.ndarray) -> int:
        """Add ``outcomes`` to the statistic up to the first that reaches the fail
        threshold; how many were read."""
        # Written so that an outcome of 0 or 1 adds exactly -b or a.
        step = outcomes * self.up - (1.0 - outcomes) * self.down
        path = np.add.accumulate(np.concatenate(([self.log_likelihood_ratio], step)))[1:]
        crossed = path >= self.fail_threshold
        end = int(np.argmax(crossed)) + 1 if crossed.any() else path.size
        self.log_likelihood_ratio = float(path[end - 1])
        self.n += end
        read = outcomes[:end]
        if isinstance(self.events, int) and np.isin(read, (0.0, 1.0)).all():
            self.events += int(read.sum())
        else:
            self.events = float(self.events + read.sum())
        if crossed.any():
            self.verdict = "fail"
            self.decided_at = self.n
        return end

    def _move_to_fractions(self) -> None:
        threshold = self.fractional_threshold(self.log_likelihood_ratio)
        self.switch = {"after": self.n, "statistic": self.log_likelihood_ratio}
        self.switch["threshold"] = threshold
        self.fail_threshold = threshold

    def update(self, event: bool | float) -> GateDecision:
        """Read one of the candidate's requests: did the event (a disagreement) happen, or
        on which fraction of its records (in ``[0, 1]``).

        >>> round(OneSampleRateGate(max_rate=0.01).update(False).statistic, 6)
        -0.020409
        >>> round(OneSampleRateGate(max_rate=0.01).update(0.5).statistic, 6)
        0.539102
        """
        return self.update_many([True], [event])

    def update_many(self, candidate: Any, event: Any, share: Any = None) -> GateDecision:
        """Read requests in order (arrays, as a :class:`~opsloop.analysis.sequential.
        RateGate` reads them; ``event`` holds 0/1 flags or fractions in ``[0, 1]``); only
        the candidate's are the test's (``share`` is not needed: the test does not depend
        on it). Stops at the first decision, as reading them one by one would. The first
        outcome strictly between 0 and 1 moves the fail threshold, before it is added,
        to :meth:`fractional_threshold`, for good.
        ``events`` counts the events while every outcome is 0 or 1, and sums the
        fractions once one is not.

        >>> d = OneSampleRateGate(max_rate=0.01).update_many([True, False, True], [1, 0, 0])
        >>> d.n_candidate, d.events_candidate, round(d.statistic, 4)
        (2, 1, 1.0782)
        >>> OneSampleRateGate(max_rate=0.01).update_many([True], [1.5])
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: event[0] = 1.5: values are fractions in [0, 1]
        """
        is_candidate = flag_array("candidate", candidate)
        fraction = fraction_array("event", event)
        if fraction.shape != is_candidate.shape:
            raise InvalidArgumentError(
                f"event has {fraction.size} values but candidate has {is_candidate.size}"
            )
        mine = fraction[is_candidate]
        if self.verdict != "continue" or mine.size == 0:
            return self.decision()
        if self.switch is None:
            fractional = (mine > 0.0) & (mine < 1.0)
            binary = int(np.argmax(fractional)) if fractional.any() else mine.size
            read = self._walk(mine[:binary]) if binary else 0
            if self.verdict != "continue" or binary == mine.size:
                return self.decision()
            mine = mine[read:]
            self._move_to_fractions()
        self._walk(mine)
        return self.decision()

    def decision(self) -> GateDecision:
        """The current verdict and its evidence: the statistic, its threshold, the
        candidate's requests read and its events among them (the primary's side is empty:
        the test reads the candidate only).

        >>> OneSampleRateGate(max_rate=0.01).decision().n_primary
        0
        """
        return GateDecision(
            verdict=self.verdict,
            test=self.test,
            statistic=self.log_likelihood_ratio,
            fail_threshold=self.fail_threshold,
            pass_threshold=None,
            n_candidate=self.n,
            n_primary=0,
            events_candidate=self.events,
            events_primary=None,
            lower=None,
            upper=None,
            decided_at=self.decided_at,
        )

    def evidence(self) -> dict[str, Any]:
        """The decision as JSON-ready values, with the rates tested: ``max_rate`` (the
        null's) and ``detect_rate`` (the alternative's), and which threshold judges:
        ``outcomes`` ``"binary"`` while every outcome was 0 or 1 (``fail_threshold`` is
        then ``binary_threshold``, exact for the 0/1 walk), ``"fractional"`` once one was
        not (``fail_threshold`` is then :meth:`fractional_threshold` of the statistic
        ``switch_statistic`` read after ``switch_after`` requests).

        >>> e = OneSampleRateGate(max_rate=0.01).evidence()
        >>> e["verdict"], e["max_rate"], e["detect_rate"], e["outcomes"]
        ('continue', 0.01, 0.03, 'binary')
        >>> gate = OneSampleRateGate(max_rate=0.02)
        >>> _ = gate.update_many([True, True], [0, 0.5])
        >>> e = gate.evidence()
        >>> e["outcomes"], e["switch_after"], round(e["fail_threshold"], 3)
        ('fractional', 1, 3.054)
        """
        switch = self.switch or {}
        return {
            **self.decision().to_dict(),
            "max_rate": self.max_rate,
            "detect_rate": self.detect_rate,
            "outcomes": "binary" if self.switch is None else "fractional",
            "binary_threshold": self.binary_threshold,
            "switch_after": switch.get("after"),
            "switch_statistic": switch.get("statistic"),
        }

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> OneSampleRateGate(max_rate=0.02).get_params()
        {'max_rate': 0.02, 'alpha': 0.05, 'detect_ratio': 3.0}
        """
        return {"max_rate": self.max_rate, "alpha": self.alpha, "detect_ratio": self.detect_ratio}

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as JSON-ready values (what the store keeps).

        >>> OneSampleRateGate(max_rate=0.02).to_dict()["state"]["n"]
        0
        """
        return {
            "test": self.test,
            "params": self.get_params(),
            "state": {
                "log_likelihood_ratio": self.log_likelihood_ratio,
                "n": self.n,
                "events": self.events,
                "verdict": self.verdict,
                "decided_at": self.decided_at,
                "fractional": None if self.switch is None else dict(self.switch),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OneSampleRateGate:
        """The gate ``to_dict`` wrote, ready to read more requests. A state kept before
        the fractional threshold existed has no ``fractional``: if it had read a fraction
        (its ``events`` a sum, not a count) it moves to the fractional threshold now, at
        its statistic, which bounds what is left of its false-alarm chance from here on.

        >>> gate = OneSampleRateGate(max_rate=0.02)
        >>> _ = gate.update(True)
        >>> again = OneSampleRateGate.from_dict(gate.to_dict())
        >>> again.events, again.decision() == gate.decision()
        (1, True)
        """
        if data.get("test") != cls.test:
            raise InvalidArgumentError(f"test must be {cls.test!r}, got {data.get('test')!r}")
        gate = cls(**data["params"])
        state = data["state"]
        gate.log_likelihood_ratio = float(state["log_likelihood_ratio"])
        gate.n = int(state["n"])
        events = state["events"]  # a count while every outcome was 0/1, else a sum
        gate.events = events if isinstance(events, int) else float(events)
        gate.verdict = state["verdict"]
        gate.decided_at = state["decided_at"]
        switch = state.get("fractional")
        if switch is not None:
            gate.switch = {
                "after": int(switch["after"]),
                "statistic": float(switch["statistic"]),
                "threshold": float(switch["threshold"]),
            }
            gate.fail_threshold = gate.switch["threshold"]
        elif (
            "fractional" not in state
            and isinstance(gate.events, float)
            and gate.verdict == "continue"
        ):
            # A gate saved before the switch existed that had read fractions: from now on
            # the threshold valid for them. One that already failed keeps the threshold it
            # failed at, so its evidence still reads as the decision it made.
            gate._move_to_fractions()
        return gate
