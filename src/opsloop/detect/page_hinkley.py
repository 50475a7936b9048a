"""Page-Hinkley test for a change in the mean of a stream (Page 1954).

The update rule is River's ``drift.PageHinkley`` (same parameters, defaults and detections).
The faded cumulative sums and their running extremes are recursions, and each detection
restarts them, so ``update_many``'s loop is a numba kernel; ``update`` repeats its
operations in plain Python (see :class:`~opsloop.detect.base.PythonStepDetector`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import PythonStepDetector
from opsloop.detect.validation import check_value, one_of, positive_int, real_in

_DRIFT, _N, _MEAN, _SUM_UP, _SUM_DOWN, _MIN_UP, _MAX_DOWN = range(7)
_MODES = ("up", "down", "both")


@numba.njit(cache=True, error_model="numpy")
def _step(s, x, initial, min_instances, delta, threshold, alpha, mode):
    if s[_DRIFT] != 0.0:
        s[:] = initial
    n = s[_N] + 1.0
    s[_N] = n
    mean = s[_MEAN] + (1.0 / n) * (x - s[_MEAN])
    s[_MEAN] = mean
    dev = x - mean
    up = alpha * s[_SUM_UP] + dev - delta
    down = alpha * s[_SUM_DOWN] + dev + delta
    s[_SUM_UP] = up
    s[_SUM_DOWN] = down
    if up < s[_MIN_UP]:
        s[_MIN_UP] = up
    if down > s[_MAX_DOWN]:
        s[_MAX_DOWN] = down
    if n >= min_instances:
        rise = up - s[_MIN_UP] > threshold
        fall = s[_MAX_DOWN] - down > threshold
        if mode == 0:
            hit = rise
        elif mode == 1:
            hit = fall
        else:
            hit = rise or fall
        s[_DRIFT] = 1.0 if hit else 0.0


@numba.njit(cache=True, error_model="numpy")
def _run(s, xs, initial, min_instances, delta, threshold, alpha, mode, flags):
    for i in range(xs.size):
        _step(s, xs[i], initial, min_instances, delta, threshold, alpha, mode)
        flags[i] = 1 if s[_DRIFT] != 0.0 else 0


class PageHinkley(PythonStepDetector):
    r"""Page-Hinkley test: signals when the mean of a stream moves away from its running mean.

    With :math:`\bar x_t` the running mean since the last detection, the test accumulates
    :math:`U_t = \alpha U_{t-1} + (x_t - \bar x_t) - \delta` (rises) and
    :math:`L_t = \alpha L_{t-1} + (x_t - \bar x_t) + \delta` (falls) and, after
    ``min_instances`` items, signals when :math:`U_t - \min U > \lambda` or
    :math:`\max L - L_t > \lambda`.

    The threshold is in the stream's units: the River defaults assume a stream of scale about
    1 and raise false alarms every few thousand items on Gaussian noise;
    ``PageHinkley.preset("monitoring")`` is tuned for rare false alarms (see
    :mod:`opsloop.detect.presets`).

    Parameters
    ----------
    min_instances
        Items to read before any signal.
    delta
        Magnitude of change that is tolerated (:math:`\delta`), in the stream's units.
    threshold
        :math:`\lambda`: how far the cumulative sum must move, in the stream's units.
    alpha
        Fading factor of the sums; 1 means no fading.
    mode
        ``"up"`` for rises only, ``"down"`` for falls only, ``"both"`` for either.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> stream = np.concatenate([rng.normal(0, 1, 2000), rng.normal(3, 1, 1000)])
    >>> PageHinkley().update_many(stream).drift_indices.tolist()  # 924 is a false alarm
    [924, 2011]

    References
    ----------
    E. S. Page. Continuous Inspection Schemes. Biometrika 41 (1/2), 1954, pp. 100-115.
    """

    _step_kernel = staticmethod(_step)
    _run_kernel = staticmethod(_run)

    input_rule = "real"
    _slots: ClassVar[tuple[str, ...]] = (
        "drift",
        "n",
        "mean",
        "sum_up",
        "sum_down",
        "min_up",
        "max_down",
    )

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        self.min_instances = positive_int("PageHinkley", "min_instances", min_instances, minimum=0)
        self.delta = real_in("PageHinkley", "delta", delta)
        self.threshold = real_in("PageHinkley", "threshold", threshold, low=0.0)
        self.alpha = real_in("PageHinkley", "alpha", alpha, low=0.0, high=1.0)
        self.mode = one_of("PageHinkley", "mode", mode, _MODES)
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> PageHinkley(mode="up").get_params()["mode"]
        'up'
        """
        return {
            "min_instances": self.min_instances,
            "delta": self.delta,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "mode": self.mode,
        }

    def _initial_slots(self) -> np.ndarray:
        return np.array([0.0, 0.0, 0.0, 0.0, 0.0, math.inf, -1.0])

    def _start_afresh(self) -> None:
        super()._start_afresh()
        self._args = (
            self._initial_slots(),
            float(self.min_instances),
            self.delta,
            self.threshold,
            self.alpha,
            _MODES.index(self.mode),
        )
        self._initial = self._s.copy()
        self._constants = self._args[1:]

    def update(self, x: float) -> bool:
        """Read one item; return whether drift is signalled at it."""
        # ``x - x`` is 0 for a finite float and nan for an infinite or nan one.
        if type(x) is not float or x - x != 0.0:
            x = check_value("PageHinkley", x, "real")
        # The kernel ``_step``'s operations, in its order, on the list of slots.
        s = self._s
        if s[_DRIFT] != 0.0:
            s[:] = self._initial
        self._n_seen += 1
        min_instances, delta, threshold, alpha, mode = self._constants
        n = s[_N] + 1.0
        s[_N] = n
        mean = s[_MEAN]
        mean = mean + (1.0 / n) * (x - mean)
        s[_MEAN] = mean
        dev = x - mean
        up = alpha * s[_SUM_UP] + dev - delta
        down = alpha * s[_SUM_DOWN] + dev + delta
        s[_SUM_UP] = up
        s[_SUM_DOWN] = down
        min_up = s[_MIN_UP]
        if up < min_up:
            s[_MIN_UP] = min_up = up
        max_down = s[_MAX_DOWN]
        if down > max_down:
            s[_MAX_DOWN] = max_down = down
        if n < min_instances:
            return False
        if mode == 0:
            hit = up - min_up > threshold
        elif mode == 1:
            hit = max_down - down > threshold
        else:
            hit = up - min_up > threshold or max_down - down > threshold
        if hit:
            s[_DRIFT] = 1.0
        return hit

    @property
    def mean(self) -> float:
        """Running mean since the last detection."""
        return float(self._s[_MEAN])
