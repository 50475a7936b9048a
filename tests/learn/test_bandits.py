import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from opsloop.errors import InvalidArgumentError
from opsloop.learn.bandits import (
    UCB1,
    BernoulliThompson,
    EpsilonGreedy,
    GaussianThompson,
    policy_from_dict,
)

ARMS = ["v1", "v2", "v3"]


def _simulate(policy, draw_reward, pulls, batch, seed):
    """Route ``batch`` requests from the current state, learn their rewards, repeat."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(policy.arms, 0)
    for _ in range(pulls // batch):
        chosen = policy.choose_many(rng, batch)
        policy.update_many(chosen, draw_reward(chosen, rng))
        for arm in chosen:
            counts[arm] += 1
    return counts


def _bernoulli(rates):
    def draw(chosen, rng):
        p = np.array([rates[arm] for arm in chosen])
        return (rng.random(p.size) < p).astype(float)

    return draw


@pytest.mark.parametrize(
    ("policy", "minimum"),
    [
        (BernoulliThompson(ARMS), 0.9),
        (EpsilonGreedy(ARMS, epsilon=0.1), 0.85),
        (UCB1(ARMS), 0.7),
    ],
)
def test_policies_converge_to_the_best_arm(policy, minimum):
    counts = _simulate(policy, _bernoulli({"v1": 0.1, "v2": 0.2, "v3": 0.3}), 6000, 20, 7)
    assert counts["v3"] / 6000 > minimum
    assert policy.counts.sum() == 6000


def test_gaussian_thompson_converges_on_real_rewards():
    means = {"v1": 10.0, "v2": 10.5, "v3": 11.0}

    def draw(chosen, rng):
        return np.array([means[arm] for arm in chosen]) + rng.normal(0, 2.0, len(chosen))

    policy = GaussianThompson(ARMS, prior_mean=10.0, prior_scale=4.0)
    counts = _simulate(policy, draw, 6000, 20, 3)
    assert counts["v3"] / 6000 > 0.8
    assert policy.shares(np.random.default_rng(0))["v3"] > 0.9


def test_ucb1_values_by_hand():
    policy = UCB1(ARMS)
    rng = np.random.default_rng(0)
    # Untried arms come first, in a random order among themselves.
    first = []
    for _ in range(3):
        arm = policy.choose(rng)
        first.append(arm)
        policy.update(arm, {"v1": 0.0, "v2": 1.0, "v3": 0.5}[arm])
    assert sorted(first) == ARMS
    policy.update_many(["v1", "v1"], [1.0, 1.0])
    # t = 5; v1: 2/3 + sqrt(2 ln 5 / 3), v2: 1 + sqrt(2 ln 5), v3: 0.5 + sqrt(2 ln 5).
    bonus = math.sqrt(2 * math.log(5))
    expected = [2 / 3 + bonus / math.sqrt(3), 1 + bonus, 0.5 + bonus]
    np.testing.assert_allclose(policy.ucb_values(), expected, rtol=0, atol=1e-15)
    assert policy.choose(rng) == "v2"
    assert policy.shares() == {"v1": 0.0, "v2": 1.0, "v3": 0.0}


def test_thompson_shares_match_the_exact_probability():
    policy = BernoulliThompson(["a", "b"], draws=200_000)
    policy.update_many(["a"] * 20 + ["b"] * 20, [1] * 5 + [0] * 15 + [1] * 8 + [0] * 12)
    a, b = stats.beta(6, 16), stats.beta(9, 13)
    exact, _ = integrate.quad(lambda x: b.pdf(x) * a.cdf(x), 0, 1, epsabs=1e-12)
    share = policy.shares(np.random.default_rng(5))["b"]
    # 200,000 draws: standard error below 0.0011.
    assert share == pytest.approx(exact, abs=0.004)


def test_gaussian_posterior_by_hand():
    policy = GaussianThompson(["a", "b"], prior_mean=1.0, prior_count=2.0, prior_shape=3.0)
    x = np.array([2.0, 4.0, 9.0])
    policy.update_many(["a"] * 2, x[:2])
    policy.update("a", x[2])
    post = policy.posterior()
    n, xbar, m2 = 3, x.mean(), ((x - x.mean()) ** 2).sum()
    assert post["count"][0] == 5.0
    assert post["mean"][0] == pytest.approx((2 * 1 + 3 * xbar) / 5, abs=1e-12)
    assert post["shape"][0] == 4.5
    assert post["scale"][0] == pytest.approx(1 + m2 / 2 + 2 * n * (xbar - 1) ** 2 / 10, abs=1e-12)
    # The untouched arm keeps its prior.
    assert (post["mean"][1], post["count"][1], post["scale"][1]) == (1.0, 2.0, 1.0)


def test_updates_are_order_free_so_workers_can_merge():
    rng = np.random.default_rng(8)
    arms = rng.choice(ARMS, 500)
    rewards = rng.normal(5, 3, 500)
    whole = GaussianThompson(ARMS)
    whole.update_many(arms, rewards)
    split = GaussianThompson(ARMS)
    split.update_many(arms[250:], rewards[250:])
    for arm, reward in zip(arms[:250], rewards[:250], strict=True):
        split.update(arm, reward)
    np.testing.assert_array_equal(whole.counts, split.counts)
    np.testing.assert_allclose(whole.sums, split.sums, rtol=1e-13)
    np.testing.assert_allclose(whole.m2, split.m2, rtol=1e-12)
    for i, arm in enumerate(ARMS):
        assert whole.m2[i] == pytest.approx(rewards[arms == arm].var() * (arms == arm).sum())


@pytest.mark.parametrize(
    "policy",
    [BernoulliThompson(ARMS), GaussianThompson(ARMS), UCB1(ARMS), EpsilonGreedy(ARMS)],
    ids=lambda p: p.name,
)
def test_seeded_choices_repeat_and_survive_a_round_trip(policy):
    policy.update_many(["v1", "v2", "v3", "v2"], [1.0, 0.0, 1.0, 1.0])
    restored = policy_from_dict(json.loads(json.dumps(policy.to_dict())))
    assert type(restored) is type(policy)
    assert restored.get_params() == policy.get_params()
    first = policy.choose_many(np.random.default_rng(42), 200)
    assert restored.choose_many(np.random.default_rng(42), 200) == first
    assert restored.shares(np.random.default_rng(1)) == policy.shares(np.random.default_rng(1))


def test_epsilon_greedy_tries_every_arm_first_and_explores_at_its_rate():
    policy = EpsilonGreedy(ARMS, epsilon=0.2)
    assert policy.shares() == pytest.approx(dict.fromkeys(ARMS, 1 / 3))
    policy.update_many(ARMS, [0.1, 0.7, 0.3])
    chosen = policy.choose_many(np.random.default_rng(0), 30_000)
    # v2 is chosen with 0.8 + 0.2 / 3 = 0.8667; 30,000 draws: standard error 0.002.
    assert chosen.count("v2") / 30_000 == pytest.approx(0.8 + 0.2 / 3, abs=0.008)


def test_errors_name_the_policy_and_the_field():
    with pytest.raises(InvalidArgumentError, match="arms must be at least 2 distinct names"):
        UCB1(["a", "a"])
    with pytest.raises(InvalidArgumentError, match=r"unknown arm 'z'; arms are \['a', 'b'\]"):
        UCB1(["a", "b"]).update("z", 1.0)
    with pytest.raises(
        InvalidArgumentError, match=r"rewards\[1\] = 0.5 breaks the rule: .* 0 or 1"
    ):
        BernoulliThompson(["a", "b"]).update_many(["a", "b"], [1, 0.5])
    with pytest.raises(InvalidArgumentError, match=r"ucb1: rewards\[0\] = 2.0 .* in \[0, 1\]"):
        UCB1(["a", "b"]).update("a", 2.0)
    with pytest.raises(InvalidArgumentError, match="epsilon must lie in"):
        EpsilonGreedy(["a", "b"], epsilon=1.5)
    with pytest.raises(InvalidArgumentError, match="policy must be one of"):
        policy_from_dict({"policy": "exp3", "arms": ["a", "b"]})
    bad_state = UCB1(["a", "b"]).to_dict()
    bad_state["state"]["counts"] = [1]
    with pytest.raises(InvalidArgumentError, match="state 'counts' needs one value per arm"):
        policy_from_dict(bad_state)


def test_a_stored_state_that_no_update_could_give_is_refused_with_its_field():
    import statsmodels.api as sm

    # Grunfeld's 11 firms as arms, their yearly investment as the reward
    grunfeld = sm.datasets.grunfeld.load_pandas().data
    policy = GaussianThompson(sorted(grunfeld["firm"].unique()))
    policy.update_many(grunfeld["firm"].tolist(), grunfeld["invest"].to_numpy())
    stored = json.loads(json.dumps(policy.to_dict()))
    restored = policy_from_dict(stored)
    assert restored.to_dict() == policy.to_dict()
    assert restored.means["IBM"] == grunfeld.loc[grunfeld["firm"] == "IBM", "invest"].mean()

    def broken(change):
        document = json.loads(json.dumps(stored))
        change(document)
        return document

    cases = [
        (lambda d: d["state"].update(name=[0] * 11), r"unknown state 'name'; the state holds"),
        (lambda d: d["state"]["counts"].__setitem__(0, -3), "'counts' must be at least 0"),
        (lambda d: d["state"]["counts"].__setitem__(0, 2.5), "'counts' must be whole numbers"),
        (lambda d: d["state"]["sums"].__setitem__(0, float("nan")), "'sums' must be finite"),
        (lambda d: d["state"]["m2"].__setitem__(0, -1.0), "'m2' must be at least 0"),
        (lambda d: d["params"].update(prior_sd=1.0), r"params must be among \['draws', "),
        (lambda d: d.pop("arms"), "arms are missing"),
    ]
    for change, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            policy_from_dict(broken(change))
    # Bernoulli sums beyond the counts would make Beta's second parameter negative
    ones = BernoulliThompson(["a", "b"]).to_dict()
    ones["state"] = {"counts": [1, 1], "sums": [5.0, 0.0]}
    with pytest.raises(InvalidArgumentError, match="'sums' must lie between 0 and 'counts'"):
        policy_from_dict(ones)


def test_policy_from_dict_names_the_field_that_is_wrong():
    with pytest.raises(InvalidArgumentError, match=r"ucb1: arms must be a list of names, got 5"):
        policy_from_dict({"policy": "ucb1", "arms": 5})
    with pytest.raises(InvalidArgumentError, match=r"arms must be a list of names, got \['a', 2\]"):
        policy_from_dict({"policy": "ucb1", "arms": ["a", 2]})
    with pytest.raises(InvalidArgumentError, match=r"ucb1: params must be among \[\], got .*'c'"):
        policy_from_dict({"policy": "ucb1", "arms": ["a", "b"], "params": {"c": 1.0}})
    # a value of the wrong type is that parameter's mistake, not a list of allowed names
    wrong_types = [
        ("gaussian_thompson", {"prior_mean": "0"}, "prior_mean must be a finite number, got '0'"),
        ("gaussian_thompson", {"prior_count": None}, "prior_count must be a positive number"),
        ("bernoulli_thompson", {"draws": "many"}, "draws must be a positive number"),
        ("epsilon_greedy", {"epsilon": [0.1]}, r"epsilon must be a number, got \[0.1\]"),
    ]
    for name, params, message in wrong_types:
        with pytest.raises(InvalidArgumentError, match=f"{name}: {message}"):
            policy_from_dict({"policy": name, "arms": ["a", "b"], "params": params})


def test_gaussian_rewards_whose_square_overflows_are_refused_and_the_state_stays_readable():
    policy = GaussianThompson(["a", "b"])
    policy.update_many(["a", "b"], [3.0, 5.0])
    before = policy.to_dict()
    with pytest.raises(InvalidArgumentError, match=r"rewards\[0\] = 1e\+200 breaks the rule"):
        policy.update_many(["a", "a"], [1e200, -1e200])
    with pytest.raises(InvalidArgumentError, match=r"rewards\[1\] = -1e\+160 breaks the rule"):
        policy.update_many(["a", "a"], [1.0, -1e160])
    assert policy.to_dict() == before
    # each square is finite, but the squared deviation between them is not: refused whole
    big = math.sqrt(np.finfo(np.float64).max)
    with pytest.raises(InvalidArgumentError, match="state 'm2' beyond the float range"):
        policy.update_many(["a", "a"], [big, -big])
    assert policy.to_dict() == before
    # the largest rewards still accepted give a state that reads back
    policy.update_many(["a", "a"], [big / 2, -big / 2])
    assert np.isfinite(policy.m2).all()
    stored = json.loads(json.dumps(policy.to_dict()))
    assert policy_from_dict(stored).to_dict() == policy.to_dict()
    # m2 that fits a float, reached through an intermediate product that would not
    policy = GaussianThompson(["a", "b"])
    policy.update_many(["a"] * 10_000, [1e150] * 10_000)
    policy.update_many(["a"] * 10_000, [-1e150] * 10_000)
    assert policy.m2[0] == pytest.approx(2e304, rel=1e-12)


def test_a_policy_that_never_squares_its_rewards_takes_any_finite_reward():
    policy = EpsilonGreedy(["a", "b"])
    policy.update_many(["a", "b"], [1e160, 2.0])
    assert policy.sums.tolist() == [1e160, 2.0]
    with pytest.raises(
        InvalidArgumentError, match=r"rewards\[0\] = inf breaks the rule: rewards are finite"
    ):
        policy.update_many(["a"], [math.inf])
