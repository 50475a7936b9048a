r"""Multi-armed bandit policies that move traffic towards the variant with the best reward.

=============================  ===================================================  ===========
policy                         chooses                                              rewards
=============================  ===================================================  ===========
:class:`BernoulliThompson`     the arm with the highest draw from its Beta(a, b)    0 or 1
                               posterior (Thompson 1933; Chapelle & Li 2011)
:class:`GaussianThompson`      the highest draw of the mean from its                real
                               normal-inverse-gamma posterior (unknown variance)
:class:`UCB1`                  :math:`\arg\max_i \bar x_i + \sqrt{2 \ln t / n_i}`   in [0, 1]
                               after one pull of each (Auer et al. 2002)
:class:`EpsilonGreedy`         a uniform arm with probability :math:`\epsilon`,     real
                               else the best mean (untried arms first)
=============================  ===================================================  ===========

Every policy has the same surface: ``choose(rng)`` returns an arm's name, ``choose_many(rng,
n)`` draws ``n`` choices from the same state (what a worker routes between two reads of the
shared state), ``update(arm, reward)`` and ``update_many(arms, rewards)`` learn, and
``shares(rng)`` gives the probability of each arm being chosen now, the traffic shares.
Choices depend only on the state and the ``numpy.random.Generator`` passed in, so a seeded
generator makes them repeatable. ``to_dict()`` holds the parameters and per-arm sufficient
statistics as JSON values; :func:`policy_from_dict` restores any policy, so several serving
workers share one policy through the store. Updates are sums, so two workers' updates can
be applied in any order and give the same state: the same counts, and sums (and Gaussian
squared deviations) equal up to floating-point rounding (about 1e-16 relative).

Written here rather than taken from a library: MABWiser documents saving a policy by
pickling the whole object, which the store will not load (pickles run code) and cannot merge
between workers, and these four policies are a few lines each on per-arm sums.

>>> import numpy as np
>>> policy = BernoulliThompson(["a", "b"])
>>> policy.update_many(["a"] * 100 + ["b"] * 100, [1] * 10 + [0] * 90 + [1] * 30 + [0] * 70)
>>> policy.choose(np.random.default_rng(0))
'b'
>>> round(policy.shares(np.random.default_rng(0))["b"], 3)
1.0

References
----------
William R. Thompson. On the likelihood that one unknown probability exceeds another in view
of the evidence of two samples. Biometrika 25(3-4), 1933, pp. 285-294.

Olivier Chapelle, Lihong Li. An empirical evaluation of Thompson sampling. NIPS 2011.

Peter Auer, Nicolò Cesa-Bianchi, Paul Fischer. Finite-time analysis of the multiarmed bandit
problem. Machine Learning 47, 2002, pp. 235-256.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from opsloop.errors import InvalidArgumentError

# the largest magnitude whose square is still a finite float64
_LARGEST_SQUARABLE = math.sqrt(np.finfo(np.float64).max)


def _positive(policy: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0.0:
        raise InvalidArgumentError(f"{policy}: {name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{policy}: {name} must be finite, got {value!r}")
    return float(value)


class BanditPolicy:
    """What every policy shares: named arms, per-arm counts and reward sums, the JSON state.

    Subclasses set ``name``, ``reward_rule`` and implement ``_draw(rng, size)`` (an array of
    chosen arm indices) and ``_probabilities(rng)``.
    """

    name: ClassVar[str]
    reward_rule: ClassVar[str] = "real"
    #: The largest reward in size a policy takes (one that squares rewards bounds it).
    largest_reward: ClassVar[float] = math.inf

    def __init__(self, arms: Sequence[str]) -> None:
        arms = [str(arm) for arm in arms] if not isinstance(arms, str) else [arms]
        if len(arms) < 2 or len(set(arms)) != len(arms):
            raise InvalidArgumentError(
                f"{self.name}: arms must be at least 2 distinct names, got {arms!r}"
            )
        self.arms = arms
        self._index = {arm: i for i, arm in enumerate(arms)}
        self.counts = np.zeros(len(arms), dtype=np.int64)
        self.sums = np.zeros(len(arms))

    # -- choosing -------------------------------------------------------------------------
    def choose(self, rng: np.random.Generator) -> str:
        """One arm's name, drawn with ``rng``.

        >>> UCB1(["a", "b"]).choose(np.random.default_rng(3)) in ("a", "b")
        True
        """
        return self.arms[int(self._draw(rng, 1)[0])]

    def choose_many(self, rng: np.random.Generator, size: int) -> list[str]:
        """``size`` choices from the current state (no learning between them).

        >>> policy = EpsilonGreedy(["a", "b"], epsilon=0.0)
        >>> policy.update_many(["a", "b"], [0.0, 1.0])
        >>> policy.choose_many(np.random.default_rng(0), 3)
        ['b', 'b', 'b']
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgumentError(f"{self.name}: size must be an integer >= 0, got {size!r}")
        return [self.arms[i] for i in self._draw(rng, size)]

    def shares(self, rng: np.random.Generator | None = None) -> dict[str, float]:
        """Probability of each arm being chosen now (Thompson: estimated with ``rng``).

        >>> UCB1(["a", "b", "c"]).shares()
        {'a': 0.3333333333333333, 'b': 0.3333333333333333, 'c': 0.3333333333333333}
        """
        return dict(zip(self.arms, (float(p) for p in self._probabilities(rng)), strict=True))

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def _probabilities(self, rng: np.random.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def _best(self, values: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
        """Index of the largest of ``values`` (rows for ``size`` draws), ties broken at random."""
        values = np.broadcast_to(values, (size, len(self.arms)))
        top = values == values.max(axis=1, keepdims=True)
        # A uniform key per tied arm picks among ties without favouring the first.
        keys = np.where(top, rng.random((size, len(self.arms))), -1.0)
        return keys.argmax(axis=1)

    def _tie_shares(self, values: np.ndarray) -> np.ndarray:
        top = values == values.max()
        return top / top.sum()

    # -- learning -------------------------------------------------------------------------
    def update(self, arm: str, reward: float) -> None:
        """Learn one reward of ``arm``.

        >>> policy = EpsilonGreedy(["a", "b"])
        >>> policy.update("b", 2.5)
        >>> policy.means
        {'a': nan, 'b': 2.5}
        """
        self.update_many([arm], [reward])

    def update_many(self, arms: Sequence[str], rewards: Any) -> None:
        """Learn rewards in bulk; order does not matter (the state is per-arm sums).

        >>> policy = BernoulliThompson(["a", "b"])
        >>> policy.update_many(["a", "b", "a"], [1, 0, 0])
        >>> policy.counts.tolist(), policy.sums.tolist()
        ([2, 1], [1.0, 0.0])
        """
        index = self._indices(arms)
        x = np.asarray(rewards, dtype=np.float64)
        if x.shape != index.shape:
            raise InvalidArgumentError(
                f"{self.name}: rewards has {x.size} values but arms has {index.size}"
            )
        bad = ~np.isfinite(x) | (np.abs(x) > self.largest_reward)
        if self.reward_rule == "binary":
            bad |= (x != 0.0) & (x != 1.0)
        elif self.reward_rule == "unit":
            bad |= (x < 0.0) | (x > 1.0)
        if bad.any():
            i = int(np.argmax(bad))
            rule = {
                "binary": "0 or 1",
                "unit": "in [0, 1]",
                "real": "finite"
                + (
                    f", at most {self.largest_reward:.4g} in size"
                    if self.largest_reward < math.inf
                    else ""
                ),
            }[self.reward_rule]
            raise InvalidArgumentError(
                f"{self.name}: rewards[{i}] = {float(x[i])!r} breaks the rule: rewards are {rule}"
            )
        before = {key: getattr(self, key).copy() for key in self._state()}
        with np.errstate(over="ignore", invalid="ignore"):
            self._learn(index, x)
        grown = [key for key in before if not np.isfinite(getattr(self, key)).all()]
        if grown:
            # many large rewards can still sum past the float range: keep the state as it was
            for key, value in before.items():
                setattr(self, key, value)
            raise InvalidArgumentError(
                f"{self.name}: rewards would take the state {grown[0]!r} beyond the float range"
            )

    def _learn(self, index: np.ndarray, x: np.ndarray) -> None:
        k = len(self.arms)
        self.counts += np.bincount(index, minlength=k)
        self.sums += np.bincount(index, weights=x, minlength=k)

    def _indices(self, arms: Sequence[str]) -> np.ndarray:
        arms = [arms] if isinstance(arms, str) else list(arms)
        try:
            return np.fromiter((self._index[str(a)] for a in arms), dtype=np.int64, count=len(arms))
        except KeyError as error:
            raise InvalidArgumentError(
                f"{self.name}: unknown arm {error.args[0]!r}; arms are {self.arms!r}"
            ) from None

    @property
    def means(self) -> dict[str, float]:
        """Observed mean reward per arm (``nan`` before its first reward).

        >>> policy = UCB1(["a", "b"])
        >>> policy.update_many(["a", "a"], [1.0, 0.0])
        >>> policy.means["a"]
        0.5
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            return dict(zip(self.arms, (self.sums / self.counts).tolist(), strict=True))

    # -- state ----------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters other than the arms.

        >>> EpsilonGreedy(["a", "b"], epsilon=0.2).get_params()
        {'epsilon': 0.2}
        """
        return {}

    def _state(self) -> dict[str, list]:
        return {"counts": self.counts.tolist(), "sums": self.sums.tolist()}

    def to_dict(self) -> dict[str, Any]:
        """Policy, arms, parameters and per-arm statistics as JSON-ready values.

        >>> UCB1(["a", "b"]).to_dict()["state"]
        {'counts': [0, 0], 'sums': [0.0, 0.0]}
        """
        return {
            "policy": self.name,
            "arms": list(self.arms),
            "params": self.get_params(),
            "state": self._state(),
        }

    def _load_state(self, state: dict[str, list]) -> None:
        known = self._state()
        if not isinstance(state, dict):
            raise InvalidArgumentError(f"{self.name}: state must be a mapping, got {state!r}")
        for key, value in state.items():
            if key not in known:
                raise InvalidArgumentError(
                    f"{self.name}: unknown state {key!r}; the state holds {sorted(known)}"
                )
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"{self.name}: state {key!r} must hold numbers, got {value!r}"
                ) from None
            if array.shape != (len(self.arms),):
                raise InvalidArgumentError(
                    f"{self.name}: state {key!r} needs one value per arm ({len(self.arms)})"
                )
            if not np.isfinite(array).all():
                raise InvalidArgumentError(f"{self.name}: state {key!r} must be finite")
            if key in ("counts", "m2") and (array < 0).any():
                raise InvalidArgumentError(f"{self.name}: state {key!r} must be at least 0")
            if key == "counts" and (array != np.round(array)).any():
                raise InvalidArgumentError(f"{self.name}: state 'counts' must be whole numbers")
            setattr(self, key, array.astype(getattr(self, key).dtype))
        if self.reward_rule in ("binary", "unit") and (
            (self.sums < 0).any() or (self.sums > self.counts).any()
        ):
            # rewards in [0, 1] sum to between 0 and their count; a Beta draw needs it
            raise InvalidArgumentError(
                f"{self.name}: state 'sums' must lie between 0 and 'counts' per arm, got "
                f"sums {self.sums.tolist()} for counts {self.counts.tolist()}"
            )


class BernoulliThompson(BanditPolicy):
    """Thompson sampling with a Beta(``prior_a``, ``prior_b``) prior per arm, 0/1 rewards.

    Each choice draws :math:`\\theta_i \\sim \\mathrm{Beta}(a + s_i, b + n_i - s_i)` and takes
    the largest. ``shares`` estimates each arm's chance of the largest draw from ``draws``
    joint draws.

    >>> import numpy as np
    >>> policy = BernoulliThompson(["a", "b"])
    >>> policy.update("a", 1)
    >>> policy.to_dict()["state"]
    {'counts': [1, 0], 'sums': [1.0, 0.0]}
    >>> policy.choose_many(np.random.default_rng(1), 8)
    ['a', 'a', 'a', 'a', 'a', 'a', 'b', 'a']

    Beta(2, 1) beats Beta(1, 1) with probability 2/3; 10,000 draws estimate it:

    >>> policy.shares(np.random.default_rng(1))
    {'a': 0.6615, 'b': 0.3385}
    """

    name = "bernoulli_thompson"
    reward_rule = "binary"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        prior_a: float = 1.0,
        prior_b: float = 1.0,
        draws: int = 10_000,
    ) -> None:
        super().__init__(arms)
        self.prior_a = _positive(self.name, "prior_a", prior_a)
        self.prior_b = _positive(self.name, "prior_b", prior_b)
        self.draws = int(_positive(self.name, "draws", draws))

    def get_params(self) -> dict[str, Any]:
        return {"prior_a": self.prior_a, "prior_b": self.prior_b, "draws": self.draws}

    def _sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        a = self.prior_a + self.sums
        b = self.prior_b + self.counts - self.sums
        return rng.beta(a, b, size=(size, len(self.arms)))

    def _draw(self, rng, size):
        return self._best(self._sample(rng, size), rng, size)

    def _probabilities(self, rng):
        rng = np.random.default_rng(0) if rng is None else rng
        chosen = self._draw(rng, self.draws)
        return np.bincount(chosen, minlength=len(self.arms)) / self.draws


class GaussianThompson(BanditPolicy):
    r"""Thompson sampling for real rewards with unknown mean and variance per arm.

    The normal-inverse-gamma prior :math:`\mu \mid \sigma^2 \sim N(m_0, \sigma^2/\kappa_0)`,
    :math:`\sigma^2 \sim \mathrm{InvGamma}(a_0, b_0)` updates to :math:`\kappa_n = \kappa_0 +
    n`, :math:`m_n = (\kappa_0 m_0 + n \bar x)/\kappa_n`, :math:`a_n = a_0 + n/2`,
    :math:`b_n = b_0 + \tfrac12 M_2 + \kappa_0 n (\bar x - m_0)^2 / (2 \kappa_n)`; a choice
    draws :math:`\sigma^2` then :math:`\mu` per arm and takes the largest :math:`\mu`.

    Parameters
    ----------
    prior_mean, prior_count
        :math:`m_0` and :math:`\kappa_0`: the prior mean counts as ``prior_count``
        observations (small: the data soon dominate).
    prior_shape, prior_scale
        :math:`a_0, b_0` of the variance's prior; set ``prior_scale`` near ``prior_shape``
        times the rewards' expected variance.

    >>> import numpy as np
    >>> policy = GaussianThompson(["a", "b"], prior_count=0.01)
    >>> policy.update_many(["a", "a", "b", "b"], [1.0, 3.0, 10.0, 14.0])
    >>> policy.to_dict()["state"]["m2"]
    [2.0, 8.0]
    >>> policy.choose(np.random.default_rng(0))
    'b'
    """

    name = "gaussian_thompson"
    # A reward whose square overflows would make the squared deviations infinite, a state
    # that could then not be stored and read back.
    largest_reward = _LARGEST_SQUARABLE

    def __init__(
        self,
        arms: Sequence[str],
        *,
        prior_mean: float = 0.0,
        prior_count: float = 0.01,
        prior_shape: float = 1.0,
        prior_scale: float = 1.0,
        draws: int = 10_000,
    ) -> None:
        super().__init__(arms)
        if (
            isinstance(prior_mean, bool)
            or not isinstance(prior_mean, (int, float))
            or not math.isfinite(prior_mean)
        ):
            raise InvalidArgumentError(
                f"{self.name}: prior_mean must be a finite number, got {prior_mean!r}"
            )
        self.prior_mean = float(prior_mean)
        self.prior_count = _positive(self.name, "prior_count", prior_count)
        self.prior_shape = _positive(self.name, "prior_shape", prior_shape)
        self.prior_scale = _positive(self.name, "prior_scale", prior_scale)
        self.draws = int(_positive(self.name, "draws", draws))
        self.m2 = np.zeros(len(self.arms))

    def get_params(self) -> dict[str, Any]:
        return {
            "prior_mean": self.prior_mean,
            "prior_count": self.prior_count,
            "prior_shape": self.prior_shape,
            "prior_scale": self.prior_scale,
            "draws": self.draws,
        }

    def _learn(self, index, x):
        k = len(self.arms)
        n_b = np.bincount(index, minlength=k).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = np.where(n_b > 0, np.bincount(index, weights=x, minlength=k) / n_b, 0.0)
            m2_b = np.bincount(index, weights=(x - mean_b[index]) ** 2, minlength=k)
            n_a = self.counts.astype(np.float64)
            mean_a = np.where(n_a > 0, self.sums / n_a, 0.0)
            n = n_a + n_b
            delta = mean_b - mean_a
            # Chan et al.: merging two groups' squared deviations exactly.
            # The counts' ratio first: delta**2 * n_a would overflow before the division.
            self.m2 = self.m2 + m2_b + np.where(n > 0, delta**2 * (n_a * n_b / n), 0.0)
        super()._learn(index, x)

    def _state(self):
        return {**super()._state(), "m2": self.m2.tolist()}

    def posterior(self) -> dict[str, np.ndarray]:
        """The normal-inverse-gamma parameters per arm: ``mean``, ``count``, ``shape``,
        ``scale``.

        >>> policy = GaussianThompson(["a", "b"], prior_count=1.0)
        >>> policy.update_many(["a", "a"], [2.0, 4.0])
        >>> policy.posterior()["mean"].tolist()
        [2.0, 0.0]
        """
        n = self.counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            xbar = np.where(n > 0, self.sums / n, 0.0)
        kappa = self.prior_count + n
        mean = (self.prior_count * self.prior_mean + n * xbar) / kappa
        shape = self.prior_shape + n / 2.0
        scale = (
            self.prior_scale
            + 0.5 * self.m2
            + self.prior_count * n * (xbar - self.prior_mean) ** 2 / (2.0 * kappa)
        )
        return {"mean": mean, "count": kappa, "shape": shape, "scale": scale}

    def _sample(self, rng, size):
        post = self.posterior()
        variance = post["scale"] / rng.gamma(post["shape"], size=(size, len(self.arms)))
        return post["mean"] + np.sqrt(variance / post["count"]) * rng.standard_normal(
            (size, len(self.arms))
        )

    def _draw(self, rng, size):
        return self._best(self._sample(rng, size), rng, size)

    def _probabilities(self, rng):
        rng = np.random.default_rng(0) if rng is None else rng
        chosen = self._draw(rng, self.draws)
        return np.bincount(chosen, minlength=len(self.arms)) / self.draws


class UCB1(BanditPolicy):
    r"""UCB1: each arm once, then the largest :math:`\bar x_i + \sqrt{2 \ln t / n_i}`.

    :math:`t` is the number of rewards learned. Rewards lie in [0, 1], the range the bound's
    guarantee assumes. Deterministic except for ties, which ``rng`` breaks.

    With :math:`t = 3`: a's index is :math:`0.5 + \sqrt{2 \ln 3 / 2} = 1.5481`, b's
    :math:`1 + \sqrt{2 \ln 3} = 2.4823`:

    >>> import numpy as np
    >>> policy = UCB1(["a", "b"])
    >>> policy.update_many(["a", "a", "b"], [1.0, 0.0, 1.0])
    >>> [round(float(v), 4) for v in policy.ucb_values()]
    [1.5481, 2.4823]
    >>> policy.choose(np.random.default_rng(0))
    'b'
    """

    name = "ucb1"
    reward_rule = "unit"

    def ucb_values(self) -> np.ndarray:
        """Each arm's index; ``inf`` for an arm not yet pulled.

        >>> UCB1(["a", "b"]).ucb_values().tolist()
        [inf, inf]
        """
        n = self.counts.astype(np.float64)
        t = n.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            values = self.sums / n + np.sqrt(2.0 * math.log(max(t, 1.0)) / n)
        return np.where(n > 0, values, np.inf)

    def _draw(self, rng, size):
        return self._best(self.ucb_values(), rng, size)

    def _probabilities(self, rng):
        return self._tie_shares(self.ucb_values())


class EpsilonGreedy(BanditPolicy):
    """A uniformly random arm with probability ``epsilon``, else the best observed mean.

    Arms not yet pulled count as best, so each is tried early.

    >>> import numpy as np
    >>> policy = EpsilonGreedy(["a", "b", "c"], epsilon=0.3)
    >>> policy.update_many(["a", "b", "c"], [0.2, 0.9, 0.5])
    >>> {arm: round(share, 2) for arm, share in policy.shares().items()}
    {'a': 0.1, 'b': 0.8, 'c': 0.1}
    """

    name = "epsilon_greedy"

    def __init__(self, arms: Sequence[str], *, epsilon: float = 0.1) -> None:
        super().__init__(arms)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
            raise InvalidArgumentError(f"{self.name}: epsilon must be a number, got {epsilon!r}")
        if not 0.0 <= epsilon <= 1.0:
            raise InvalidArgumentError(f"{self.name}: epsilon must lie in [0, 1], got {epsilon!r}")
        self.epsilon = float(epsilon)

    def get_params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def _values(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / self.counts, np.inf)

    def _draw(self, rng, size):
        explore = rng.random(size) < self.epsilon
        uniform = rng.integers(len(self.arms), size=size)
        return np.where(explore, uniform, self._best(self._values(), rng, size))

    def _probabilities(self, rng):
        k = len(self.arms)
        return self.epsilon / k + (1.0 - self.epsilon) * self._tie_shares(self._values())


POLICIES: dict[str, type[BanditPolicy]] = {
    cls.name: cls for cls in (BernoulliThompson, GaussianThompson, UCB1, EpsilonGreedy)
}


def policy_from_dict(data: dict[str, Any]) -> BanditPolicy:
    """The policy ``to_dict`` wrote, with its state.

    >>> policy = UCB1(["a", "b"])
    >>> policy.update("a", 0.5)
    >>> restored = policy_from_dict(policy.to_dict())
    >>> restored.means["a"], restored.to_dict() == policy.to_dict()
    (0.5, True)
    """
    name = data.get("policy")
    if name not in POLICIES:
        raise InvalidArgumentError(f"policy must be one of {sorted(POLICIES)}, got {name!r}")
    if "arms" not in data:
        raise InvalidArgumentError(f"{name}: the policy's arms are missing")
    arms = data["arms"]
    if not isinstance(arms, list) or not all(isinstance(arm, str) for arm in arms):
        raise InvalidArgumentError(f"{name}: arms must be a list of names, got {arms!r}")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise InvalidArgumentError(f"{name}: params must be a mapping, got {params!r}")
    cls = POLICIES[name]
    allowed = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(str(key) for key in set(params) - set(allowed))
    if unknown:
        raise InvalidArgumentError(
            f"{name}: params must be among {sorted(allowed)}, got unknown {unknown}"
        )
    # a parameter of the wrong type is refused by the constructor, naming that parameter
    policy = cls(arms, **params)
    policy._load_state(data.get("state", {}))
    return policy
