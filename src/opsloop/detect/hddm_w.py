"""HDDM_W, drift detection with McDiarmid's bound on weighted averages (Frías-Blanco et al. 2015).

The update rule is River's ``drift.binary.HDDMW`` (same parameters, defaults and detections),
which follows MOA. Exponentially weighted means, cut points that move with every item and
restarts after each detection make the loop sequential, so it is a numba kernel shared by
``update`` and ``update_many``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import SlotDetector, WarningDetector
from opsloop.detect.validation import flag, real_in

# Five weighted samples, each (mean, started, ibc): the whole stream, and the samples before
# and after the cut points that track an increase and a decrease.
_TOTAL, _S1_INC, _S2_INC, _S1_DEC, _S2_DEC = 2, 5, 8, 11, 14
_MEAN, _STARTED, _IBC = 0, 1, 2
_DRIFT, _WARNING, _INC_CUT, _DEC_CUT = 0, 1, 17, 18
_SAMPLES = ("total", "s1_increase", "s2_increase", "s1_decrease", "s2_decrease")


@numba.njit(cache=True, error_model="numpy", inline="always")
def _add(s, at, x, weight, keep, weight_sq, keep_sq):
    # River's EWMean: the first value is taken as is, later ones are blended.
    if s[at + _STARTED] == 0.0:
        s[at + _MEAN] = x
        s[at + _STARTED] = 1.0
    else:
        s[at + _MEAN] = weight * x + keep * s[at + _MEAN]
    s[at + _IBC] = weight_sq + keep_sq * s[at + _IBC]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _copy(s, src, dst):
    s[dst + _MEAN] = s[src + _MEAN]
    s[dst + _STARTED] = s[src + _STARTED]
    s[dst + _IBC] = s[src + _IBC]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _clear(s, at):
    s[at + _MEAN] = 0.0
    s[at + _STARTED] = 0.0
    s[at + _IBC] = 1.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _changed(s, before, after, log_term):
    # Whether the weighted mean after the cut exceeds the one before it beyond the bound.
    if s[before + _STARTED] == 0.0 or s[after + _STARTED] == 0.0:
        return False
    rise = s[after + _MEAN] - s[before + _MEAN]
    # The bound is never negative, so a rise <= 0 fails without computing it.
    if rise <= 0.0:
        return False
    return rise > math.sqrt((s[before + _IBC] + s[after + _IBC]) * log_term / 2)


@numba.njit(cache=True, error_model="numpy")
def _step(s, x, initial, weight, keep, weight_sq, keep_sq, log_drift, log_warning, two_sided):
    if s[_DRIFT] != 0.0:
        s[:] = initial
    _add(s, _TOTAL, x, weight, keep, weight_sq, keep_sq)

    eps = math.sqrt(s[_TOTAL + _IBC] * log_drift / 2)
    if s[_TOTAL + _MEAN] + eps < s[_INC_CUT]:
        s[_INC_CUT] = s[_TOTAL + _MEAN] + eps
        _copy(s, _TOTAL, _S1_INC)
        _clear(s, _S2_INC)
    else:
        _add(s, _S2_INC, x, weight, keep, weight_sq, keep_sq)
    if _changed(s, _S1_INC, _S2_INC, log_drift):
        s[_WARNING] = 0.0
        s[_DRIFT] = 1.0
    elif _changed(s, _S1_INC, _S2_INC, log_warning):
        s[_WARNING] = 1.0
        s[_DRIFT] = 0.0
    else:
        s[_WARNING] = 0.0
        s[_DRIFT] = 0.0

    # ``eps`` is River's bound for the decrease cut point too: same inputs, same value.
    if s[_TOTAL + _MEAN] - eps > s[_DEC_CUT]:
        s[_DEC_CUT] = s[_TOTAL + _MEAN] - eps
        _copy(s, _TOTAL, _S1_DEC)
        _clear(s, _S2_DEC)
    else:
        _add(s, _S2_DEC, x, weight, keep, weight_sq, keep_sq)
    if two_sided:
        if _changed(s, _S2_DEC, _S1_DEC, log_drift):
            s[_DRIFT] = 1.0
        elif _changed(s, _S2_DEC, _S1_DEC, log_warning):
            s[_WARNING] = 1.0


@numba.njit(cache=True, error_model="numpy")
def _run(
    s, xs, initial, weight, keep, weight_sq, keep_sq, log_drift, log_warning, two_sided, flags
):
    for i in range(xs.size):
        _step(
            s, xs[i], initial, weight, keep, weight_sq, keep_sq, log_drift, log_warning, two_sided
        )
        flags[i] = (1 if s[_DRIFT] != 0.0 else 0) | (2 if s[_WARNING] != 0.0 else 0)


class HDDM_W(SlotDetector, WarningDetector):
    r"""Hoeffding-style drift detection with exponentially weighted moving averages (the "W-test").

    HDDM_W keeps an exponentially weighted mean of the stream (weight :math:`\lambda` on the
    newest item) and a cut point where that mean plus McDiarmid's bound was lowest; it compares
    the weighted mean before the cut with the weighted mean of the items after it and signals
    when the difference exceeds :math:`\sqrt{(b_1 + b_2) \ln(1/\gamma) / 2}`, where the
    :math:`b` are the samples' independent bounded conditions and :math:`\gamma` is
    ``drift_confidence`` (drift) or ``warning_confidence`` (warning). The two-sided test also
    watches decreases.

    Input: values in [0, 1], typically 1 for an error and 0 for a correct prediction.

    Parameters
    ----------
    drift_confidence
        Significance of the drift test.
    warning_confidence
        Significance of the warning test.
    lambda_val
        Weight of the newest item in the weighted means, in (0, 1].
    two_sided_test
        Also signal decreases of the mean.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])
    >>> HDDM_W().update_many(errors).drift_indices.tolist()
    [1053]

    References
    ----------
    Isvani Frías-Blanco, José del Campo-Ávila, Gonzalo Ramos-Jiménez, Rafael Morales-Bueno,
    Agustín Ortiz-Díaz, Yailé Caballero-Mota. Online and Non-Parametric Drift Detection
    Methods Based on Hoeffding's Bounds. IEEE TKDE 27(3), 2015, pp. 810-823.
    """

    _step_kernel = staticmethod(_step)
    _run_kernel = staticmethod(_run)

    input_rule = "unit"
    _slots: ClassVar[tuple[str, ...]] = (
        "drift",
        "warning",
        *(f"{sample}_{part}" for sample in _SAMPLES for part in ("mean", "started", "ibc")),
        "increase_cut",
        "decrease_cut",
    )

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        lambda_val: float = 0.05,
        two_sided_test: bool = False,
    ) -> None:
        unit = {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}
        self.drift_confidence = real_in("HDDM_W", "drift_confidence", drift_confidence, **unit)
        self.warning_confidence = real_in(
            "HDDM_W", "warning_confidence", warning_confidence, **unit
        )
        self.lambda_val = real_in(
            "HDDM_W", "lambda_val", lambda_val, low=0.0, high=1.0, low_open=True
        )
        self.two_sided_test = flag("HDDM_W", "two_sided_test", two_sided_test)
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> HDDM_W().get_params()["lambda_val"]
        0.05
        """
        return {
            "drift_confidence": self.drift_confidence,
            "warning_confidence": self.warning_confidence,
            "lambda_val": self.lambda_val,
            "two_sided_test": self.two_sided_test,
        }

    def _initial_slots(self) -> np.ndarray:
        state = np.zeros(len(self._slots))
        for at in (_TOTAL, _S1_INC, _S2_INC, _S1_DEC, _S2_DEC):
            state[at + _IBC] = 1.0
        state[_INC_CUT] = math.inf
        state[_DEC_CUT] = -math.inf
        return state

    def _start_afresh(self) -> None:
        super()._start_afresh()
        lam = self.lambda_val
        self._args = (
            self._initial_slots(),
            lam,
            1.0 - lam,
            lam * lam,
            (1 - lam) ** 2,
            math.log(1 / self.drift_confidence),
            math.log(1 / self.warning_confidence),
            self.two_sided_test,
        )

    @property
    def warning_detected(self) -> bool:
        """Whether HDDM_W is in its warning zone."""
        return bool(self._s[_WARNING])
