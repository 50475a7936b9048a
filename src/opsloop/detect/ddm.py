"""DDM, the Drift Detection Method of Gama et al. (2004), on a stream of errors.

The update rule is River's ``drift.binary.DDM`` (same parameters, defaults and detections).
Each item depends on the running minimum of ``p + s`` over all earlier items, a recursion that
numpy cannot express as whole-array operations, so ``update_many``'s loop is a numba kernel.
``update`` repeats the kernel's operations in plain Python (calling the kernel for one item
costs more than the arithmetic), and the tests compare both with River item by item.
"""

from __future__ import annotations

import math
from math import sqrt
from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import PythonStepDetector, WarningDetector
from opsloop.detect.validation import check_value, positive_int, real_in

_DRIFT, _WARNING, _N, _P, _P_MIN, _S_MIN, _PS_MIN = range(7)


@numba.njit(cache=True, error_model="numpy")
def _step(s, x, initial, warm_start, warning_threshold, drift_threshold):
    if s[_DRIFT] != 0.0:
        s[:] = initial
    n = s[_N] + 1.0
    s[_N] = n
    p = s[_P] + (1.0 / n) * (x - s[_P])
    s[_P] = p
    sd = math.sqrt(p * (1.0 - p) / n)
    if n > warm_start:
        if p + sd <= s[_PS_MIN]:
            s[_P_MIN] = p
            s[_S_MIN] = sd
            s[_PS_MIN] = p + sd
        level = p + sd
        s[_WARNING] = 1.0 if level > s[_P_MIN] + warning_threshold * s[_S_MIN] else 0.0
        if level > s[_P_MIN] + drift_threshold * s[_S_MIN]:
            s[_DRIFT] = 1.0
            s[_WARNING] = 0.0


@numba.njit(cache=True, error_model="numpy")
def _run(s, xs, initial, warm_start, warning_threshold, drift_threshold, flags):
    for i in range(xs.size):
        _step(s, xs[i], initial, warm_start, warning_threshold, drift_threshold)
        flags[i] = (1 if s[_DRIFT] != 0.0 else 0) | (2 if s[_WARNING] != 0.0 else 0)


class DDM(PythonStepDetector, WarningDetector):
    r"""Drift Detection Method: signals when the error rate rises above its best level.

    With :math:`p_i` the error rate of the first :math:`i` items and
    :math:`s_i = \sqrt{p_i (1 - p_i) / i}`, DDM remembers :math:`p_{min}, s_{min}` where
    :math:`p_i + s_i` was lowest and signals

    * warning when :math:`p_i + s_i > p_{min} + w \, s_{min}`,
    * drift when :math:`p_i + s_i > p_{min} + d \, s_{min}`,

    only after ``warm_start`` items. Because :math:`p_i` is the rate since the last detection,
    the delay grows with the length of the quiet period before a change.

    Input: 1 for an error, 0 for a correct prediction.

    Parameters
    ----------
    warm_start
        Items to read before any signal (River's default, 30).
    warning_threshold
        :math:`w`, in units of :math:`s_{min}`; 2 is about 95% confidence.
    drift_threshold
        :math:`d`, in units of :math:`s_{min}`; 3 is about 99% confidence.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])
    >>> result = DDM().update_many(errors)
    >>> result.drift_indices.tolist()
    [1172]

    References
    ----------
    João Gama, Pedro Medas, Gladys Castillo, Pedro Rodrigues. Learning with Drift Detection.
    SBIA 2004, pp. 286-295.
    """

    _step_kernel = staticmethod(_step)
    _run_kernel = staticmethod(_run)

    input_rule = "binary"
    _slots: ClassVar[tuple[str, ...]] = ("drift", "warning", "n", "p", "p_min", "s_min", "ps_min")

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        self.warm_start = positive_int("DDM", "warm_start", warm_start, minimum=0)
        self.warning_threshold = real_in("DDM", "warning_threshold", warning_threshold, low=0.0)
        self.drift_threshold = real_in("DDM", "drift_threshold", drift_threshold, low=0.0)
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> DDM().get_params()["drift_threshold"]
        3.0
        """
        return {
            "warm_start": self.warm_start,
            "warning_threshold": self.warning_threshold,
            "drift_threshold": self.drift_threshold,
        }

    def _initial_slots(self) -> np.ndarray:
        return np.array([0.0, 0.0, 0.0, 0.0, math.nan, math.nan, math.inf])

    def _kernel_args(self) -> tuple:
        return (
            self._initial_slots(),
            float(self.warm_start),
            self.warning_threshold,
            self.drift_threshold,
        )

    def _start_afresh(self) -> None:
        super()._start_afresh()
        self._args = self._kernel_args()
        self._initial = self._s.copy()

    def update(self, x: float) -> bool:
        """Read one item (1 = error); return whether drift is signalled at it."""
        if type(x) is not float or (x != 0.0 and x != 1.0):
            x = check_value("DDM", x, "binary")
        # The kernel ``_step``'s operations, in its order, on the list of slots.
        s = self._s
        if s[_DRIFT] != 0.0:
            s[:] = self._initial
        self._n_seen += 1
        n = s[_N] + 1.0
        s[_N] = n
        p = s[_P] + (1.0 / n) * (x - s[_P])
        s[_P] = p
        sd = sqrt(p * (1.0 - p) / n)
        if n > self._args[1]:
            level = p + sd
            if level <= s[_PS_MIN]:
                s[_P_MIN] = p
                s[_S_MIN] = sd
                s[_PS_MIN] = level
            s[_WARNING] = 1.0 if level > s[_P_MIN] + self.warning_threshold * s[_S_MIN] else 0.0
            if level > s[_P_MIN] + self.drift_threshold * s[_S_MIN]:
                s[_DRIFT] = 1.0
                s[_WARNING] = 0.0
                return True
        return False

    @property
    def warning_detected(self) -> bool:
        """Whether the last item left DDM in its warning zone."""
        return bool(self._s[_WARNING])

    @property
    def error_rate(self) -> float:
        """The error rate since the last detection (``p``)."""
        return float(self._s[_P])
