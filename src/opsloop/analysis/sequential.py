r"""Sequential tests for canary gates: candidate against primary, checked after every request.

A canary gate looks at its data after every request and must not raise false alarms because
it looked often. Both tests here are *always valid*: the chance that a healthy candidate is
ever failed, however long the gate runs and however often it is read, is at most ``alpha``.

* :class:`RateGate` for rates (errors, disagreement with the primary, latency above a bound):
  Wald's SPRT on *which arm each event came from*. Given that an event happened on a request
  routed to the candidate with probability :math:`\pi`, it is the candidate's with probability
  :math:`\theta(r) = \pi r / (\pi r + 1 - \pi)`, where :math:`r = p_c / p_p` is the ratio of
  the two arms' rates. The primary's rate drops out, so the test is exact for any primary rate
  and any traffic share, including a share that changes as the ramp moves. It needs few
  requests when events are rare: most information about a rare-event rate is in the events.
* :class:`MeanGate` for continuous metrics (latency, a score): the mixture SPRT of Johari,
  Pekelis and Walsh with a normal mixture over the difference of means, read as a confidence
  sequence for the difference. It plugs in the arms' sample variances, so its guarantee is
  asymptotic; ``min_samples`` keeps it quiet until the variances mean something.

A latency p99 gate is a :class:`RateGate` on exceedances: an event is a request slower than a
bound (the primary's p99 before the canary, or the SLO). If the candidate is no slower, its
share of exceedances is the primary's, exactly.

Every decision carries its evidence (:class:`GateDecision`): the statistic, the thresholds,
the samples and events per arm and the verdict (``continue``, ``pass``, ``fail``). A decision
is final: later observations leave the gate unchanged, as a sequential test stops when it
decides. The state is a few numbers, ``to_dict()``/``from_dict()`` round-trip it through
JSON, so several serving workers share one gate through the store.

Written here, not taken from a library: ``statsmodels`` and ``scipy`` test at a fixed
horizon only, the conditional SPRT with a traffic share that changes per request is a dozen
lines, and the gate needs a state of a few numbers that the store can hold and several
workers can update.

>>> gate = RateGate(detect_ratio=3.0)
>>> decision = gate.update_many([True] * 4, [True] * 4, share=0.1)
>>> decision.verdict, decision.n_candidate, round(decision.statistic, 4)
('fail', 4, 3.6652)

References
----------
Abraham Wald. Sequential tests of statistical hypotheses. Annals of Mathematical Statistics
16(2), 1945, pp. 117-186.

Ramesh Johari, Pete Koomen, Leonid Pekelis, David Walsh. Always valid inference: continuous
monitoring of A/B tests. Operations Research 70(3), 2022, pp. 1806-1821 (arXiv:1512.04922).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from opsloop.analysis.rate_baseline import DEFAULT_GUARD, BaselineArm, baseline_share
from opsloop.analysis.rate_sprt_threshold import crossing_bound, exact_rate_threshold
from opsloop.errors import InvalidArgumentError

Verdict = Literal["continue", "pass", "fail"]


@dataclass(frozen=True)
class GateDecision:
    """A gate's verdict with the evidence behind it.

    ``statistic`` is the test's log likelihood ratio (``RateGate``) or log mixture likelihood
    ratio at the margin (``MeanGate``); ``fail_threshold`` and ``pass_threshold`` are the
    values it is compared with (``pass_threshold`` is ``None`` for a gate that never passes
    on its own). ``lower`` and ``upper`` bound the candidate-minus-primary difference
    (``MeanGate`` only). ``decided_at`` counts the observations the gate had read when it
    decided (``None`` while it continues).

    >>> d = GateDecision("continue", "rate", 0.5, 2.99, None, 10, 90, 1, 1, None, None, None)
    >>> d.to_dict()["verdict"], GateDecision.from_dict(d.to_dict()) == d
    ('continue', True)
    """

    verdict: Verdict
    test: str
    statistic: float | None
    fail_threshold: float
    pass_threshold: float | None
    n_candidate: int
    n_primary: int
    events_candidate: int | float | None
    events_primary: int | None
    lower: float | None
    upper: float | None
    decided_at: int | None
    baseline: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The decision as plain JSON-ready values (no infinities or NaN: ``None`` instead).

        >>> MeanGate(effect=1.0).decision().to_dict()["lower"] is None
        True
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        """The decision ``to_dict`` wrote.

        >>> d = RateGate().decision()
        >>> GateDecision.from_dict(d.to_dict()) == d
        True
        """
        return cls(**data)


def _probability(name: str, value: float, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise InvalidArgumentError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)


def _positive(name: str, value: float, *, minimum: float = 0.0, strict: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (strict and value == minimum):
        rule = f"greater than {minimum}" if strict else f"at least {minimum}"
        raise InvalidArgumentError(f"{name} must be a finite number {rule}, got {value!r}")
    return float(value)


def _shares(values: Any) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise InvalidArgumentError(f"shares must be a list of numbers, got {values!r}")
    shares = list(values)
    if not shares or not all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and 0.0 < s < 1.0 for s in shares
    ):
        raise InvalidArgumentError(
            f"shares must be numbers strictly between 0 and 1, at least one, got {values!r}"
        )
    return sorted({float(s) for s in shares})


def _alpha_of(gate: Any) -> float:
    """A gate's ``alpha``, always set (``_probability`` returns ``None`` only when allowed).

    >>> _alpha_of(RateGate(alpha=0.01))
    0.01
    """
    return float(gate.alpha)


def flag_array(name: str, values: Any) -> np.ndarray:
    """``values`` (bool or 0/1, one-dimensional) as a bool array, or an error naming
    ``name`` and the first value that is neither.

    >>> flag_array("event", [0, 1, True]).tolist()
    [False, True, True]
    >>> flag_array("event", [0, 2])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: event[1] = 2: values are 0/1 or bool
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgumentError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype != bool:
        if array.size and not np.isin(array, (0, 1)).all():
            bad = int(np.argmax(~np.isin(array, (0, 1))))
            raise InvalidArgumentError(
                f"{name}[{bad}] = {array[bad].item()!r}: values are 0/1 or bool"
            )
        array = array.astype(bool)
    return array


class RateGate:
    r"""Wald's SPRT on the arm of each event: fails a candidate whose rate is too high.

    For an event on a request sent to the candidate with probability :math:`\pi`, the log
    likelihood ratio grows by :math:`\log(\theta_1/\theta_0)` if the event is the candidate's
    and by :math:`\log((1-\theta_1)/(1-\theta_0))` if it is the primary's, with
    :math:`\theta_j = \pi r_j / (\pi r_j + 1 - \pi)`. The null ratio is
    :math:`r_0 = \text{ratio\_margin}` (the candidate's rate is at most that many times the
    primary's) and the alternative :math:`r_1 = \text{detect\_ratio} \cdot r_0`. The gate fails
    when the sum reaches :math:`\log((1-\beta)/\alpha)` and passes when it falls to
    :math:`\log(\beta/(1-\alpha))`. Requests without an event add nothing; they are counted as
    evidence.

    Parameters
    ----------
    alpha
        Bound on the chance of ever failing a candidate whose rate is within the margin
        (Ville's inequality makes it hold however long the gate runs).
    beta
        Bound on the chance of passing a candidate ``detect_ratio`` times worse. ``None``
        (default): the gate never passes on its own, it only holds or fails, and the ramp
        advances on its schedule while it holds.
    detect_ratio
        How many times the null's rate the alternative is (3: a tripled error rate). Larger
        values detect large jumps sooner and small ones later.
    ratio_margin
        The candidate may have up to this many times the primary's rate (1: no worse).
    margin
        An allowance in absolute rate added to the primary's rate ("primary + 0.5 percentage
        points" is ``margin=0.005``). It enters as :math:`r_0 = \text{ratio\_margin} +
        \text{margin} / \tilde p_p` with the primary's rate :math:`\tilde p_p = (k_p + 1/2) /
        (n_p + 1)` from the requests *before* each event; the primary's estimated rate makes
        the bound approximate rather than exact (the benchmark measures it).
    shares
        The candidate's traffic shares the gate will see (a canary's ramp steps below 1).
        ``None`` (default): any share, and the fail threshold is Ville's
        :math:`\log((1-\beta)/\alpha)`, whose false-alarm chance is at most
        :math:`\alpha/(1-\beta)`. Given (and with ``margin=0``), the fail threshold is the
        smallest whose false-alarm chance is at most that same budget for any sequence of
        these shares, computed exactly (:mod:`~opsloop.analysis.rate_sprt_threshold`); it is
        never above Ville's, and lower only where the statistic's overshoot leaves part of
        the budget unspent (one share, or a few close ones: for the default ramp 5%, 25%,
        50% it is Ville's). A share outside them is refused until :meth:`allow_any_share`.
    baseline
        Opt-in: ``[events, requests]``, the primary's events and requests before the
        candidate began. The gate then also tests the candidate's requests alone against
        the primary's rate then (:class:`~opsloop.analysis.rate_baseline.BaselineArm`, whose
        docstring proves the bound), which detects much sooner at large shares. ``alpha``
        is split: ``baseline_alpha`` for that test, the rest for the concurrent one, so the
        false-alarm chance stays at most ``alpha`` while the primary's rate stays where the
        baseline saw it. The baseline test holds while the primary's concurrent requests
        show a rise of their own (the guard's statistic at or above ``guard``): an outage
        hitting both versions is left to the concurrent test. Not with ``beta``.
    baseline_alpha
        The baseline test's part of ``alpha`` (default
        :data:`~opsloop.analysis.rate_baseline.BASELINE_ALPHA` of it: a gate given a
        baseline is meant for large shares, where the concurrent test is slow anyway).
    guard
        The threshold of the guard's statistic (default
        :data:`~opsloop.analysis.rate_baseline.DEFAULT_GUARD`).

    Every threshold here assumes that each request reaches the candidate independently with
    probability ``share``. Routing by a key (a deployment's ``routing_key_field`` or the
    ``X-Routing-Key`` header) sends all of one user's requests to one arm; when users'
    event rates differ, the arm of an event is no longer an independent draw, and neither
    the exact threshold nor Ville's bounds the false-alarm chance.

    Examples
    --------
    With a 10% share and ``detect_ratio=3``, an event is the candidate's with probability 0.1
    under the null and 0.25 under the alternative; each candidate event adds
    :math:`\log 2.5 = 0.916`, each primary event :math:`\log(0.75/0.9) = -0.182`, and the gate
    fails at :math:`\log 20 = 2.996`:

    >>> gate = RateGate(detect_ratio=3.0)
    >>> gate.update(False, False, share=0.1).verdict
    'continue'
    >>> for _ in range(3):
    ...     decision = gate.update(True, True, share=0.1)
    >>> decision.verdict, round(decision.statistic, 4), round(decision.fail_threshold, 4)
    ('continue', 2.7489, 2.9957)
    >>> gate.update(True, True, share=0.1).verdict
    'fail'
    >>> RateGate.from_dict(gate.to_dict()).decision() == gate.decision()
    True

    Told that the share is always 10%, the gate fails at 2.662, where the false-alarm chance
    is still at most 5%:

    >>> round(RateGate(shares=(0.1,)).fail_threshold, 3)
    2.662
    """

    test = "rate_sprt"

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        beta: float | None = None,
        detect_ratio: float = 3.0,
        ratio_margin: float = 1.0,
        margin: float = 0.0,
        shares: tuple[float, ...] | list[float] | None = None,
        baseline: tuple[int, int] | list[int] | None = None,
        baseline_alpha: float | None = None,
        guard: float = DEFAULT_GUARD,
    ) -> None:
        self.alpha = _probability("alpha", alpha)
        self.beta = _probability("beta", beta, allow_none=True)
        self.detect_ratio = _positive("detect_ratio", detect_ratio, minimum=1.0)
        self.ratio_margin = _positive("ratio_margin", ratio_margin)
        self.margin = _positive("margin", margin, strict=False)
        if self.margin >= 1.0:
            raise InvalidArgumentError(f"margin is an absolute rate below 1, got {margin!r}")
        self.shares = None if shares is None else tuple(_shares(shares))
        self._baseline = self._baseline_arm(baseline, baseline_alpha, guard)
        self.baseline_alpha: float | None = None
        if self._baseline is not None:
            self.baseline_alpha = self._baseline.alpha
        self.failed_by: str | None = None
        self._exact_threshold = None
        if self.shares is not None and self.margin == 0.0:
            self._exact_threshold = exact_rate_threshold(
                self._budget, self.detect_ratio, self.shares, self.ratio_margin
            )
        self.fallback_threshold: float | None = None
        self.log_likelihood_ratio = 0.0
        self.n_candidate = 0
        self.n_primary = 0
        self.events_candidate = 0
        self.events_primary = 0
        self.verdict: Verdict = "continue"
        self.decided_at: int | None = None

    def _baseline_arm(
        self, baseline: Any, baseline_alpha: float | None, guard: float
    ) -> BaselineArm | None:
        if baseline is None:
            return None
        if self.beta is not None:
            raise InvalidArgumentError("baseline: not with beta (the gate only holds or fails)")
        if isinstance(baseline, (str, bytes)) or len(baseline) != 2:
            raise InvalidArgumentError(f"baseline must be [events, requests], got {baseline!r}")
        spent = baseline_share(float(_alpha_of(self)), baseline_alpha)
        return BaselineArm(
            baseline[0],
            baseline[1],
            alpha=spent,
            detect_ratio=self.detect_ratio,
            ratio_margin=self.ratio_margin,
            margin=self.margin,
            guard=guard,
        )

    @property
    def _budget(self) -> float:
        # Ville's inequality bounds the chance of reaching Wald's log((1 - beta)/alpha) by
        # alpha/(1 - beta): the exact threshold spends that same budget. The baseline
        # test's part of alpha is not the concurrent test's.
        alpha = _alpha_of(self) - (self.baseline_alpha or 0.0)
        return alpha / (1.0 - (self.beta or 0.0))

    @property
    def fail_threshold(self) -> float:
        """:math:`\\log((1-\\beta)/\\alpha)`, or :math:`\\log(1/\\alpha)` without ``beta``;
        the exact threshold for the same budget when ``shares`` are given; after
        :meth:`allow_any_share`, the threshold it set.

        >>> round(RateGate(alpha=0.05, beta=0.2).fail_threshold, 4)
        2.7726
        >>> round(RateGate(alpha=0.05, beta=0.2, shares=(0.1,)).fail_threshold, 4)
        2.432
        """
        if self.fallback_threshold is not None:
            return self.fallback_threshold
        if self._exact_threshold is not None:
            return self._exact_threshold
        return -math.log(self._budget)

    def allow_any_share(self) -> None:
        r"""From now on read requests at any share, keeping the evidence so far; the fail
        threshold becomes :math:`T = L - \log V(c - L)`, with :math:`L` the statistic now,
        :math:`c` the exact threshold for ``shares`` and :math:`V` the bound on the chance
        of reaching it (:func:`~opsloop.analysis.rate_sprt_threshold.crossing_bound`).

        Why the false-alarm budget still holds: :math:`V(c - L)` falls on average with
        each event at the gate's shares, so (the chance of having failed so far) plus (the
        mean of :math:`V(c - L)` over the walks still going) is at most :math:`V(c)`,
        itself within the budget. From here on, at any share, Ville's inequality bounds the
        chance of ever reaching :math:`T` by :math:`e^{L - T} = V(c - L)`: the rest of the
        budget, and no more. Keeping the statistic with Ville's :math:`\log(1/\alpha)`
        instead is not known to hold: the exact threshold may have spent the whole budget
        on the shares, and the bound becomes :math:`\alpha (2 - \alpha e^c)`; restarting
        the evidence spends it twice, :math:`\alpha (2 - \alpha)` (a walk at 10% for 40
        events, then at 20%: above 7% for ``alpha=0.05``). :math:`T` is at least :math:`c`,
        with the statistic at 0 Ville's threshold for the budget or above, and below
        Ville's only for a walk already well on its way. A gate without ``shares``, or
        whose threshold is Ville's already (a ``margin``), keeps its threshold.

        >>> gate = RateGate(shares=(0.1,))
        >>> _ = gate.update_many([True, True], [True, True], share=0.1)
        >>> round(gate.log_likelihood_ratio, 3), gate.fail_threshold
        (1.833, 2.662)
        >>> gate.allow_any_share()
        >>> round(gate.fail_threshold, 3), gate.update(True, True, share=0.2).verdict
        (2.96, 'continue')
        """
        if self.shares is None or self.fallback_threshold is not None:
            return
        if self._exact_threshold is None:
            self.fallback_threshold = self.fail_threshold
            return
        left = crossing_bound(
            self._budget,
            self.detect_ratio,
            self.shares,
            self._exact_threshold - self.log_likelihood_ratio,
            self.ratio_margin,
        )
        self.fallback_threshold = self.log_likelihood_ratio - math.log(left)

    @property
    def pass_threshold(self) -> float | None:
        """:math:`\\log(\\beta/(1-\\alpha))`, or ``None`` without ``beta``.

        >>> round(RateGate(alpha=0.05, beta=0.2).pass_threshold, 4)
        -1.5581
        """
        return None if self.beta is None else math.log(self.beta / (1.0 - self.alpha))

    def decision(self) -> GateDecision:
        """The current verdict and its evidence.

        >>> RateGate().decision().verdict
        'continue'
        """
        return GateDecision(
            verdict=self.verdict,
            test=self.test,
            statistic=self.log_likelihood_ratio,
            fail_threshold=self.fail_threshold,
            pass_threshold=self.pass_threshold,
            n_candidate=self.n_candidate,
            n_primary=self.n_primary,
            events_candidate=self.events_candidate,
            events_primary=self.events_primary,
            lower=None,
            upper=None,
            decided_at=self.decided_at,
            baseline=None
            if self._baseline is None
            else {**self._baseline.evidence(), "failed_by": self.failed_by},
        )

    def update(self, candidate: bool, event: bool, share: float) -> GateDecision:
        """Read one request: was it the candidate's, did the event (an error) happen, and the
        candidate's traffic share when it was routed.

        >>> round(RateGate(detect_ratio=3.0).update(False, True, share=0.5).statistic, 4)
        -0.6931
        """
        return self.update_many([bool(candidate)], [bool(event)], share)

    def update_many(self, candidate: Any, event: Any, share: Any) -> GateDecision:
        """Read requests in order (arrays of flags; ``share`` a number or one per request);
        stops at the first decision, as :meth:`update` one by one would.

        >>> d = RateGate().update_many([True, False, True], [False, False, True], share=0.1)
        >>> d.n_candidate, d.n_primary, d.events_candidate
        (2, 1, 1)
        """
        is_candidate = flag_array("candidate", candidate)
        is_event = flag_array("event", event)
        if is_event.shape != is_candidate.shape:
            raise InvalidArgumentError(
                f"event has {is_event.size} values but candidate has {is_candidate.size}"
            )
        shares = np.broadcast_to(np.asarray(share, dtype=np.float64), is_candidate.shape)
        if shares.size and not ((shares > 0.0) & (shares < 1.0)).all():
            bad = int(np.argmax(~((shares > 0.0) & (shares < 1.0))))
            raise InvalidArgumentError(
                f"share[{bad}] = {float(shares[bad])!r} breaks the rule 0 < share < 1"
            )
        if self.shares is not None and self.fallback_threshold is None and shares.size:
            known = np.isclose(shares[:, None], np.asarray(self.shares)[None, :]).any(axis=1)
            if not known.all():
                bad = int(np.argmax(~known))
                raise InvalidArgumentError(
                    f"share[{bad}] = {float(shares[bad])!r} is not one of the gate's shares "
                    f"{list(self.shares)}"
                )
        if self.verdict != "continue" or is_candidate.size == 0:
            return self.decision()
        primary_event = is_event & ~is_candidate
        r0 = self._null_ratio(~is_candidate, primary_event)
        r1 = self.detect_ratio * r0
        theta0 = shares * r0 / (shares * r0 + 1.0 - shares)
        theta1 = shares * r1 / (shares * r1 + 1.0 - shares)
        step = np.where(
            is_event & is_candidate,
            np.log(theta1 / theta0),
            np.where(primary_event, np.log((1.0 - theta1) / (1.0 - theta0)), 0.0),
        )
        path = np.add.accumulate(np.concatenate(([self.log_likelihood_ratio], step)))[1:]
        crossed = path >= self.fail_threshold
        if self.beta is not None:
            crossed |= path <= self.pass_threshold
        baseline_fails = None
        if self._baseline is not None:
            llr, guard = self._baseline.paths(is_candidate, is_event)
            baseline_fails = (llr >= self._baseline.threshold) & (guard < self._baseline.guard)
            crossed |= baseline_fails
        end = int(np.argmax(crossed)) + 1 if crossed.any() else path.size
        if self._baseline is not None:
            self._baseline.keep(llr, guard, end)
        self.log_likelihood_ratio = float(path[end - 1])
        self.n_candidate += int(is_candidate[:end].sum())
        self.n_primary += end - int(is_candidate[:end].sum())
        self.events_candidate += int((is_event & is_candidate)[:end].sum())
        self.events_primary += int(primary_event[:end].sum())
        if crossed.any():
            concurrent = self.log_likelihood_ratio >= self.fail_threshold
            by_baseline = baseline_fails is not None and bool(baseline_fails[end - 1])
            self.verdict = "fail" if concurrent or by_baseline else "pass"
            if self._baseline is not None:
                self.failed_by = "concurrent" if concurrent else "baseline"
            self.decided_at = self.n_candidate + self.n_primary
        return self.decision()

    def _null_ratio(self, is_primary: np.ndarray, primary_event: np.ndarray) -> np.ndarray | float:
        if self.margin == 0.0:
            return self.ratio_margin
        # The primary's counts before each request, so the null is fixed before its data arrive.
        n_before = self.n_primary + np.concatenate(([0], np.cumsum(is_primary)[:-1]))
        k_before = self.events_primary + np.concatenate(([0], np.cumsum(primary_event)[:-1]))
        return self.ratio_margin + self.margin * (n_before + 1.0) / (k_before + 0.5)

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> RateGate(margin=0.005).get_params()["margin"]
        0.005
        """
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "detect_ratio": self.detect_ratio,
            "ratio_margin": self.ratio_margin,
            "margin": self.margin,
            "shares": None if self.shares is None else list(self.shares),
            **(
                {}
                if self._baseline is None
                else {
                    "baseline": [self._baseline.events, self._baseline.requests],
                    "baseline_alpha": self.baseline_alpha,
                    "guard": self._baseline.guard,
                }
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as JSON-ready values (what the store keeps).

        >>> RateGate().to_dict()["state"]["verdict"]
        'continue'
        """
        return {
            "test": self.test,
            "params": self.get_params(),
            "state": {
                "log_likelihood_ratio": self.log_likelihood_ratio,
                "n_candidate": self.n_candidate,
                "n_primary": self.n_primary,
                "events_candidate": self.events_candidate,
                "events_primary": self.events_primary,
                "verdict": self.verdict,
                "decided_at": self.decided_at,
                "fallback_threshold": self.fallback_threshold,
                **(
                    {}
                    if self._baseline is None
                    else {
                        "baseline_llr": self._baseline.log_likelihood_ratio,
                        "guard_statistic": self._baseline.guard_statistic,
                        "failed_by": self.failed_by,
                    }
                ),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RateGate:
        """The gate ``to_dict`` wrote, ready to read more requests.

        >>> gate = RateGate()
        >>> _ = gate.update(True, True, share=0.1)
        >>> RateGate.from_dict(gate.to_dict()).events_candidate
        1
        """
        if data.get("test") != cls.test:
            raise InvalidArgumentError(f"test must be {cls.test!r}, got {data.get('test')!r}")
        gate = cls(**data["params"])
        state = dict(data["state"])
        if gate._baseline is not None:
            gate._baseline.log_likelihood_ratio = state.pop("baseline_llr", 0.0)
            gate._baseline.guard_statistic = state.pop("guard_statistic", 0.0)
        for name, value in state.items():
            setattr(gate, name, value)
        return gate


class MeanGate:
    r"""Mixture SPRT on a difference of means: fails a candidate whose metric is worse.

    With :math:`d` the candidate's mean minus ``ratio_margin`` times the primary's and
    :math:`V = s_c^2/n_c + \text{ratio\_margin}^2 s_p^2/n_p` its estimated variance, the
    normal mixture :math:`N(\theta, \tau^2)` gives the likelihood ratio

    .. math:: \Lambda(\theta) = \sqrt{\frac{V}{V+\tau^2}}
              \exp\Big(\frac{\tau^2 (d-\theta)^2}{2V(V+\tau^2)}\Big),

    and the :math:`\theta` with :math:`\Lambda(\theta) < 1/\alpha` form a confidence sequence
    :math:`d \pm \sqrt{V(V+\tau^2)/\tau^2 \, (2\log(1/\alpha) + \log((V+\tau^2)/V))}`. The
    gate fails when the sequence lies above ``margin`` and passes when it lies at or below it.
    The statistic reported is :math:`\log \Lambda(\text{margin})`.

    Parameters
    ----------
    effect
        :math:`\tau`, the mixture's scale in the metric's units: the size of worsening that
        matters (20 for "20 ms slower"). The boundary is tightest when the difference's
        standard error is a few times smaller than it.
    alpha
        Bound on the chance of a wrong verdict, either way (asymptotically: the variances are
        estimated).
    margin
        Allowed worsening in the metric's units.
    ratio_margin
        The candidate's mean may be up to this many times the primary's (1.1: 10% slower
        with ``worse="higher"``; 0.95: 5% lower with ``worse="lower"``).
    worse
        ``"higher"`` (latency, cost) or ``"lower"`` (accuracy, revenue).
    min_samples
        Observations each arm needs before any verdict.

    Examples
    --------
    Candidate 130 and 150 ms, primary 100 and 102 ms: :math:`d = 39`, :math:`V = 200/2 + 2/2
    = 101`, the radius is :math:`\sqrt{101 \cdot 201/100 \, (2\log 20 + \log(201/101))}
    = 36.82`, so the sequence :math:`[2.18, 75.82]` lies above 0 and the gate fails:

    >>> gate = MeanGate(effect=10.0, min_samples=2)
    >>> d = gate.update_many([True, True, False, False], [130.0, 150.0, 100.0, 102.0])
    >>> d.verdict, d.n_candidate, round(d.lower, 3), round(d.upper, 3)
    ('fail', 2, 2.176, 75.824)
    >>> gate.to_dict()["state"]["mean"]
    [140.0, 101.0]
    """

    test = "mean_msprt"

    def __init__(
        self,
        effect: float,
        *,
        alpha: float = 0.05,
        margin: float = 0.0,
        ratio_margin: float = 1.0,
        worse: Literal["higher", "lower"] = "higher",
        min_samples: int = 30,
    ) -> None:
        self.effect = _positive("effect", effect)
        self.alpha = _probability("alpha", alpha)
        self.margin = _positive("margin", margin, strict=False)
        self.ratio_margin = _positive("ratio_margin", ratio_margin)
        if worse not in ("higher", "lower"):
            raise InvalidArgumentError(f"worse must be 'higher' or 'lower', got {worse!r}")
        self.worse = worse
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 2:
            raise InvalidArgumentError(f"min_samples must be an integer >= 2, got {min_samples!r}")
        self.min_samples = min_samples
        # Per arm (candidate, primary): count, mean and sum of squared deviations.
        self.count = [0, 0]
        self.mean = [0.0, 0.0]
        self.m2 = [0.0, 0.0]
        self.verdict: Verdict = "continue"
        self.decided_at: int | None = None

    def update(self, candidate: bool, value: float) -> GateDecision:
        """Read one observation of the candidate (``True``) or the primary.

        >>> MeanGate(effect=1.0).update(True, 3.0).n_candidate
        1
        """
        return self.update_many([bool(candidate)], [value])

    def update_many(self, candidate: Any, values: Any) -> GateDecision:
        """Read observations in order; stops at the first decision.

        >>> d = MeanGate(effect=1.0).update_many([True, False, True], [1.0, 2.0, 3.0])
        >>> d.n_candidate, d.n_primary, d.verdict
        (2, 1, 'continue')
        """
        is_candidate = flag_array("candidate", candidate)
        x = np.asarray(values, dtype=np.float64)
        if x.shape != is_candidate.shape:
            raise InvalidArgumentError(
                f"values has {x.size} values but candidate has {is_candidate.size}"
            )
        if not np.isfinite(x).all():
            bad = int(np.argmax(~np.isfinite(x)))
            raise InvalidArgumentError(f"values[{bad}] = {float(x[bad])!r} is not a finite number")
        if self.verdict != "continue" or x.size == 0:
            return self.decision()
        stats = [
            self._running(x, mask, arm) for arm, mask in enumerate((is_candidate, ~is_candidate))
        ]
        (n_c, mean_c, m2_c), (n_p, mean_p, m2_p) = stats
        d, half = self._bounds(n_c, mean_c, m2_c, n_p, mean_p, m2_p)
        ready = (n_c >= self.min_samples) & (n_p >= self.min_samples)
        failed = ready & (d - half > self.margin)
        passed = ready & (d + half <= self.margin)
        crossed = failed | passed
        end = int(np.argmax(crossed)) + 1 if crossed.any() else x.size
        i = end - 1
        self.count = [int(n_c[i]), int(n_p[i])]
        self.mean = [float(mean_c[i]), float(mean_p[i])]
        self.m2 = [float(m2_c[i]), float(m2_p[i])]
        if crossed.any():
            self.verdict = "fail" if failed[i] else "pass"
            self.decided_at = self.count[0] + self.count[1]
        return self.decision()

    def _running(self, x: np.ndarray, mask: np.ndarray, arm: int) -> tuple[np.ndarray, ...]:
        """Count, mean and M2 of one arm after each observation, from the stored state on
        (Chan et al.'s merge of the stored summary with the batch's running summary)."""
        n0, mean0, m20 = self.count[arm], self.mean[arm], self.m2[arm]
        xs = x[mask]
        # Centre on the batch's first value so the running sums do not cancel.
        shift = xs[0] if xs.size else 0.0
        position = np.cumsum(mask)
        s1 = np.concatenate(([0.0], np.cumsum(xs - shift)))[position]
        s2 = np.concatenate(([0.0], np.cumsum((xs - shift) ** 2)))[position]
        nb = position.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_b = np.where(nb > 0, s1 / nb, 0.0)
            m2_b = np.where(nb > 0, s2 - nb * mean_b**2, 0.0)
            n = n0 + nb
            delta = mean_b + shift - mean0
            mean = np.where(nb > 0, mean0 + delta * nb / n, mean0)
            m2 = np.where(nb > 0, m20 + m2_b + delta**2 * n0 * nb / n, m20)
        return n, mean, m2

    def _bounds(self, n_c, mean_c, m2_c, n_p, mean_p, m2_p) -> tuple[np.ndarray, np.ndarray]:
        sign = 1.0 if self.worse == "higher" else -1.0
        rho = self.ratio_margin
        d = sign * (mean_c - rho * mean_p)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = m2_c / (n_c * (n_c - 1.0)) + rho**2 * m2_p / (n_p * (n_p - 1.0))
            tau2 = self.effect**2
            half = np.sqrt(
                v * (v + tau2) / tau2 * (2.0 * math.log(1.0 / self.alpha) + np.log((v + tau2) / v))
            )
        half = np.where((n_c >= 2) & (n_p >= 2), half, np.inf)
        # Identical values in an arm make V zero: the difference is then known exactly.
        half = np.where(np.isnan(half), 0.0, half)
        return d, half

    def decision(self) -> GateDecision:
        """The current verdict and its evidence (bounds ``None`` until each arm has two
        observations).

        >>> gate = MeanGate(effect=1.0)
        >>> round(gate.update_many([True, True, False, False], [1.0, 3.0, 1.0, 2.0]).upper, 4)
        4.8016
        """
        (n_c, n_p), (mean_c, mean_p), (m2_c, m2_p) = self.count, self.mean, self.m2
        d, half = self._bounds(*(np.float64(v) for v in (n_c, mean_c, m2_c, n_p, mean_p, m2_p)))
        d, half = float(d), float(half)
        v = self._variance()
        tau2 = self.effect**2
        if math.isfinite(half) and v > 0.0 and math.isfinite(v):
            statistic = 0.5 * math.log(v / (v + tau2)) + tau2 * (d - self.margin) ** 2 / (
                2.0 * v * (v + tau2)
            )
        else:
            statistic = None
        bounded = math.isfinite(half)
        return GateDecision(
            verdict=self.verdict,
            test=self.test,
            statistic=statistic,
            fail_threshold=math.log(1.0 / self.alpha),
            pass_threshold=None,
            n_candidate=n_c,
            n_primary=n_p,
            events_candidate=None,
            events_primary=None,
            lower=d - half if bounded else None,
            upper=d + half if bounded else None,
            decided_at=self.decided_at,
        )

    def _variance(self) -> float:
        (n_c, n_p), (m2_c, m2_p) = self.count, self.m2
        if n_c < 2 or n_p < 2:
            return math.nan
        return m2_c / (n_c * (n_c - 1.0)) + self.ratio_margin**2 * m2_p / (n_p * (n_p - 1.0))

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> MeanGate(effect=5.0).get_params()["worse"]
        'higher'
        """
        return {
            "effect": self.effect,
            "alpha": self.alpha,
            "margin": self.margin,
            "ratio_margin": self.ratio_margin,
            "worse": self.worse,
            "min_samples": self.min_samples,
        }

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as JSON-ready values (what the store keeps).

        >>> MeanGate(effect=1.0).to_dict()["state"]["count"]
        [0, 0]
        """
        return {
            "test": self.test,
            "params": self.get_params(),
            "state": {
                "count": list(self.count),
                "mean": list(self.mean),
                "m2": list(self.m2),
                "verdict": self.verdict,
                "decided_at": self.decided_at,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeanGate:
        """The gate ``to_dict`` wrote, ready to read more observations.

        >>> gate = MeanGate(effect=1.0)
        >>> _ = gate.update(False, 2.5)
        >>> MeanGate.from_dict(gate.to_dict()).mean
        [0.0, 2.5]
        """
        if data.get("test") != cls.test:
            raise InvalidArgumentError(f"test must be {cls.test!r}, got {data.get('test')!r}")
        gate = cls(**data["params"])
        for name, value in data["state"].items():
            setattr(gate, name, list(value) if isinstance(value, list) else value)
        return gate
