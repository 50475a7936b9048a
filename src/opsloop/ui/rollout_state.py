"""A deployment's rollout as its pages show it: a canary's gates with their decisions now, a
bandit's arms with their rewards, posteriors and traffic shares (the results page, and the
deployment page's live status)."""

from __future__ import annotations

from typing import Any

from opsloop.errors import NotFoundError
from opsloop.learn.bandits import GaussianThompson, policy_from_dict


def rollout_of(deployments: Any, name: str) -> dict[str, Any] | None:
    """The deployment's rollout (policy, state, gates' decisions), or ``None`` if none is set."""
    try:
        return deployments.rollout(name)
    except NotFoundError:  # no rollout was set: the page says so
        return None


def bandit_arms(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """A bandit rollout's arms: rewards counted and summed, their mean, the posterior where
    the policy keeps one (``Beta(a, b)`` for Bernoulli Thompson sampling, the normal's mean
    for Gaussian), and the share of traffic the arm gets now.

    >>> arms = bandit_arms({"state": {"kind": "bandit", "policy": {
    ...     "policy": "bernoulli_thompson", "arms": ["a", "b"],
    ...     "params": {"prior_a": 1.0, "prior_b": 1.0, "draws": 100},
    ...     "state": {"counts": [4, 0], "sums": [3.0, 0.0]}}}, "shares": {"a": 0.9, "b": 0.1}})
    >>> [(a["arm"], a["mean"], a["posterior"], a["posterior_mean"], a["share"]) for a in arms]
    [('a', 0.75, 'Beta(4, 2)', 0.6666666666666666, 0.9), ('b', None, 'Beta(1, 1)', 0.5, 0.1)]
    """
    document = rollout["state"]["policy"]
    policy = policy_from_dict(document)
    counts, sums = policy.counts, policy.sums
    posteriors: list[tuple[str, float] | None] = [None] * len(policy.arms)
    if document["policy"] == "bernoulli_thompson":
        a = document["params"]["prior_a"] + sums
        b = document["params"]["prior_b"] + counts - sums
        posteriors = [
            (f"Beta({x:g}, {y:g})", float(x / (x + y))) for x, y in zip(a, b, strict=True)
        ]
    elif isinstance(policy, GaussianThompson):
        post = policy.posterior()
        posteriors = [
            (f"mean {m:.4g}, count {k:g}, shape {s:g}, scale {c:.4g}", float(m))
            for m, k, s, c in zip(
                post["mean"], post["count"], post["shape"], post["scale"], strict=True
            )
        ]
    shares = rollout.get("shares", {})
    return [
        {
            "arm": arm,
            "rewards": int(n),
            "reward_sum": float(total),
            "mean": float(total / n) if n else None,
            "posterior": None if posterior is None else posterior[0],
            "posterior_mean": None if posterior is None else posterior[1],
            "share": shares.get(arm),
        }
        for arm, n, total, posterior in zip(policy.arms, counts, sums, posteriors, strict=True)
    ]


def canary_gates(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """A canary rollout's gates: each one's decision now (verdict, statistic, thresholds,
    counts) with the parameters it runs with (the defaults filled in; unset ones left out).

    >>> canary_gates({"state": {"gates": {"errors": {"params": {"alpha": 0.01, "beta": None}}}},
    ...               "decisions": {"errors": {"verdict": "continue", "statistic": 0.5}}})
    [{'gate': 'errors', 'params': {'alpha': 0.01}, 'verdict': 'continue', 'statistic': 0.5}]
    """
    gates = rollout["state"]["gates"]
    return [
        {
            "gate": name,
            "params": {
                key: value
                for key, value in gates.get(name, {}).get("params", {}).items()
                if value is not None
            },
            **decision,
        }
        for name, decision in rollout.get("decisions", {}).items()
    ]
