"""CPython's ``random.Random`` draws, reproduced in numba for kernels that must match it.

KSWIN (as River implements it) draws its reference sample with ``random.Random(seed).sample``.
To give the same detections at kernel speed, this module reproduces, for a generator state
taken from ``random.Random.getstate()``:

* the MT19937 32-bit output (Matsumoto & Nishimura 1998) that CPython's generator produces,
* ``Random._randbelow`` (CPython 3.11+: rejection sampling on ``getrandbits(n.bit_length())``),
* ``Random.sample(range(n), k)``, with CPython's choice between its pool and set algorithms.

The state is an int64 array of 625 numbers: the 624 words then the position, the layout of
``getstate()[1]``, so it round-trips with :mod:`random`.

>>> import random
>>> state = python_random_state(7)
>>> out, pool, taken = np.empty(3, np.int64), np.empty(10, np.int64), np.zeros(10, np.bool_)
>>> sample_range(state, 10, 3, sample_set_size(3), out, pool, taken)
>>> out.tolist() == random.Random(7).sample(range(10), 3)
True
"""

from __future__ import annotations

import math
import random

import numba
import numpy as np

_N = 624
_M = 397


def python_random_state(seed: int | None) -> np.ndarray:
    """The state of ``random.Random(seed)`` as an int64 array of 625 numbers.

    ``None`` seeds from the operating system, as :mod:`random` does.

    >>> python_random_state(0).shape
    (625,)
    """
    return np.array(random.Random(seed).getstate()[1], dtype=np.int64)


def to_python_random(state: np.ndarray) -> random.Random:
    """A ``random.Random`` positioned where ``state`` is (to check or continue in Python).

    >>> state = python_random_state(3)
    >>> to_python_random(state).random() == random.Random(3).random()
    True
    """
    rng = random.Random()
    rng.setstate((3, tuple(int(v) for v in state), None))
    return rng


def sample_set_size(k: int) -> int:
    """The population size up to which CPython's ``sample`` uses its pool algorithm.

    >>> sample_set_size(30)
    277
    """
    size = 21
    if k > 5:
        size += 4 ** math.ceil(math.log(k * 3, 4))
    return size


@numba.njit(cache=True)
def _twist(state):
    for i in range(_N):
        y = (state[i] & 0x80000000) | (state[(i + 1) % _N] & 0x7FFFFFFF)
        value = state[(i + _M) % _N] ^ (y >> 1)
        if y & 1:
            value ^= 0x9908B0DF
        state[i] = value


@numba.njit(cache=True)
def next_word(state):
    """The next 32-bit output of the generator, as ``getrandbits(32)`` returns it."""
    if state[_N] >= _N:
        _twist(state)
        state[_N] = 0
    y = state[state[_N]]
    state[_N] += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    return y


@numba.njit(cache=True)
def below(state, n):
    """A draw in ``[0, n)`` as ``Random._randbelow(n)`` makes it (``0 < n < 2**32``)."""
    bits = 0
    m = n
    while m > 0:
        bits += 1
        m >>= 1
    r = next_word(state) >> (32 - bits)
    while r >= n:
        r = next_word(state) >> (32 - bits)
    return r


@numba.njit(cache=True)
def sample_range(state, n, k, set_size, out, pool, taken):
    """Fill ``out[:k]`` with ``Random.sample(range(n), k)``; ``pool``/``taken`` are scratch."""
    if n <= set_size:
        for i in range(n):
            pool[i] = i
        for i in range(k):
            j = below(state, n - i)
            out[i] = pool[j]
            pool[j] = pool[n - i - 1]
    else:
        taken[:n] = False
        for i in range(k):
            j = below(state, n)
            while taken[j]:
                j = below(state, n)
            taken[j] = True
            out[i] = j
