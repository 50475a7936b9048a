"""A deployment's rollout policy: a canary's ramp and gates, or a bandit's policy.

Set through the control plane (:meth:`~opsloop.serving.Deployments.set_rollout`), read by
every serving worker.

- ``steps``: the candidate's traffic shares, one step after another (default 5% -> 25% ->
  50% -> 100%); increasing, each in (0, 1], the last 1.
- ``min_requests``: how many requests the candidate answers at a step before the next
  step is taken (and only while every gate holds).
- ``gates``: which gates judge the candidate against the primary, each with the
  parameters of its :class:`~opsloop.analysis.sequential.RateGate` (``alpha``,
  ``detect_ratio``, ``ratio_margin``, ``margin``; its ``shares`` are the steps below 1,
  and its fail threshold is the smallest whose false-alarm chance is at most ``alpha`` for
  any order of them, never above Ville's log(1/alpha): lower for one share or
  a few close ones (a single 10% step: 2.662 instead of 2.996), Ville's itself for shares
  far apart (the default 5%, 25%, 50%: nothing gained), and Ville's too, or near it, for
  shares of about 1% and below, whose small downward steps the computation (a grid, a
  bounded number of iterations) cannot resolve; a request routed at a
  share outside the ramp moves the gate to a threshold valid at any share, see
  :meth:`~opsloop.analysis.sequential.RateGate.allow_any_share`; every threshold assumes
  each request reaches the candidate independently, which routing by key breaks when
  users' rates differ, see :class:`~opsloop.analysis.sequential.RateGate`; opt-in,
  ``baseline`` ``[events, requests]``, the primary's counts before the canary began,
  adds a test of the candidate alone against the primary's rate then, with
  ``baseline_alpha`` of ``alpha`` (default 90% of it) and a ``guard`` against an outage
  that hits both versions, see :class:`~opsloop.analysis.rate_baseline.BaselineArm`
  (``baseline_alpha`` and ``guard`` only with a ``baseline``); the ``errors`` gate may
  instead take ``baseline: "recorded"``: the primary's requests and failures recorded as
  prediction events in the ``baseline_window_ms`` before the rollout is set (default
  :data:`BASELINE_WINDOW_MS`, a day), at least ``baseline_min_requests`` of them (default
  and least :data:`~opsloop.analysis.rate_baseline.MIN_BASELINE_REQUESTS`), counted then
  (:mod:`.recorded_baseline`, which says what a recorded count means when events were
  dropped); the ``latency`` gate takes it too when its ``bound_ms`` is given: the
  primary's answered requests and those slower than ``bound_ms`` (not with the default
  bound, the primary's p99 of the same events, refused naming ``gates.latency.baseline``);
  either way the counts are kept in the rollout's state, so a restart or a second worker
  uses the same baseline):

  - ``errors``: the candidate's error rate (a model that raises);
  - ``latency``: its rate of requests slower than ``bound_ms`` (default: the primary's
    99th percentile latency recorded before the rollout), a p99 gate;
  - ``disagreement``: its rate of records whose answers differ from the primary's on the
    same records (the primary answers the candidate's requests too), tested against the
    rate the user accepts, ``max_rate`` (required, strictly between 0 and 1; ``margin``, its
    former name, is read as it), by a one-sample SPRT on the candidate's requests alone
    (:class:`~opsloop.analysis.one_sample_rate_gate.OneSampleRateGate`: ``alpha``,
    ``detect_ratio``; no ``shares``, its threshold does not depend on them): each request is
    one trial whose outcome is the fraction of its records that differ (a request of 100
    records that differ on 1 reads 0.01; one that failed, or answered another number of
    predictions, reads 1), so ``max_rate`` bounds the mean fraction per request; the
    threshold is exact for requests of one record, and the first fraction strictly between
    0 and 1 moves it, for good, to one that keeps ``alpha`` for fractions too (the
    evidence's ``outcomes``, ``binary_threshold``, ``switch_after``). The primary
    never disagrees with itself, so a comparison with its rate compares with zero; a
    rollout set before keeps the test its state was started with, and what it reads (1 for
    a request when any of its records differs);
  - ``metric``: its rate of wrong answers, read from the labels sent as feedback; for a
    regression, ``loss`` ``"absolute"`` or ``"squared"`` judges each answer's absolute or
    squared error instead, with a :class:`~opsloop.analysis.sequential.MeanGate` on the
    difference of the arms' mean losses (``effect``, the worsening of the mean loss that
    matters, in the loss's units, required; ``alpha``, ``margin``, ``ratio_margin``,
    ``min_samples``); ``loss`` ``"error_rate"`` (default) is the classifier's rate gate;
  - ``anomalies``: its rate of requests whose inputs the answering version's schema flags
    while still answering them (a value outside a column's ``[min, max]`` but within its
    margin; a request refused with a 422 is the client's mistake and counts for no arm);
  - ``input_detector``: its rate of requests the deployment's input anomaly detector flags
    (:mod:`.input_screening`; a deployment without one feeds it nothing);

  and two gates the monitoring layer judges (:mod:`opsloop.monitoring.canary_quality`),
  on the rows each arm answered since the ramp began:

  - ``drift``: the candidate's inputs against the primary's, column by column, a
    :class:`~opsloop.analysis.drift_gate.DriftGate` (``alpha``, ``min_rows``);
  - ``estimate``: the candidate's accuracy estimated from its confidence before labels
    arrive, against the primary's, a :class:`~opsloop.analysis.sequential.MeanGate` on each
    row's calibrated probability of its predicted class (``effect``, default 0.05;
    ``alpha``, ``margin``, ``ratio_margin``, ``min_samples``).

  Each is judged every ``every`` candidate requests (an integer >= 1, default
  :data:`QUALITY_EVERY`), and before each step.

  A failing gate rolls the deployment back at once.
- ``bandit``: a :mod:`opsloop.learn.bandits` policy name for a ``bandit`` deployment
  (default ``bernoulli_thompson``), ``bandit_params`` its parameters, ``seed`` seeds the
  bandit's draws (for repeatable simulations; default: fresh entropy).

>>> policy = RolloutPolicy(steps=(0.1, 1.0), gates={"errors": {"alpha": 0.01}})
>>> policy.to_dict()["steps"], RolloutPolicy.from_dict(policy.to_dict()) == policy
([0.1, 1.0], True)
>>> RolloutPolicy(steps=(0.5, 0.25, 1.0))
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: steps: must increase, got [0.5, 0.25, 1.0]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsloop.analysis.drift_gate import DriftGate
from opsloop.analysis.one_sample_rate_gate import OneSampleRateGate
from opsloop.analysis.rate_baseline import (
    DEFAULT_GUARD,
    MIN_BASELINE_REQUESTS,
    baseline_share,
    checked_guard,
)
from opsloop.analysis.sequential import MeanGate, RateGate
from opsloop.errors import InvalidArgumentError
from opsloop.learn.bandits import POLICIES as BANDIT_POLICIES

#: The gates a canary can have.
GATES = (
    "errors",
    "latency",
    "disagreement",
    "metric",
    "anomalies",
    "input_detector",
    "drift",
    "estimate",
)
#: The gates judged by the monitoring layer on the rows each arm answered.
QUALITY_GATES = ("drift", "estimate")
#: How many candidate requests apart a quality gate is judged, unless its ``every`` says.
QUALITY_EVERY = 50
#: The estimate gate's default ``effect``: five points of accuracy.
ESTIMATE_EFFECT = 0.05
DEFAULT_STEPS = (0.05, 0.25, 0.5, 1.0)
MAX_DRAWS = 100_000
#: The ``baseline`` that counts the primary's recorded events before the rollout.
RECORDED = "recorded"
#: The gates that take a recorded baseline (the latency gate only with its ``bound_ms``).
RECORDED_GATES = ("errors", "latency")
#: How far back a recorded baseline reads unless its ``baseline_window_ms`` says: a day.
BASELINE_WINDOW_MS = 86_400_000
#: The widest window a recorded baseline reads: a year.
MAX_BASELINE_WINDOW_MS = 366 * 86_400_000
#: The most recorded requests a baseline may ask for.
MAX_BASELINE_REQUESTS = 2**31 - 1


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(f"{name}: must be a finite number, got {value!r}")
    return float(value)


#: The parameters each kind of gate takes (``bound_ms`` aside, the latency gate's).
GATE_PARAMS = {
    "rate": (
        "alpha",
        "beta",
        "detect_ratio",
        "ratio_margin",
        "margin",
        "baseline",
        "baseline_alpha",
        "guard",
        "baseline_window_ms",
        "baseline_min_requests",
    ),
    "drift": ("alpha", "min_rows", "every"),
    "estimate": ("effect", "alpha", "margin", "ratio_margin", "min_samples", "every"),
    "metric_loss": ("loss", "effect", "alpha", "margin", "ratio_margin", "min_samples"),
    "disagreement": ("max_rate", "alpha", "detect_ratio", "margin"),
}
#: What the metric gate may judge: a classifier's wrong answers, or a regression's errors.
METRIC_LOSSES = ("error_rate", "absolute", "squared")


def _every(value: Any) -> int:
    """A quality gate's ``every``: a whole number of candidate requests, at least 1."""
    if isinstance(value, float) and value.is_integer():  # a JSON number read as float
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"every must be an integer >= 1, got {value!r}")
    return value


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():  # a JSON number read as float
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


@dataclass(frozen=True)
class RecordedBaselineSetting:
    """Where a rate gate's recorded baseline is read: the ``window_ms`` before the rollout
    is set, at least ``min_requests`` recorded requests (see :mod:`.recorded_baseline`)."""

    window_ms: int
    min_requests: int


def recorded_setting(name: str, params: Mapping[str, Any]) -> RecordedBaselineSetting | None:
    """Gate ``name``'s recorded baseline, ``None`` when its ``baseline`` is not
    ``"recorded"``; checks the baseline's settings, naming the field.

    >>> recorded_setting("errors", {"baseline": "recorded", "baseline_window_ms": 3.6e6})
    RecordedBaselineSetting(window_ms=3600000, min_requests=1000)
    >>> recorded_setting("latency", {"baseline": "recorded", "bound_ms": 50.0}).min_requests
    1000
    >>> recorded_setting("anomalies", {"baseline": "recorded"})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: baseline: 'recorded' counts the primary's recorded failures, or its answers slower than bound_ms, so only the errors gate and the latency gate take it; give this gate [events, requests]
    >>> recorded_setting("errors", {"guard": 2.0})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: guard: only with a baseline
    """  # noqa: E501 - a doctest's expected output is one line
    baseline = params.get("baseline")
    for setting in ("baseline_alpha", "guard"):
        if setting in params and baseline is None:
            raise InvalidArgumentError(f"{setting}: only with a baseline")
    if baseline != RECORDED:
        for setting in ("baseline_window_ms", "baseline_min_requests"):
            if setting in params:
                raise InvalidArgumentError(f"{setting}: only with baseline {RECORDED!r}")
        if isinstance(baseline, str):
            raise InvalidArgumentError(
                f"baseline must be [events, requests] or {RECORDED!r}, got {baseline!r}"
            )
        return None
    if name not in RECORDED_GATES:
        raise InvalidArgumentError(
            f"baseline: {RECORDED!r} counts the primary's recorded failures, or its answers "
            "slower than bound_ms, so only the errors gate and the latency gate take it; "
            "give this gate [events, requests]"
        )

    return RecordedBaselineSetting(
        _whole(
            "baseline_window_ms",
            params.get("baseline_window_ms", BASELINE_WINDOW_MS),
            1,
            MAX_BASELINE_WINDOW_MS,
        ),
        _whole(
            "baseline_min_requests",
            params.get("baseline_min_requests", MIN_BASELINE_REQUESTS),
            MIN_BASELINE_REQUESTS,
            MAX_BASELINE_REQUESTS,
        ),
    )


def _disagreement_gate(params: dict[str, Any]) -> OneSampleRateGate:
    """The disagreement gate: ``max_rate`` required (``margin``, its former name, read as
    it, so rollouts kept before still load).

    >>> _disagreement_gate({"margin": 0.02}).max_rate
    0.02
    >>> _disagreement_gate({})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: max_rate is required: the share of the candidate's answers that may differ from the primary's (0.02: 2%)
    """  # noqa: E501 - a doctest's expected output is one line
    params = dict(params)
    if "margin" in params:
        if "max_rate" in params:
            raise InvalidArgumentError(
                "max_rate: give max_rate or margin (its former name), not both"
            )
        params["max_rate"] = params.pop("margin")
    if "max_rate" not in params:
        raise InvalidArgumentError(
            "max_rate is required: the share of the candidate's answers that may differ from "
            "the primary's (0.02: 2%)"
        )
    return OneSampleRateGate(**params)


def _reads_as_disagreement(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` are the one-sample disagreement gate's (see
    :meth:`RolloutPolicy.from_dict` for the others).

    >>> _reads_as_disagreement({"max_rate": 0.02}), _reads_as_disagreement({})
    (True, False)
    """
    try:
        _gate("disagreement", dict(params), checking=True)
    except (InvalidArgumentError, TypeError):
        return False
    return True


def _gate(
    name: str,
    params: dict[str, Any],
    shares: tuple[float, ...] | None = None,
    counts: list[int] | None = None,
    *,
    checking: bool = False,
) -> RateGate | DriftGate | MeanGate | OneSampleRateGate:
    """Gate ``name`` with ``params``; a recorded baseline's ``counts`` (``[failures,
    requests]``) are those read when the rollout is set, and without them the gate is
    only ``checking`` the parameters (its baseline left out)."""
    loss = params.get("loss", "error_rate") if name == "metric" else None
    if loss is not None and loss not in METRIC_LOSSES:
        raise InvalidArgumentError(f"loss must be one of {', '.join(METRIC_LOSSES)}, got {loss!r}")
    if loss is not None and loss != "error_rate":
        name = "metric_loss"
        if "effect" not in params:
            raise InvalidArgumentError(
                f"effect is required with loss {loss!r}: the worsening of the mean loss that "
                "matters, in the loss's units"
            )
    elif loss is not None:
        params = {k: v for k, v in params.items() if k != "loss"}
    allowed = GATE_PARAMS.get(name, GATE_PARAMS["rate"])
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidArgumentError(
            f"{', '.join(allowed)} are its parameters, got {', '.join(map(repr, unknown))}"
        )
    if "every" in params:
        _every(params["every"])
        params = {k: v for k, v in params.items() if k != "every"}
    if name == "drift":
        return DriftGate(**params)
    if name == "disagreement":
        return _disagreement_gate(params)
    if name in ("estimate", "metric_loss"):
        count = params.get("min_samples")
        if isinstance(count, float) and count.is_integer():  # a JSON number read as float
            params = {**params, "min_samples": int(count)}
        if name == "metric_loss":
            return MeanGate(**{k: v for k, v in params.items() if k != "loss"}, worse="higher")
        effect, margin = params.get("effect", ESTIMATE_EFFECT), params.get("margin", 0.0)
        # The estimate gate's effect and margin are shares of accuracy.
        if isinstance(effect, int | float) and not 0 < effect <= 1:
            raise InvalidArgumentError(f"effect must lie in (0, 1] (accuracy), got {effect!r}")
        if isinstance(margin, int | float) and not 0 <= margin < 1:
            raise InvalidArgumentError(f"margin must lie in [0, 1) (accuracy), got {margin!r}")
        return MeanGate(**{"effect": ESTIMATE_EFFECT, **params}, worse="lower")
    recorded = recorded_setting(name, params)
    window = ("baseline_window_ms", "baseline_min_requests")
    params = {k: v for k, v in params.items() if k not in window}
    if recorded is not None:
        del params["baseline"]
        if counts is not None:
            return RateGate(**params, baseline=counts, shares=shares)
        if not checking:
            raise InvalidArgumentError(
                f"baseline: {RECORDED!r} is counted from the store when the rollout is set"
            )
        arm = ("baseline_alpha", "guard")
        gate = RateGate(**{k: v for k, v in params.items() if k not in arm}, shares=shares)
        if gate.beta is not None:
            raise InvalidArgumentError("baseline: not with beta (the gate only holds or fails)")
        baseline_share(gate.get_params()["alpha"], params.get("baseline_alpha"))
        checked_guard(params.get("guard", DEFAULT_GUARD))
        return gate
    return RateGate(**params, shares=shares)


@dataclass(frozen=True)
class RolloutPolicy:
    """How a deployment's traffic moves on its own (see the module).

    >>> RolloutPolicy(gates={"speed": {}})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: gates: unknown gate 'speed'; gates are ...
    >>> RolloutPolicy(gates={"errors": {"alpha": 2}})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: gates.errors: alpha must lie strictly between 0 and 1...
    >>> RolloutPolicy(gates={"drift": {"effect": 0.1}})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: gates.drift: alpha, min_rows, every are its parameters...
    >>> RolloutPolicy(gates={"latency": {"baseline": "recorded"}})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: gates.latency.baseline: 'recorded' needs an explicit ...
    """

    steps: tuple[float, ...] = DEFAULT_STEPS
    min_requests: int = 100
    gates: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: {"errors": {}})
    bandit: str = "bernoulli_thompson"
    bandit_params: Mapping[str, float] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        steps = [_number(f"steps[{i}]", s) for i, s in enumerate(self.steps)]
        if not steps or len(steps) > 20:
            raise InvalidArgumentError(f"steps: give 1 to 20 shares, got {len(steps)}")
        if any(not 0.0 < s <= 1.0 for s in steps):
            raise InvalidArgumentError(f"steps: each share must lie in (0, 1], got {steps}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise InvalidArgumentError(f"steps: must increase, got {steps}")
        if steps[-1] != 1.0:
            raise InvalidArgumentError(f"steps: the last share must be 1, got {steps[-1]}")
        object.__setattr__(self, "steps", tuple(steps))
        minimum = self.min_requests
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
            raise InvalidArgumentError(f"min_requests: must be an integer >= 1, got {minimum!r}")
        gates = {}
        for name, params in dict(self.gates).items():
            if name not in GATES:
                raise InvalidArgumentError(
                    f"gates: unknown gate {name!r}; gates are {', '.join(GATES)}"
                )
            params = dict(params)
            bound = params.pop("bound_ms", None)
            if name == "latency" and bound is not None and not _number("bound_ms", bound) > 0:
                raise InvalidArgumentError(f"gates.latency.bound_ms: must be > 0, got {bound!r}")
            if bound is not None and name != "latency":
                raise InvalidArgumentError(f"gates.{name}: bound_ms belongs to the latency gate")
            if name == "latency" and params.get("baseline") == RECORDED and bound is None:
                raise InvalidArgumentError(
                    f"gates.latency.baseline: {RECORDED!r} needs an explicit bound_ms: the "
                    "default bound is the primary's p99 read from the same recorded events, "
                    "and their count above their own p99 is 1% by construction, not a "
                    "baseline; give bound_ms, or baseline [events, requests]"
                )
            try:
                _gate(name, params, checking=True)
            except TypeError as error:
                raise InvalidArgumentError(f"gates.{name}: {error}") from None
            except InvalidArgumentError as error:
                raise InvalidArgumentError(f"gates.{name}: {error}") from None
            if "every" in params:
                params["every"] = _every(params["every"])
            gates[name] = {**params, **({} if bound is None else {"bound_ms": float(bound)})}
        object.__setattr__(self, "gates", gates)
        if self.bandit not in BANDIT_POLICIES:
            raise InvalidArgumentError(
                f"bandit: must be one of {', '.join(sorted(BANDIT_POLICIES))}, got {self.bandit!r}"
            )
        draws = dict(self.bandit_params).get("draws", 0)
        if isinstance(draws, int | float) and draws > MAX_DRAWS:
            # Thompson's shares draw this many times per read of the rollout.
            raise InvalidArgumentError(f"bandit_params.draws: at most {MAX_DRAWS}, got {draws!r}")
        try:
            BANDIT_POLICIES[self.bandit](["a", "b"], **dict(self.bandit_params))
        except TypeError as error:
            raise InvalidArgumentError(f"bandit_params: {error}") from None
        object.__setattr__(self, "bandit_params", dict(self.bandit_params))
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise InvalidArgumentError(f"seed: must be an integer or null, got {self.seed!r}")

    @property
    def canary_shares(self) -> tuple[float, ...] | None:
        """The candidate's shares before it takes all the traffic: a rate gate's fail
        threshold is computed for them (see :class:`~opsloop.analysis.sequential.RateGate`).

        >>> RolloutPolicy().canary_shares
        (0.05, 0.25, 0.5)
        >>> round(RolloutPolicy(steps=(0.1, 1.0)).rate_gate("errors").fail_threshold, 3)
        2.662
        """
        return tuple(s for s in self.steps if s < 1.0) or None

    def rate_gate(self, name: str) -> RateGate:
        """A fresh rate gate ``name`` with this policy's parameters.

        >>> RolloutPolicy().rate_gate("errors").alpha
        0.05
        """
        gate = self.gate(name)
        if not isinstance(gate, RateGate):
            raise InvalidArgumentError(f"gates.{name}: not a rate gate")
        return gate

    def quality_every(self, name: str) -> int:
        """How many candidate requests apart quality gate ``name`` is judged.

        >>> policy = RolloutPolicy(gates={"drift": {"every": 20.0}, "estimate": {}})
        >>> policy.quality_every("drift"), policy.quality_every("estimate")
        (20, 50)
        >>> RolloutPolicy(gates={"drift": {"every": 0}})
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: gates.drift: every must be an integer >= 1, got 0
        """
        return int(self.gates[name].get("every", QUALITY_EVERY))

    def recorded_baseline(self, name: str) -> RecordedBaselineSetting | None:
        """Gate ``name``'s recorded baseline, ``None`` when it has none.

        >>> RolloutPolicy(gates={"errors": {"baseline": "recorded"}}).recorded_baseline("errors")
        RecordedBaselineSetting(window_ms=86400000, min_requests=1000)
        """
        return recorded_setting(name, self.gates[name])

    def gate(
        self, name: str, counts: list[int] | None = None
    ) -> RateGate | DriftGate | MeanGate | OneSampleRateGate:
        """A fresh gate ``name`` of its kind, with this policy's parameters; a gate with a
        recorded baseline needs the ``counts`` read for it (``[failures, requests]``).

        >>> RolloutPolicy(gates={"estimate": {"alpha": 0.01}}).gate("estimate").get_params()
        {'effect': 0.05, 'alpha': 0.01, 'margin': 0.0, 'ratio_margin': 1.0, 'worse': 'lower', 'min_samples': 30}
        """  # noqa: E501 - a doctest's expected output is one line
        params = {k: v for k, v in self.gates[name].items() if k != "bound_ms"}
        return _gate(name, params, self.canary_shares, counts)

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-ready values."""
        return {
            "steps": list(self.steps),
            "min_requests": self.min_requests,
            "gates": {name: dict(params) for name, params in self.gates.items()},
            "bandit": self.bandit,
            "bandit_params": dict(self.bandit_params),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RolloutPolicy:
        """The policy ``to_dict`` wrote. A ``disagreement`` gate kept before it tested the
        accepted rate (no ``max_rate`` or ``margin``, or a rate gate's parameters) is read
        as it was kept: the rollout's state holds that gate's former test, which judges
        its requests until the rollout ends.

        >>> kept = RolloutPolicy().to_dict()
        >>> kept["gates"]["disagreement"] = {"ratio_margin": 2.0}
        >>> RolloutPolicy.from_dict(kept).gates["disagreement"]
        {'ratio_margin': 2.0}
        """
        document = {**dict(document), "steps": tuple(document["steps"])}
        gates = dict(document.get("gates") or {})
        former = gates.get("disagreement")
        if former is None or _reads_as_disagreement(former):
            return cls(**document)
        del gates["disagreement"]
        policy = cls(**{**document, "gates": gates})
        object.__setattr__(policy, "gates", {**policy.gates, "disagreement": dict(former)})
        return policy
