"""Routing for ``bandit`` deployments: a multi-armed bandit policy shared through the store.

A ``bandit`` deployment whose rollout names a policy of :mod:`opsloop.learn.bandits`
(``Deployments.set_rollout(name, bandit="bernoulli_thompson")``, the default; also
``gaussian_thompson`` for real rewards, ``ucb1``, ``epsilon_greedy``) is routed by
:class:`BanditRouting`: before each choice it reads the policy's per-arm sums from the
store, so every worker routes by every reward received so far, and draws the arm with its
own generator (seeded by the rollout's ``seed`` when one is set). A routing key does not
pin a bandit's choice: the choice is a draw, as the policy says. Rewards arrive as feedback
by request id; :func:`record_reward` adds one to the answering arm in one write
transaction, so workers never lose each other's rewards. Without a rollout the deployment
routes by its starting weights until its first reward, which starts the default rollout
(Thompson sampling on 0/1 rewards).

>>> from opsloop.serving.deployment_records import Deployment, Variant
>>> d = Deployment("api", "bandit", "full_automation",
...                (Variant("a", "m", version=1, weight=0.5),
...                 Variant("b", "m", version=2, role="candidate", weight=0.5)),
...                None, 0, "ana", {"a": 1, "b": 2})
>>> policy_for(d).choose("user-1") == policy_for(d).choose("user-1")
True
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from opsloop.learn.bandits import POLICIES as BANDIT_POLICIES
from opsloop.learn.bandits import BanditPolicy, policy_from_dict
from opsloop.serving.deployment_records import Deployment
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.serving.rollout_state import locked_rollout, read_rollout, write_rollout
from opsloop.serving.routing import policy_for, register_policy, weighted_split
from opsloop.store.database import Database


def _bandit(document: dict | None, arms: list[str]) -> BanditPolicy | None:
    if document is None or document["state"].get("kind") != "bandit":
        return None
    policy = policy_from_dict(document["state"]["policy"])
    # A policy set for other variants than those deployed now routes nothing.
    return policy if sorted(policy.arms) == sorted(arms) else None


class BanditRouting:
    """The routing policy of a ``bandit`` deployment (see the module); until
    :meth:`bind_store` names the store it routes by the deployment's weights.

    >>> from opsloop.serving.deployment_records import Variant
    >>> d = Deployment("api", "bandit", "full_automation",
    ...                (Variant("a", "m", version=1, weight=1.0),
    ...                 Variant("b", "m", version=2, role="candidate", weight=0.0)),
    ...                None, 0, "ana", {"a": 1, "b": 2})
    >>> routing = BanditRouting(d)
    >>> routing.bind_store(Database("sqlite://"))
    >>> routing.choose(None)
    'a'
    """

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.arms = [v.name for v in deployment.variants if v.role != "shadow"]
        self.split = weighted_split(deployment)
        self.read: Callable[[str], dict | None] | None = None
        self.rng = np.random.default_rng()

    def bind_store(self, db: Database) -> None:
        """Read the shared policy from ``db`` before each choice."""
        self.bind_rollouts(partial(read_rollout, db))

    def bind_rollouts(self, read: Callable[[str], dict | None]) -> None:
        """Read the shared policy with ``read`` (a deployment's name to its rollout
        document, ``None`` when it has none) before each choice: from the store, or from
        the control plane for a data plane on its URL.

        >>> from opsloop.serving.deployment_records import Variant
        >>> d = Deployment("api", "bandit", "full_automation",
        ...                (Variant("a", "m", version=1, weight=0.5),
        ...                 Variant("b", "m", version=2, role="candidate", weight=0.5)),
        ...                None, 0, "ana", {"a": 1, "b": 2})
        >>> routing = BanditRouting(d)
        >>> from opsloop.learn.bandits import EpsilonGreedy
        >>> greedy = EpsilonGreedy(["a", "b"], epsilon=0.0)
        >>> for arm, reward in (("a", 0.0), ("b", 1.0)):
        ...     greedy.update(arm, reward)
        >>> shared = {"policy": {}, "state": {"kind": "bandit", "policy": greedy.to_dict()}}
        >>> routing.bind_rollouts(lambda name: shared)
        >>> {routing.choose(None) for _ in range(5)}
        {'b'}
        """
        self.read = read
        document = read(self.deployment.name)
        seed = None if document is None else document["policy"].get("seed")
        self.rng = np.random.default_rng(seed)

    def choose(self, key: str | None) -> str:
        """The arm the policy draws now (the weighted split without a shared policy)."""
        if self.read is None:
            return self.split.choose(key)
        policy = _bandit(self.read(self.deployment.name), self.arms)
        if policy is None:
            return self.split.choose(key)
        return policy.choose(self.rng)


def record_reward(
    db: Database, deployment: str, variant: str, reward: float, *, arms: list[str] | None = None
) -> bool:
    """Add ``reward`` to arm ``variant`` of ``deployment``'s bandit, in one transaction;
    whether there was such a bandit arm to learn. A ``bandit`` deployment without a
    rollout gets the default one (Thompson sampling on 0/1 rewards over its live variants
    ``arms``) with its first reward.

    >>> record_reward(Database("sqlite://"), "api", "a", 1.0)
    False
    >>> db = Database("sqlite://")
    >>> record_reward(db, "api", "a", 1.0, arms=["a", "b"])
    True
    >>> read_rollout(db, "api")["state"]["policy"]["state"]
    {'counts': [1, 0], 'sums': [1.0, 0.0]}
    """
    with db.write() as connection:
        found = locked_rollout(connection, deployment)
        if found is None and arms is not None:
            policy = RolloutPolicy()
            fresh = BANDIT_POLICIES[policy.bandit](arms, **policy.bandit_params)
            found = (policy, {"kind": "bandit", "policy": fresh.to_dict()}, "serving")
        if found is None or found[1].get("kind") != "bandit":
            return False
        policy_document, state, set_by = found
        bandit = policy_from_dict(state["policy"])
        if variant not in bandit.arms:
            return False
        bandit.update(variant, reward)
        state["policy"] = bandit.to_dict()
        write_rollout(connection, deployment, policy_document, state, set_by, db.clock())
    return True


register_policy("bandit", BanditRouting)

__all__ = ["BanditRouting", "policy_for", "record_reward"]
