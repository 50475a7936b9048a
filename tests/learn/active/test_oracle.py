import numpy as np
import pytest

from opsloop.learn.active import Oracle, SimulatedOracle


def test_answers_from_true_labels_and_counts_them():
    oracle = SimulatedOracle(np.array(["a", "b", "c", "a"]))
    assert oracle.label(np.array([3, 1]), None).tolist() == ["a", "b"]
    assert oracle.label(np.array([2]), None).tolist() == ["c"]
    assert oracle.n_answered_ == 3


def test_noise_one_always_answers_a_wrong_class():
    y = np.array([0, 1, 2] * 100)
    answer = SimulatedOracle(y, noise=1.0, random_state=0).label(np.arange(y.size), None)
    assert (answer != y).all()
    assert set(answer.tolist()) == {0, 1, 2}


def test_noise_flips_about_that_share():
    y = np.zeros(4000, dtype=int)
    y[::2] = 1
    answer = SimulatedOracle(y, noise=0.2, random_state=1).label(np.arange(y.size), None)
    # binomial(4000, 0.2): sd is about 25 flips, so 4 sd is 0.025 of the share
    assert abs((answer != y).mean() - 0.2) < 0.025


def test_is_an_oracle():
    assert isinstance(SimulatedOracle([0]), Oracle)


def test_bad_arguments():
    with pytest.raises(ValueError, match="noise must be within"):
        SimulatedOracle([0, 1], noise=1.5)
    with pytest.raises(ValueError, match="indices must lie in"):
        SimulatedOracle([0, 1]).label(np.array([2]), None)
