"""Which live variant answers a request: the strategy's routing policy.

A policy sees the deployment's live variants (every role but ``shadow``) with their weights
and the request's routing key, and names one variant. :func:`policy_for` picks the policy of
a deployment's strategy from :data:`POLICIES`; :func:`register_policy` replaces one, which
is where a canary ramp or a bandit plugs in (a policy may keep state; it is built again
whenever the deployment's definition changes).

Every strategy written so far routes by the weights (:class:`WeightedSplit`): ``single``
(one variant, weight 1), ``shadow`` (the primary at 1), ``canary`` (the candidate at its
fixed share), ``blue_green`` (the side at 1; :meth:`~.Deployments.switch` swaps the weights),
``ab``; ``bandit`` deployments are routed by :mod:`.bandit_routing` (it registers itself).

With a routing key the choice is sticky: the key and the deployment's name are hashed
(SHA-256) to a share ``u`` in [0, 1), and the variant whose slice of the cumulative weights
holds ``u`` answers, so the same key meets the same variant for as long as the weights stay
(and, since the slices are laid out in definition order, a key stays on the first variant
while that variant's share grows). Without a key each request draws ``u`` at random.

>>> split = WeightedSplit((("stable", 0.9), ("canary", 0.1)))
>>> split.choose("user-17") == split.choose("user-17")
True
>>> round(routing_share("credit-api", "user-17"), 6)
0.287397
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from opsloop.errors import InvalidArgumentError
from opsloop.serving.deployment_records import STRATEGIES, Deployment


class RoutingPolicy(Protocol):
    """Names the live variant that answers a request with routing key ``key`` (or none)."""

    def choose(self, key: str | None) -> str:
        """The answering variant's name."""
        ...


def routing_share(deployment: str, key: str) -> float:
    """The share in [0, 1) that routing key ``key`` maps to in ``deployment``.

    >>> routing_share("api", "a") == routing_share("api", "a") != routing_share("other", "a")
    True
    """
    digest = hashlib.sha256(f"{deployment}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


#: The longest routing key, as the ``X-Routing-Key`` header allows.
MAX_ROUTING_KEY = 1000


def routing_key_of(records: object, field: str) -> str:
    """The routing key a request's ``records`` carry in ``field`` (a deployment's
    ``routing_key_field``): every record must have it, with one value, a string or an
    integer (an integer routes as its decimal text, so ``17`` and ``"17"`` are one key).

    >>> routing_key_of([{"user_id": 17, "age": 41}, {"user_id": 17, "age": 9}], "user_id")
    '17'
    >>> routing_key_of([{"age": 41}], "user_id")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: records[0].user_id: missing; this deployment routes by it
    >>> routing_key_of([{"user_id": "a"}, {"user_id": "b"}], "user_id")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: records[1].user_id: 'b' differs from records[0]'s 'a'; one request is routed as one
    """  # noqa: E501
    if not isinstance(records, Sequence) or isinstance(records, str | bytes) or not records:
        raise InvalidArgumentError(
            f"records: must be a non-empty list of objects; this deployment routes by {field!r}"
        )
    key = None
    for position, record in enumerate(records):
        where = f"records[{position}].{field}"
        if not isinstance(record, Mapping) or field not in record:
            raise InvalidArgumentError(f"{where}: missing; this deployment routes by it")
        value = record[field]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidArgumentError(
                f"{where}: must be a string or an integer to route by, got {value!r}"
            )
        if len(str(value)) > MAX_ROUTING_KEY:
            raise InvalidArgumentError(
                f"{where}: a routing key has at most {MAX_ROUTING_KEY} characters, "
                f"got {len(str(value))}"
            )
        if key is None:
            key = value
        elif str(value) != str(key):
            raise InvalidArgumentError(
                f"{where}: {value!r} differs from records[0]'s {key!r}; "
                "one request is routed as one"
            )
    return str(key)


class WeightedSplit:
    """Route by fixed weights: variant ``i`` answers when the request's share falls in its
    slice of the cumulative weights (``live`` pairs of name and weight, in order).

    >>> split = WeightedSplit((("a", 0.25), ("b", 0.75)), deployment="api")
    >>> [split.choose_share(u) for u in (0.0, 0.2499, 0.25, 0.9999)]
    ['a', 'a', 'b', 'b']
    >>> WeightedSplit((("a", 0.0),))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: routing: no live variant has a positive weight
    """

    def __init__(self, live: Sequence[tuple[str, float]], deployment: str = "") -> None:
        chosen = [(name, float(weight)) for name, weight in live if weight > 0]
        if not chosen:
            raise InvalidArgumentError("routing: no live variant has a positive weight")
        self.deployment = deployment
        self.names = [name for name, _ in chosen]
        total = sum(weight for _, weight in chosen)
        # Normalised, so a sum of 1 within the definition's tolerance covers [0, 1) whole.
        self.bounds = [bound / total for bound in itertools.accumulate(w for _, w in chosen)]
        self.bounds[-1] = 1.0

    def choose_share(self, share: float) -> str:
        """The variant whose slice holds ``share``."""
        return self.names[min(bisect.bisect_right(self.bounds, share), len(self.names) - 1)]

    def choose(self, key: str | None) -> str:
        """The variant for routing key ``key`` (sticky), or a random one when ``None``.

        >>> WeightedSplit((("only", 1.0),)).choose(None)
        'only'
        """
        if len(self.names) == 1:
            return self.names[0]
        share = random.random() if key is None else routing_share(self.deployment, key)
        return self.choose_share(share)


def weighted_split(deployment: Deployment) -> WeightedSplit:
    """The weighted split of ``deployment``'s live variants.

    >>> from opsloop.serving.deployment_records import Variant
    >>> d = Deployment("api", "canary", "full_automation",
    ...                (Variant("a", "m", version=1, weight=0.9),
    ...                 Variant("b", "m", version=2, role="candidate", weight=0.1)),
    ...                None, 0, "ana", {"a": 1, "b": 2})
    >>> weighted_split(d).names
    ['a', 'b']
    """
    live = [(v.name, v.weight) for v in deployment.variants if v.role != "shadow"]
    return WeightedSplit(live, deployment=deployment.name)


#: Each strategy's policy factory; :func:`register_policy` replaces one.
POLICIES: dict[str, Callable[[Deployment], RoutingPolicy]] = {
    strategy: weighted_split for strategy in STRATEGIES
}


def register_policy(strategy: str, factory: Callable[[Deployment], RoutingPolicy]) -> None:
    """Route deployments of ``strategy`` with the policies ``factory`` builds from their
    definitions (a ramp or a bandit registers itself here).

    >>> register_policy("bandit", weighted_split)
    >>> register_policy("lottery", weighted_split)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: strategy must be one of single, shadow, canary, ...
    """
    if strategy not in STRATEGIES:
        raise InvalidArgumentError(
            f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    POLICIES[strategy] = factory


def policy_for(deployment: Deployment) -> RoutingPolicy:
    """The routing policy of ``deployment``'s strategy.

    >>> from opsloop.serving.deployment_records import Variant
    >>> d = Deployment("api", "single", "full_automation", (Variant("a", "m", version=1),),
    ...                None, 0, "ana", {"a": 1})
    >>> policy_for(d).choose("anyone")
    'a'
    """
    return POLICIES[deployment.strategy](deployment)
