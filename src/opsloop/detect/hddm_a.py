"""HDDM_A, drift detection with Hoeffding's bound on moving averages (Frías-Blanco et al. 2015).

The update rule is River's ``drift.binary.HDDMA`` (same parameters, defaults and detections),
which follows MOA. The cut points move with every item and each detection restarts the
statistics, so the loop is a numba kernel shared by ``update`` and ``update_many``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import SlotDetector, WarningDetector
from opsloop.detect.validation import flag, real_in

_DRIFT, _WARNING, _Z_N, _Z_MEAN, _LO_N, _LO_MEAN, _HI_N, _HI_MEAN = range(8)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _shifted(n_all, mean_all, n_cut, mean_cut, log_term, rising):
    # Whether the mean since the cut point moved beyond the bound; ``log_term`` is
    # log(2 / confidence), computed once in Python exactly as River computes it per call.
    if n_cut == n_all:
        return False
    m = (n_all - n_cut) / n_cut * (1.0 / n_all)
    eps = math.sqrt(m / 2 * log_term)
    if rising:
        return mean_all - mean_cut >= eps
    return mean_cut - mean_all >= eps


@numba.njit(cache=True, error_model="numpy")
def _step(s, x, initial, log_bound, log_drift, log_warning, two_sided):
    if s[_DRIFT] != 0.0:
        s[:] = initial
    n = s[_Z_N] + 1.0
    s[_Z_N] = n
    s[_Z_MEAN] += (1.0 / n) * (x - s[_Z_MEAN])
    z = s[_Z_MEAN]
    if s[_LO_N] == 0.0:
        s[_LO_N] = n
        s[_LO_MEAN] = z
    if s[_HI_N] == 0.0:
        s[_HI_N] = n
        s[_HI_MEAN] = z
    eps_z = math.sqrt(1.0 / (2 * n) * log_bound)
    eps_x = math.sqrt(1.0 / (2 * s[_LO_N]) * log_bound)
    if s[_LO_MEAN] + eps_x >= z + eps_z:
        s[_LO_N] = n
        s[_LO_MEAN] = z
    eps_x = math.sqrt(1.0 / (2 * s[_HI_N]) * log_bound)
    if s[_HI_MEAN] - eps_x <= z - eps_z:
        s[_HI_N] = n
        s[_HI_MEAN] = z
    if _shifted(n, z, s[_LO_N], s[_LO_MEAN], log_drift, True):
        s[_WARNING] = 0.0
        s[_DRIFT] = 1.0
    elif _shifted(n, z, s[_LO_N], s[_LO_MEAN], log_warning, True):
        s[_WARNING] = 1.0
        s[_DRIFT] = 0.0
    else:
        s[_WARNING] = 0.0
        s[_DRIFT] = 0.0
    if two_sided:
        if _shifted(n, z, s[_HI_N], s[_HI_MEAN], log_drift, False):
            s[_DRIFT] = 1.0
        elif _shifted(n, z, s[_HI_N], s[_HI_MEAN], log_warning, False):
            s[_WARNING] = 1.0


@numba.njit(cache=True, error_model="numpy")
def _run(s, xs, initial, log_bound, log_drift, log_warning, two_sided, flags):
    for i in range(xs.size):
        _step(s, xs[i], initial, log_bound, log_drift, log_warning, two_sided)
        flags[i] = (1 if s[_DRIFT] != 0.0 else 0) | (2 if s[_WARNING] != 0.0 else 0)


class HDDM_A(SlotDetector, WarningDetector):
    r"""Hoeffding's-bound drift detection with moving averages (the "A-test").

    HDDM_A keeps the mean :math:`\bar z` of all items since the last detection and a cut point:
    the prefix whose mean plus Hoeffding bound was lowest, with mean :math:`\bar x`. With
    :math:`n` items in all and :math:`c` in the prefix, it signals when

    .. math:: \bar z - \bar x \ge \sqrt{\tfrac{n - c}{2 c n} \ln \tfrac{2}{\gamma}}

    with :math:`\gamma` = ``drift_confidence`` (drift) or ``warning_confidence`` (warning).
    The two-sided test also watches decreases.

    Input: values in [0, 1], typically 1 for an error and 0 for a correct prediction.

    Parameters
    ----------
    drift_confidence
        Significance of the drift test (smaller: fewer false alarms, later detection).
    warning_confidence
        Significance of the warning test.
    two_sided_test
        Also signal decreases of the mean.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.4])
    >>> HDDM_A().update_many(errors).drift_indices.tolist()
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
        "z_n",
        "z_mean",
        "low_cut_n",
        "low_cut_mean",
        "high_cut_n",
        "high_cut_mean",
    )

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        two_sided_test: bool = False,
    ) -> None:
        unit = {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}
        self.drift_confidence = real_in("HDDM_A", "drift_confidence", drift_confidence, **unit)
        self.warning_confidence = real_in(
            "HDDM_A", "warning_confidence", warning_confidence, **unit
        )
        self.two_sided_test = flag("HDDM_A", "two_sided_test", two_sided_test)
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> HDDM_A().get_params()["two_sided_test"]
        False
        """
        return {
            "drift_confidence": self.drift_confidence,
            "warning_confidence": self.warning_confidence,
            "two_sided_test": self.two_sided_test,
        }

    def _initial_slots(self) -> np.ndarray:
        return np.zeros(len(self._slots))

    def _start_afresh(self) -> None:
        super()._start_afresh()
        self._args = (
            self._initial_slots(),
            math.log(1.0 / self.drift_confidence),
            math.log(2.0 / self.drift_confidence),
            math.log(2.0 / self.warning_confidence),
            self.two_sided_test,
        )

    @property
    def warning_detected(self) -> bool:
        """Whether HDDM_A is in its warning zone."""
        return bool(self._s[_WARNING])
