"""KSWIN, Kolmogorov-Smirnov windowing (Raab, Heusinger & Schleif 2020).

The update rule is River's ``drift.KSWIN`` (same parameters, defaults, random draws and
detections). River calls scipy's ``ks_2samp`` once per item, which caps it at a few thousand
items per second; here the per-item work is a numba kernel:

* The reference sample is drawn with ``random.Random(seed).sample`` exactly as River draws it,
  using :mod:`opsloop.detect.mersenne_twister` (River re-seeds after every detection, and so
  does this class when ``seed`` is an integer).
* Both samples have ``stat_size`` values, so the two-sample KS statistic is ``h / stat_size``
  for an integer ``h`` (scipy's exact method rounds it to that too) and its p-value depends on
  ``h`` alone. The ``stat_size + 1`` possible p-values are computed once with scipy's
  ``ks_2samp(method="auto")`` and looked up; the kernel only finds ``h`` by merging the two
  sorted samples. This is scipy's result bit for bit while scipy uses its exact distribution
  (``stat_size`` up to 10,000); above that scipy's asymptotic p-value depends on the statistic
  up to rounding, which a lookup by ``h`` can differ from in the last bits.

With ``seed=None`` River draws a fresh entropy seed at every restart; this class seeds once
from the operating system and keeps drawing from the same generator, which is as random and
can be saved and restored.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Iterable
from typing import Any

import numba
import numpy as np
from scipy import stats

from opsloop.detect.base import ScalarDetector, decode_float, encode_float
from opsloop.detect.mersenne_twister import python_random_state, sample_range, sample_set_size
from opsloop.detect.validation import check_values, positive_int, real_in

_DRIFT, _N, _P_VALUE, _LENGTH, _START = range(5)
_SCALARS = ("drift", "n", "p_value", "length", "start")


@functools.lru_cache(maxsize=64)
def _ks_table(stat_size: int) -> tuple[np.ndarray, np.ndarray]:
    """scipy's (statistic, p-value) for two samples of ``stat_size`` values at distance ``h``."""
    a = np.arange(stat_size, dtype=np.float64)
    statistic = np.empty(stat_size + 1)
    p_value = np.empty(stat_size + 1)
    with warnings.catch_warnings():
        # River silences the warning scipy gives when it falls back to the asymptotic method.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for h in range(stat_size + 1):
            # Shifting by h - 1/2 leaves exactly h values of `a` below the other sample.
            b = a if h == 0 else a + (h - 0.5)
            result = stats.ks_2samp(a, b, method="auto")
            statistic[h] = result.statistic
            p_value[h] = result.pvalue
    return statistic, p_value


@numba.njit(cache=True, inline="always")
def _insertion_sort(values, n):
    for i in range(1, n):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


@numba.njit(cache=True, inline="always")
def _ks_distance(a, b, n):
    # Largest gap between the two empirical CDFs, in items, at each distinct value.
    i = 0
    j = 0
    gap = 0
    while i < n and j < n:
        v = a[i] if a[i] < b[j] else b[j]
        while i < n and a[i] <= v:
            i += 1
        while j < n and b[j] <= v:
            j += 1
        d = i - j if i > j else j - i
        if d > gap:
            gap = d
    return gap


@numba.njit(cache=True)
def _step(
    s, window, rng, seed_state, reseed, x, p_values, hits, scratch, picks, pool, taken, set_size
):
    size = window.size
    stat_size = picks.size
    if s[_DRIFT] != 0.0:
        s[:] = 0.0
        if reseed:
            rng[:] = seed_state
    s[_N] += 1.0
    length = int(s[_LENGTH])
    start = int(s[_START])
    if length < size:
        window[(start + length) % size] = x
        length += 1
        s[_LENGTH] = length
    else:
        window[start] = x
        start = (start + 1) % size
        s[_START] = start
    if length < size:
        s[_DRIFT] = 0.0
        return
    n_old = size - stat_size
    sample_range(rng, n_old, stat_size, set_size, picks, pool, taken)
    for i in range(stat_size):
        scratch[0, i] = window[(start + picks[i]) % size]
        scratch[1, i] = window[(start + n_old + i) % size]
    _insertion_sort(scratch[0], stat_size)
    _insertion_sort(scratch[1], stat_size)
    h = _ks_distance(scratch[0], scratch[1], stat_size)
    s[_P_VALUE] = p_values[h]
    if hits[h]:
        s[_DRIFT] = 1.0
        # River keeps the recent sample, in arrival order, as the new window.
        for i in range(stat_size):
            scratch[0, i] = window[(start + n_old + i) % size]
        window[:stat_size] = scratch[0]
        s[_LENGTH] = stat_size
        s[_START] = 0.0
    else:
        s[_DRIFT] = 0.0


@numba.njit(cache=True)
def _run(
    s,
    window,
    rng,
    seed_state,
    reseed,
    xs,
    p_values,
    hits,
    scratch,
    picks,
    pool,
    taken,
    set_size,
    flags,
):
    for i in range(xs.size):
        _step(
            s,
            window,
            rng,
            seed_state,
            reseed,
            xs[i],
            p_values,
            hits,
            scratch,
            picks,
            pool,
            taken,
            set_size,
        )
        flags[i] = 1 if s[_DRIFT] != 0.0 else 0


class KSWIN(ScalarDetector):
    r"""Kolmogorov-Smirnov windowing: compares the newest items with a sample of older ones.

    KSWIN keeps the last ``window_size`` items. Once the window is full, after each item it
    draws ``stat_size`` items at random from the older ``window_size - stat_size`` and runs
    a two-sample Kolmogorov-Smirnov test against the newest ``stat_size`` items; it signals
    drift when the p-value is at most ``alpha`` and the statistic exceeds 0.1.

    The test runs after every item on small samples, so false alarms are frequent with the
    River defaults (every few hundred items on an unchanged stream); use a much smaller
    ``alpha`` for monitoring.

    Input: any finite real values.

    Parameters
    ----------
    alpha
        Significance of the KS test, in [0, 1].
    window_size
        Items kept; at least twice ``stat_size``.
    stat_size
        Size of both samples compared.
    seed
        Seed of the reference-sample draws (River's semantics: re-seeded after each
        detection); ``None`` draws from the operating system's entropy.
    window
        Items to start with, oldest first (the last ``window_size`` are kept).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(12345)
    >>> stream = np.concatenate([rng.integers(0, 2, 1000), rng.integers(4, 8, 1000)])
    >>> KSWIN(alpha=0.0001, seed=42).update_many(stream).drift_indices.tolist()
    [1016]

    References
    ----------
    Christoph Raab, Moritz Heusinger, Frank-Michael Schleif. Reactive Soft Prototype Computing
    for Concept Drift Streams. Neurocomputing 416, 2020, pp. 340-351.
    """

    input_rule = "real"

    def __init__(
        self,
        alpha: float = 0.005,
        window_size: int = 100,
        stat_size: int = 30,
        seed: int | None = None,
        window: Iterable[float] | None = None,
    ) -> None:
        self.alpha = real_in("KSWIN", "alpha", alpha, low=0.0, high=1.0)
        self.stat_size = positive_int("KSWIN", "stat_size", stat_size)
        self.window_size = positive_int(
            "KSWIN", "window_size", window_size, minimum=2 * self.stat_size
        )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f"KSWIN: seed must be an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.window = (
            None
            if window is None
            else check_values("KSWIN", list(window), "real", name="window")[
                -self.window_size :
            ].tolist()
        )
        statistic, p_values = _ks_table(self.stat_size)
        self._p_values = p_values
        self._hits = (p_values <= self.alpha) & (statistic > 0.1)
        self._seed_state = python_random_state(self.seed)
        self._init_stream()
        if self.window:
            self._window[: len(self.window)] = self.window
            self._s[_LENGTH] = len(self.window)

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> KSWIN(seed=1).get_params()["seed"]
        1
        """
        return {
            "alpha": self.alpha,
            "window_size": self.window_size,
            "stat_size": self.stat_size,
            "seed": self.seed,
            "window": self.window,
        }

    def _start_afresh(self) -> None:
        n_old = self.window_size - self.stat_size
        self._s = np.zeros(len(_SCALARS))
        self._window = np.zeros(self.window_size)
        self._rng = self._seed_state.copy()
        self._scratch = np.empty((2, self.stat_size))
        self._picks = np.empty(self.stat_size, dtype=np.int64)
        self._pool = np.empty(n_old, dtype=np.int64)
        self._taken = np.zeros(n_old, dtype=np.bool_)
        self._set_size = sample_set_size(self.stat_size)

    def _kernel_args(self) -> tuple:
        return (
            self._s,
            self._window,
            self._rng,
            self._seed_state,
            self.seed is not None,
        )

    def _scratch_args(self) -> tuple:
        return (
            self._p_values,
            self._hits,
            self._scratch,
            self._picks,
            self._pool,
            self._taken,
            self._set_size,
        )

    def _step(self, x: float) -> None:
        _step(*self._kernel_args(), x, *self._scratch_args())

    def _run(self, xs: np.ndarray) -> np.ndarray:
        flags = np.empty(xs.size, dtype=np.uint8)
        _run(*self._kernel_args(), xs, *self._scratch_args(), flags)
        return flags

    @property
    def drift_detected(self) -> bool:
        """Whether the last item's test rejected equality of the two samples."""
        return bool(self._s[_DRIFT])

    @property
    def p_value(self) -> float:
        """p-value of the last test (0 before the first test, as in River)."""
        return float(self._s[_P_VALUE])

    def window_values(self) -> np.ndarray:
        """The items in the window, oldest first."""
        length, start = int(self._s[_LENGTH]), int(self._s[_START])
        return self._window[(start + np.arange(length)) % self.window_size].copy()

    def _export_state(self) -> dict[str, Any]:
        return {
            "drift": encode_float(self._s[_DRIFT]),
            "n": encode_float(self._s[_N]),
            "p_value": encode_float(self._s[_P_VALUE]),
            "window": self.window_values().tolist(),
            "rng": self._rng.tolist(),
        }

    def _import_state(self, state: dict[str, Any]) -> None:
        missing = [k for k in ("drift", "n", "p_value", "window", "rng") if k not in state]
        if missing:
            raise ValueError(f"KSWIN.from_state: the saved state lacks {missing}")
        values = check_values("KSWIN", state["window"], "real", name="window")
        if values.size > self.window_size:
            raise ValueError("KSWIN.from_state: the saved window is longer than window_size")
        rng = np.asarray(state["rng"], dtype=np.int64)
        if rng.shape != (625,) or rng[:624].min() < 0 or rng[:624].max() >= 2**32:
            raise ValueError("KSWIN.from_state: rng must be 625 numbers (624 words, position)")
        self._s[:] = 0.0
        self._s[_DRIFT] = decode_float(state["drift"])
        self._s[_N] = decode_float(state["n"])
        self._s[_P_VALUE] = decode_float(state["p_value"])
        self._s[_LENGTH] = values.size
        self._window[: values.size] = values
        self._rng[:] = rng
