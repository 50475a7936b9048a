"""The numba draws against CPython's ``random.Random``, both sampling algorithms."""

from __future__ import annotations

import random

import numpy as np
import pytest

from opsloop.detect.mersenne_twister import (
    below,
    python_random_state,
    sample_range,
    sample_set_size,
    to_python_random,
)


@pytest.mark.parametrize("seed", [0, 1, 42, 2**40 + 5])
@pytest.mark.parametrize(
    ("n", "k"),
    [(70, 30), (10, 3), (5, 5), (1, 1), (1000, 30), (500, 200)],  # the last two use the set
)
def test_sample_range_is_pythons(seed, n, k):
    state = python_random_state(seed)
    reference = random.Random(seed)
    out = np.empty(k, dtype=np.int64)
    pool, taken = np.empty(n, dtype=np.int64), np.zeros(n, dtype=np.bool_)
    for _ in range(50):
        sample_range(state, n, k, sample_set_size(k), out, pool, taken)
        assert out.tolist() == reference.sample(range(n), k)
    assert state.tolist() == list(reference.getstate()[1])


def test_below_is_randbelow_and_the_state_round_trips():
    state = python_random_state(9)
    reference = random.Random(9)
    draws = [below(state, n) for n in (1, 2, 3, 7, 100, 2**31 + 11) * 20]
    assert draws == [reference._randbelow(n) for n in (1, 2, 3, 7, 100, 2**31 + 11) * 20]
    assert to_python_random(state).random() == reference.random()


def test_set_size_follows_cpython():
    # CPython switches to its set algorithm above 21 (+ 4 ** ceil(log4(3k)) when k > 5).
    assert [sample_set_size(k) for k in (1, 5, 6, 30, 100)] == [21, 21, 85, 277, 1045]
