"""LFR, Linear Four Rates (Wang & Abraham 2015): drift in a binary classifier's confusion rates.

While the data are stationary, the four rates of the confusion matrix (TPR, TNR, PPV, NPV)
stay constant. LFR follows each rate two ways: ``P``, the rate counted over everything since
the last start (with one pseudo-count in each cell), and ``R``, a time-decayed rate
``R <- eta * R + (1 - eta) * [y_true == y_pred]`` updated by the items that rate depends on
(TPR by actual positives, TNR by actual negatives, PPV by predicted positives, NPV by predicted
negatives). Under no change, ``R`` after ``m`` updates from ``R_0 = 0.5`` is distributed as
``eta**m * 0.5 + (1 - eta) * sum(eta**j * B_j)`` with ``B_j ~ Bernoulli(P)``; LFR warns or
signals drift when some rate's ``R`` falls outside the central ``1 - level`` of that
distribution.

The paper reads the bounds from a table filled by Monte Carlo simulation. Here the table is
computed, not simulated: the distribution of ``R`` is propagated exactly through the
recursion on a grid of 2,049 points in [0, 1] (each step splits a point's mass between the
two grid points around its image, which keeps the mean exact and adds less than 6e-4 to the
standard deviation), for ``P`` on a grid of step 0.001 (clamped to [0.001, 0.999]) and ``m``
up to the first ``m`` where ``eta**m < 1e-6`` (later distributions differ from it by less
than that). So the bounds are deterministic, free of simulation noise in the far tails that
small levels need, and each row is computed once, the first time a stream needs it, and
shared by all detectors with the same ``decay`` and levels.

The counts, decayed rates and restarts are a sequential recursion, so the loop is a numba
kernel shared by ``update`` and ``update_many``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import DetectionResult, SlotState, WarningDetector
from opsloop.detect.validation import check_value, check_values, positive_int, real_in

_DRIFT, _WARNING, _N, _C00, _C01, _C10, _C11, _R_TPR, _R_TNR, _R_PPV, _R_NPV = range(11)
RATES = ("tpr", "tnr", "ppv", "npv")

_GRID = 2049
_P_STEPS = 1000
#: Decayed rates within this of their limit are taken as at their limit.
_TAIL = 1e-6

#: Bound tables (bounds, rows filled) shared by detectors with the same decay and levels.
_tables: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray]] = {}


@numba.njit(cache=True, error_model="numpy")
def _fill_row(table, filled, p_index, decay, tails):
    # Bounds for one value of P and every m: propagate the distribution of R on the grid.
    p = p_index / _P_STEPS
    step = 1.0 / (_GRID - 1)
    mass = np.zeros(_GRID)
    mass[(_GRID - 1) // 2] = 1.0
    for k in range(4):
        table[p_index, 0, k] = 0.5
    for m in range(1, table.shape[1]):
        moved = np.zeros(_GRID)
        for b in range(_GRID):
            w = mass[b]
            if w == 0.0:
                continue
            x = b * step
            for hit in range(2):
                share = p if hit == 1 else 1.0 - p
                position = (decay * x + (1.0 - decay) * hit) / step
                low = math.floor(position)
                if low >= _GRID - 1:
                    moved[_GRID - 1] += w * share
                    continue
                frac = position - low
                moved[low] += w * share * (1.0 - frac)
                moved[low + 1] += w * share * frac
        mass = moved
        cumulative = np.cumsum(mass)
        for k in range(4):
            # The smallest grid value whose cumulative probability reaches the tail level.
            at = np.searchsorted(cumulative, tails[k] * cumulative[-1])
            table[p_index, m, k] = min(at, _GRID - 1) * step
    filled[p_index] = True


@numba.njit(cache=True, error_model="numpy", inline="always")
def _rate_signal(num, den, r, table, filled, decay, tails):
    # 0: inside the bounds, 1: outside the warning bounds, 2: outside the drift bounds.
    m = int(den) - 2
    if m <= 0:
        return 0
    p_index = round(num / den * _P_STEPS)
    p_index = min(max(p_index, 1), _P_STEPS - 1)
    if not filled[p_index]:
        _fill_row(table, filled, p_index, decay, tails)
    m = min(m, table.shape[1] - 1)
    if r < table[p_index, m, 2] or r > table[p_index, m, 3]:
        return 2
    if r < table[p_index, m, 0] or r > table[p_index, m, 1]:
        return 1
    return 0


@numba.njit(cache=True, error_model="numpy")
def _run(s, truth, predicted, initial, decay, burn_in, table, filled, tails, flags):
    for i in range(truth.size):
        if s[_DRIFT] != 0.0:
            s[:] = initial
        t = truth[i]
        p = predicted[i]
        s[_N] += 1.0
        s[_C00 + int(2 * p + t)] += 1.0
        hit = 1.0 if t == p else 0.0
        at = _R_TPR if t == 1.0 else _R_TNR
        s[at] = decay * s[at] + (1.0 - decay) * hit
        at = _R_PPV if p == 1.0 else _R_NPV
        s[at] = decay * s[at] + (1.0 - decay) * hit
        worst = 0
        if s[_N] > burn_in:
            c00, c01, c10, c11 = s[_C00], s[_C01], s[_C10], s[_C11]
            worst = max(worst, _rate_signal(c11, c01 + c11, s[_R_TPR], table, filled, decay, tails))
            worst = max(worst, _rate_signal(c00, c00 + c10, s[_R_TNR], table, filled, decay, tails))
            worst = max(worst, _rate_signal(c11, c10 + c11, s[_R_PPV], table, filled, decay, tails))
            worst = max(worst, _rate_signal(c00, c00 + c01, s[_R_NPV], table, filled, decay, tails))
        s[_DRIFT] = 1.0 if worst == 2 else 0.0
        s[_WARNING] = 1.0 if worst == 1 else 0.0
        flags[i] = 1 if worst == 2 else (2 if worst == 1 else 0)


class LFR(SlotState, WarningDetector):
    r"""Linear Four Rates: signals when TPR, TNR, PPV or NPV leaves its expected range.

    Input: pairs ``(y_true, y_pred)`` of binary labels, so ``update(y_true, y_pred)`` and
    ``update_many(y_true, y_pred)`` take two arguments (the only detector here that does).

    Parameters
    ----------
    decay
        :math:`\eta`, the weight of the past in the decayed rates, in (0, 0.999].
    warning_level
        Two-sided significance of the warning bounds, per rate.
    detection_level
        Two-sided significance of the drift bounds, per rate (at most ``warning_level``).
    burn_in
        Items read after each start before any rate is tested.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y_true = rng.integers(0, 2, 4000)
    >>> wrong = rng.random(4000) < np.where(np.arange(4000) < 2000, 0.1, 0.4)
    >>> result = LFR().update_many(y_true, np.where(wrong, 1 - y_true, y_true))
    >>> result.drift_indices.tolist()
    [2018]

    References
    ----------
    Heng Wang, Zubin Abraham. Concept Drift Detection for Streaming Data. International Joint
    Conference on Neural Networks (IJCNN), 2015.
    """

    _slots: ClassVar[tuple[str, ...]] = (
        "drift",
        "warning",
        "n",
        "tn",
        "fn",
        "fp",
        "tp",
        "r_tpr",
        "r_tnr",
        "r_ppv",
        "r_npv",
    )

    def __init__(
        self,
        decay: float = 0.9,
        warning_level: float = 0.01,
        detection_level: float = 0.0001,
        burn_in: int = 50,
    ) -> None:
        self.decay = real_in("LFR", "decay", decay, low=0.0, high=0.999, low_open=True)
        self.warning_level = real_in(
            "LFR", "warning_level", warning_level, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.detection_level = real_in(
            "LFR",
            "detection_level",
            detection_level,
            low=0.0,
            high=self.warning_level,
            low_open=True,
        )
        self.burn_in = positive_int("LFR", "burn_in", burn_in, minimum=0)
        key = (self.decay, self.warning_level, self.detection_level)
        if key not in _tables:
            depth = math.ceil(math.log(_TAIL) / math.log(self.decay))
            _tables[key] = (
                np.zeros((_P_STEPS + 1, depth + 1, 4)),
                np.zeros(_P_STEPS + 1, dtype=np.bool_),
            )
        self._table, self._filled = _tables[key]
        w, d = self.warning_level / 2, self.detection_level / 2
        self._tails = np.array([w, 1.0 - w, d, 1.0 - d])
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> LFR().get_params()["decay"]
        0.9
        """
        return {
            "decay": self.decay,
            "warning_level": self.warning_level,
            "detection_level": self.detection_level,
            "burn_in": self.burn_in,
        }

    def _initial_slots(self) -> np.ndarray:
        return np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])

    def _pairs(self, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
        truth = check_values("LFR", y_true, "binary", name="y_true")
        predicted = check_values("LFR", y_pred, "binary", name="y_pred")
        if truth.size != predicted.size:
            raise ValueError(
                f"LFR: y_true and y_pred must have the same length, got {truth.size} "
                f"and {predicted.size}"
            )
        return truth, predicted

    def _go(self, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        flags = np.empty(truth.size, dtype=np.uint8)
        _run(
            self._s,
            truth,
            predicted,
            self._initial_slots(),
            self.decay,
            float(self.burn_in),
            self._table,
            self._filled,
            self._tails,
            flags,
        )
        return flags

    def update(self, y_true: int, y_pred: int) -> bool:  # type: ignore[override]
        """Read one (true label, predicted label) pair; return whether drift is signalled."""
        truth = check_value("LFR", y_true, "binary", name="y_true")
        predicted = check_value("LFR", y_pred, "binary", name="y_pred")
        self._go(np.array([truth]), np.array([predicted]))
        self._n_seen += 1
        return self.drift_detected

    def update_many(self, y_true, y_pred) -> DetectionResult:  # type: ignore[override]
        """Read arrays of true and predicted labels, as if pair by pair."""
        truth, predicted = self._pairs(y_true, y_pred)
        start = self._n_seen
        if truth.size == 0:
            return DetectionResult.empty(self.name, start)
        flags = self._go(truth, predicted)
        self._n_seen += int(truth.size)
        return DetectionResult.from_flags(self.name, start, flags)

    @property
    def warning_detected(self) -> bool:
        """Whether some rate is outside its warning bounds."""
        return bool(self._s[_WARNING])

    def rates(self) -> dict[str, dict[str, float]]:
        """Each rate's counted value ``P`` and decayed value ``R`` since the last start.

        >>> LFR().rates()["tpr"]
        {'P': 0.5, 'R': 0.5}
        """
        c00, c01, c10, c11 = (float(v) for v in self._s[_C00 : _C11 + 1])
        counted = {
            "tpr": c11 / (c01 + c11),
            "tnr": c00 / (c00 + c10),
            "ppv": c11 / (c10 + c11),
            "npv": c00 / (c00 + c01),
        }
        decayed = dict(zip(RATES, (float(v) for v in self._s[_R_TPR : _R_NPV + 1]), strict=True))
        return {name: {"P": counted[name], "R": decayed[name]} for name in RATES}
