"""The canary rollouts' state and gate evidence, and the bandits' progress, as Prometheus
gauges, per deployment.

:class:`RolloutGauges` is a ``prometheus_client`` collector that shows, for each deployment
a data plane serves that has a canary or bandit rollout, what its rollout document
(``GET /api/v1/deployments/NAME/rollout``) says. For a canary:

* ``opsloop_rollout_step{deployment}``: the ramp's step index (0 at the first share);
* ``opsloop_rollout_weight{deployment, variant}``: the share of traffic the candidate and
  the stable variant get now: their weights in the deployment's definition (read with the
  rollout; 0 for one no longer a variant), which a person may have changed, e.g. once the
  ramp halted; where the definition could not be read, what the ramp gives them (the step's
  share while ramping or halted, 1 once complete, 0 once rolled back; the rest to stable);
* ``opsloop_rollout_state{deployment, state}``: 1 for the ramp's status among ``ramping``,
  ``completed``, ``rolled_back`` and ``halted`` (a change it could not carry out and left
  to a person), 0 for the others;
* ``opsloop_rollout_not_carried_out_total{deployment, action}``: the ramp's decisions
  (``step``, ``complete``, ``rollback``) whose change was not made, since the rollout was
  set (:func:`~.canary_rollout.not_carried_out`; setting the rollout again starts it at 0);
* ``opsloop_gate_statistic{deployment, gate}`` and ``opsloop_gate_threshold{deployment,
  gate}``: each gate's test statistic and the threshold that fails it (absent while a gate
  has none, e.g. a drift gate before its first look);
* ``opsloop_gate_samples{deployment, gate, arm}``: the requests (records, for the
  disagreement gate: its decision's ``trials`` says; rows, for the quality gates) each arm
  (``candidate``, ``primary``) gave the gate;
* ``opsloop_gate_failed{deployment, gate}``: 1 for a gate whose verdict is ``fail``.

For a bandit (:mod:`.bandit_routing`), per variant (arm):

* ``opsloop_bandit_share{deployment, variant}``: the chance the policy routes a request to
  the arm now (the document's ``shares``; Thompson sampling's is estimated from draws);
* ``opsloop_bandit_rewards{deployment, variant}`` and ``opsloop_bandit_reward_sum{deployment,
  variant}``: the rewards the arm has received and their sum (the requests routed to it are
  ``opsloop_predictions_total``);
* ``opsloop_bandit_mean_reward{deployment, variant}``: their mean (absent before the arm's
  first reward);
* ``opsloop_bandit_posterior_mean{deployment, variant}``: for Thompson sampling, the mean of
  the arm's posterior (Beta for ``bernoulli_thompson``, the normal-inverse-gamma mean for
  ``gaussian_thompson``);
* ``opsloop_bandit_ucb_index{deployment, variant}``: for ``ucb1``, the arm's index
  (``+Inf`` before its first reward).

The documents are read through ``deployments.rollout`` (a
:class:`~opsloop.serving.Deployments` on a store, an HTTP client on a control plane's URL),
so both kinds of worker show the same numbers. A read costs a store query or an HTTP call
per deployment, so the readings are kept for ``refresh_s`` seconds whatever the scrape
rate; a read that fails is logged and the last readings are shown.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from opsloop.serving import Deployments
>>> from opsloop.store import Database
>>> gauges = RolloutGauges(Deployments(Database("sqlite://")), lambda: ["api"])
>>> registry = CollectorRegistry()
>>> registry.register(gauges)
>>> b"opsloop_rollout_step{" in generate_latest(registry), gauges.reads
(False, 1)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.learn.bandits import UCB1, policy_from_dict

logger = logging.getLogger("opsloop.serving.rollout")

#: Seconds the rollout documents read are shown before they are read again.
REFRESH_S = 5.0
#: The statuses a canary ramp takes (:mod:`.canary_rollout`).
STATUSES = ("ramping", "completed", "rolled_back", "halted")
#: The decisions a canary ramp takes.
ACTIONS = ("step", "complete", "rollback")


def _candidate_weight(state: dict[str, Any]) -> float:
    """The candidate's share of traffic the ramp gives it now.

    >>> _candidate_weight({"status": "rolled_back", "share": 0.1})
    0.0
    >>> _candidate_weight({"status": "ramping", "share": 0.25})
    0.25
    """
    if state["status"] == "rolled_back":
        return 0.0
    if state["status"] == "completed":
        return 1.0
    return float(state["share"])


def rollout_families(documents: dict[str, dict[str, Any]]) -> tuple[Metric, ...]:
    """The gauge families of the canary rollout ``documents`` (deployment -> its
    rollout document, as ``Deployments.rollout`` gives it); other rollouts add nothing.

    >>> from opsloop.analysis.sequential import RateGate
    >>> gate = RateGate().decision().to_dict()
    >>> state = {"kind": "canary", "status": "ramping", "step": 1, "share": 0.5,
    ...          "stable": "stable", "candidate": "canary"}
    >>> families = rollout_families({"api": {"state": state, "decisions": {"errors": gate}}})
    >>> [(s.name, s.labels, s.value) for s in families[1].samples]
    [('opsloop_rollout_weight', {'deployment': 'api', 'variant': 'canary'}, 0.5), \
('opsloop_rollout_weight', {'deployment': 'api', 'variant': 'stable'}, 0.5)]
    >>> families[4].samples[0].value == gate["fail_threshold"]
    True
    """
    step = GaugeMetricFamily(
        "opsloop_rollout_step", "The canary ramp's step index (0: its first share).",
        labels=("deployment",),
    )  # fmt: skip
    weight = GaugeMetricFamily(
        "opsloop_rollout_weight",
        "The share of traffic the canary ramp gives each variant now.",
        labels=("deployment", "variant"),
    )
    status = GaugeMetricFamily(
        "opsloop_rollout_state",
        "1 for the canary ramp's status (ramping, completed, rolled_back, halted), 0 for the "
        "others.",
        labels=("deployment", "state"),
    )
    statistic = GaugeMetricFamily(
        "opsloop_gate_statistic", "Each rollout gate's test statistic.",
        labels=("deployment", "gate"),
    )  # fmt: skip
    threshold = GaugeMetricFamily(
        "opsloop_gate_threshold", "The threshold at which each rollout gate fails.",
        labels=("deployment", "gate"),
    )  # fmt: skip
    samples = GaugeMetricFamily(
        "opsloop_gate_samples",
        "Requests (records for the disagreement gate, rows for the quality gates) each arm "
        "gave each rollout gate.",
        labels=("deployment", "gate", "arm"),
    )  # fmt: skip
    failed = GaugeMetricFamily(
        "opsloop_gate_failed", "1 for a rollout gate whose verdict is fail, else 0.",
        labels=("deployment", "gate"),
    )  # fmt: skip
    not_made = CounterMetricFamily(
        "opsloop_rollout_not_carried_out",
        "The canary ramp's decisions whose change was not made, since the rollout was set.",
        labels=("deployment", "action"),
    )
    for name, document in sorted(documents.items()):
        state = document["state"]
        if state.get("kind") != "canary":
            continue
        step.add_metric([name], state["step"])
        weights = document.get("weights")
        if weights is None:  # the definition was not read: what the ramp gives them
            share = _candidate_weight(state)
            weights = {state["candidate"]: share, state["stable"]: 1.0 - share}
        weight.add_metric([name, state["candidate"]], float(weights.get(state["candidate"], 0.0)))
        weight.add_metric([name, state["stable"]], float(weights.get(state["stable"], 0.0)))
        for action in ACTIONS:
            counted = (state.get("not_carried_out_count") or {}).get(action, 0)
            not_made.add_metric([name, action], counted)
        for known in STATUSES:
            status.add_metric([name, known], float(state["status"] == known))
        for gate, decision in sorted(document.get("decisions", {}).items()):
            if decision.get("statistic") is not None:
                statistic.add_metric([name, gate], decision["statistic"])
            if decision.get("fail_threshold") is not None:
                threshold.add_metric([name, gate], decision["fail_threshold"])
            for arm in ("candidate", "primary"):
                if decision.get(f"n_{arm}") is not None:
                    samples.add_metric([name, gate, arm], decision[f"n_{arm}"])
            failed.add_metric([name, gate], float(decision["verdict"] == "fail"))
    return step, weight, status, statistic, threshold, samples, failed, not_made


def _posterior_means(policy: Any) -> dict[str, float] | None:
    """The mean of each arm's posterior for a Thompson policy, ``None`` for the others.

    >>> from opsloop.learn.bandits import BernoulliThompson
    >>> policy = BernoulliThompson(["a", "b"])
    >>> policy.update_many(["a", "a", "a"], [1, 1, 0])
    >>> _posterior_means(policy)  # Beta(1 + 2, 1 + 1) and Beta(1, 1)
    {'a': 0.6, 'b': 0.5}
    """
    if policy.name == "bernoulli_thompson":
        a = policy.prior_a + policy.sums
        b = policy.prior_b + policy.counts - policy.sums
        return dict(zip(policy.arms, (a / (a + b)).tolist(), strict=True))
    if policy.name == "gaussian_thompson":
        return dict(zip(policy.arms, policy.posterior()["mean"].tolist(), strict=True))
    return None


def bandit_families(documents: dict[str, dict[str, Any]]) -> tuple[Metric, ...]:
    """The gauge families of the bandit rollout ``documents`` (deployment -> its rollout
    document, with its ``shares``); other rollouts add nothing.

    >>> policy = UCB1(["a", "b"])
    >>> policy.update_many(["a", "a", "b"], [1.0, 0.0, 1.0])
    >>> document = {"state": {"kind": "bandit", "policy": policy.to_dict()},
    ...             "shares": {"a": 0.0, "b": 1.0}}
    >>> families = {f.name: f for f in bandit_families({"api": document})}
    >>> [(s.labels["variant"], s.value) for s in families["opsloop_bandit_rewards"].samples]
    [('a', 2.0), ('b', 1.0)]
    >>> [round(s.value, 4) for s in families["opsloop_bandit_ucb_index"].samples]
    [1.5481, 2.4823]
    """
    labels = ("deployment", "variant")
    share = GaugeMetricFamily(
        "opsloop_bandit_share", "The chance the bandit routes a request to each variant now.",
        labels=labels,
    )  # fmt: skip
    rewards = GaugeMetricFamily(
        "opsloop_bandit_rewards", "Rewards each bandit variant has received.", labels=labels
    )
    reward_sum = GaugeMetricFamily(
        "opsloop_bandit_reward_sum", "The sum of the rewards each bandit variant received.",
        labels=labels,
    )  # fmt: skip
    mean = GaugeMetricFamily(
        "opsloop_bandit_mean_reward", "The mean reward of each bandit variant (once it has one).",
        labels=labels,
    )  # fmt: skip
    posterior = GaugeMetricFamily(
        "opsloop_bandit_posterior_mean",
        "The mean of each variant's posterior under Thompson sampling.",
        labels=labels,
    )
    ucb = GaugeMetricFamily(
        "opsloop_bandit_ucb_index", "Each variant's UCB1 index (+Inf before its first reward).",
        labels=labels,
    )  # fmt: skip
    for name, document in sorted(documents.items()):
        state = document["state"]
        if state.get("kind") != "bandit":
            continue
        policy = policy_from_dict(state["policy"])
        shares = document.get("shares", {})
        posterior_means = _posterior_means(policy)
        ucb_values = policy.ucb_values().tolist() if isinstance(policy, UCB1) else None
        for i, arm in enumerate(policy.arms):
            key = [name, arm]
            if arm in shares:
                share.add_metric(key, shares[arm])
            rewards.add_metric(key, float(policy.counts[i]))
            reward_sum.add_metric(key, float(policy.sums[i]))
            if policy.counts[i] > 0:
                mean.add_metric(key, float(policy.sums[i] / policy.counts[i]))
            if posterior_means is not None and np.isfinite(posterior_means[arm]):
                posterior.add_metric(key, posterior_means[arm])
            if ucb_values is not None:
                ucb.add_metric(key, ucb_values[i])
    return share, rewards, reward_sum, mean, posterior, ucb


class RolloutGauges(Collector):
    """The rollout gauges (see the module) of the deployments ``names()`` gives, read
    through ``deployments.rollout`` at most every ``refresh_s`` seconds (``clock`` gives
    seconds; default a monotonic clock).

    >>> RolloutGauges(None, tuple, refresh_s=-1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: refresh_s must be a number > 0, got -1
    """

    def __init__(
        self,
        deployments: Any,
        names: Callable[[], Iterable[str]],
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(refresh_s, bool) or not isinstance(refresh_s, int | float):
            raise InvalidArgumentError(f"refresh_s must be a number > 0, got {refresh_s!r}")
        if not refresh_s > 0:
            raise InvalidArgumentError(f"refresh_s must be a number > 0, got {refresh_s!r}")
        self.deployments = deployments
        self.names = names
        self.refresh_s = float(refresh_s)
        self.clock = clock
        #: Reads of the rollout documents made, one per refresh.
        self.reads = 0
        self._documents: dict[str, dict[str, Any]] = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        documents = {}
        for name in dict.fromkeys(self.names()):
            try:
                document = self.deployments.rollout(name)
            except NotFoundError:
                continue
            if document["state"].get("kind") == "canary":
                # The weights the deployment routes by, which the ramp's state alone does
                # not tell once a change was not made (a halt) or a person set them.
                try:
                    definition = self.deployments.get(name)
                except NotFoundError:
                    pass
                else:
                    live = [v for v in definition.variants if v.role != "shadow"]
                    document = {**document, "weights": {v.name: v.weight for v in live}}
            documents[name] = document
        return documents

    def documents(self) -> dict[str, dict[str, Any]]:
        """The rollout documents to show, read again when the last read is ``refresh_s``
        old."""
        with self._lock:  # one scrape reads; the others wait for its answer
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.refresh_s:
                self._read_at = now
                self.reads += 1
                try:
                    self._documents = self._read()
                except Exception:  # the scrape still answers, with what it has
                    logger.exception("reading the rollouts for the metrics")
            return self._documents

    def describe(self) -> list[Metric]:
        # Names only, so that registering reads nothing.
        return [*rollout_families({}), *bandit_families({})]

    def collect(self) -> Iterator[Metric]:
        documents = self.documents()
        yield from rollout_families(documents)
        yield from bandit_families(documents)
