"""EDDM, the Early Drift Detection Method of Baena-García et al. (2006), on a stream of errors.

The update rule is River's ``drift.binary.EDDM`` (same parameters, defaults and detections).
The running mean and variance of the gaps between errors and their running maximum make each
item depend on all earlier ones, so ``update_many``'s loop is a numba kernel; ``update``
repeats its operations in plain Python (see :class:`~opsloop.detect.base.PythonStepDetector`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import PythonStepDetector, WarningDetector
from opsloop.detect.validation import check_value, positive_int, real_in

_DRIFT, _WARNING, _N, _LAST_ERROR, _N_ERRORS, _GAP_N, _GAP_MEAN, _GAP_SQ, _P2S_MAX = range(9)


@numba.njit(cache=True, error_model="numpy")
def _step(s, x, initial, warm_start, alpha, beta, half):
    if s[_DRIFT] != 0.0:
        s[:] = initial
    s[_N] += 1.0
    if x == 1.0:
        s[_N_ERRORS] += 1.0
        gap = s[_N] - s[_LAST_ERROR]
        # Welford's update, in River's order of operations so the sums agree to the bit.
        mean_old = s[_GAP_MEAN]
        s[_GAP_N] += 1.0
        mean_new = mean_old + (1.0 / s[_GAP_N]) * (gap - mean_old)
        s[_GAP_MEAN] = mean_new
        s[_GAP_SQ] += (gap - mean_old) * (gap - mean_new)
        if s[_N] > warm_start:
            var = s[_GAP_SQ] / (s[_GAP_N] - 1.0) if s[_GAP_N] > 1.0 else 0.0
            # ``half`` arrives as an argument: a literal 0.5 would let LLVM turn pow into sqrt,
            # which rounds differently from Python's ``** 0.5`` in a few values per thousand.
            p2s = mean_new + 2.0 * var**half
            if p2s > s[_P2S_MAX]:
                s[_P2S_MAX] = p2s
            elif s[_N_ERRORS] > warm_start:
                level = p2s / s[_P2S_MAX]
                if level < beta:
                    s[_DRIFT] = 1.0
                elif level < alpha:
                    s[_WARNING] = 1.0
                else:
                    s[_WARNING] = 0.0
        s[_LAST_ERROR] = s[_N]


@numba.njit(cache=True, error_model="numpy")
def _run(s, xs, initial, warm_start, alpha, beta, half, flags):
    for i in range(xs.size):
        _step(s, xs[i], initial, warm_start, alpha, beta, half)
        flags[i] = (1 if s[_DRIFT] != 0.0 else 0) | (2 if s[_WARNING] != 0.0 else 0)


class EDDM(PythonStepDetector, WarningDetector):
    r"""Early Drift Detection Method: signals when errors come closer together.

    EDDM tracks the mean :math:`p'_i` and standard deviation :math:`s'_i` of the number of
    items between two errors, and the maximum :math:`m` of :math:`p'_i + 2 s'_i`. Once more
    than ``warm_start`` items and errors were read, at each error it signals

    * warning when :math:`(p'_i + 2 s'_i) / m < \alpha`,
    * drift when :math:`(p'_i + 2 s'_i) / m < \beta`.

    A warning persists until the next error is read.

    Input: 1 for an error, 0 for a correct prediction.

    Parameters
    ----------
    warm_start
        Items, and errors, to read before any signal.
    alpha
        Warning level, in (0, 1]; closer to 1 warns sooner.
    beta
        Drift level, in (0, alpha]; closer to 1 detects sooner and raises more false alarms.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(3000) < 0.1, rng.random(1000) < 0.5])
    >>> EDDM(alpha=0.8, beta=0.75).update_many(errors).drift_indices.tolist()
    [3354]

    References
    ----------
    Manuel Baena-García, José del Campo-Ávila, Raúl Fidalgo, Albert Bifet, Ricard Gavaldà,
    Rafael Morales-Bueno. Early Drift Detection Method. Fourth International Workshop on
    Knowledge Discovery from Data Streams, 2006.
    """

    _step_kernel = staticmethod(_step)
    _run_kernel = staticmethod(_run)

    input_rule = "binary"
    _slots: ClassVar[tuple[str, ...]] = (
        "drift",
        "warning",
        "n",
        "last_error",
        "n_errors",
        "gap_n",
        "gap_mean",
        "gap_sq",
        "p2s_max",
    )

    def __init__(self, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9) -> None:
        self.warm_start = positive_int("EDDM", "warm_start", warm_start, minimum=0)
        self.alpha = real_in("EDDM", "alpha", alpha, low=0.0, high=1.0, low_open=True)
        self.beta = real_in("EDDM", "beta", beta, low=0.0, high=1.0, low_open=True)
        if self.alpha < self.beta:
            raise ValueError(f"EDDM: alpha ({alpha!r}) must be >= beta ({beta!r})")
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> EDDM().get_params()
        {'warm_start': 30, 'alpha': 0.95, 'beta': 0.9}
        """
        return {"warm_start": self.warm_start, "alpha": self.alpha, "beta": self.beta}

    def _initial_slots(self) -> np.ndarray:
        state = np.zeros(len(self._slots))
        state[_P2S_MAX] = -1.0
        return state

    def _start_afresh(self) -> None:
        super()._start_afresh()
        self._args = (self._initial_slots(), float(self.warm_start), self.alpha, self.beta, 0.5)
        self._initial = self._s.copy()

    def update(self, x: float) -> bool:
        """Read one item (1 = error); return whether drift is signalled at it."""
        if type(x) is not float or (x != 0.0 and x != 1.0):
            x = check_value("EDDM", x, "binary")
        # The kernel ``_step``'s operations, in its order, on the list of slots.
        s = self._s
        if s[_DRIFT] != 0.0:
            s[:] = self._initial
        self._n_seen += 1
        n = s[_N] + 1.0
        s[_N] = n
        if x == 0.0:
            return False
        s[_N_ERRORS] += 1.0
        gap = n - s[_LAST_ERROR]
        mean_old = s[_GAP_MEAN]
        count = s[_GAP_N] + 1.0
        s[_GAP_N] = count
        mean_new = mean_old + (1.0 / count) * (gap - mean_old)
        s[_GAP_MEAN] = mean_new
        s[_GAP_SQ] += (gap - mean_old) * (gap - mean_new)
        s[_LAST_ERROR] = n
        warm_start = self._args[1]
        if n > warm_start:
            var = s[_GAP_SQ] / (count - 1.0) if count > 1.0 else 0.0
            p2s = mean_new + 2.0 * var**0.5
            if p2s > s[_P2S_MAX]:
                s[_P2S_MAX] = p2s
            elif s[_N_ERRORS] > warm_start:
                level = p2s / s[_P2S_MAX]
                if level < self.beta:
                    s[_DRIFT] = 1.0
                    return True
                s[_WARNING] = 1.0 if level < self.alpha else 0.0
        return False

    @property
    def warning_detected(self) -> bool:
        """Whether EDDM is in its warning zone."""
        return bool(self._s[_WARNING])
