"""CUSUM, Page's cumulative sum control chart, for a shift in the mean of a stream.

River has no CUSUM, so this one follows the textbook tabular form (Page 1954; Montgomery,
*Introduction to Statistical Quality Control*, ch. 9): the stream is standardised with an
in-control mean and standard deviation, given or estimated from the first items, and two
one-sided sums collect deviations beyond an allowance ``k``. The sums are a recursion with a
floor at zero and restart after each detection (and the estimate with them), so the loop is a
numba kernel shared by ``update`` and ``update_many``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import SlotDetector
from opsloop.detect.validation import one_of, positive_int, real_in

_DRIFT, _N, _MEAN, _SQ, _TARGET, _SIGMA, _UP, _DOWN = range(8)
_MODES = ("up", "down", "both")


@numba.njit(cache=True, error_model="numpy")
def _step(s, x, warm_start, k, h, mode, fixed_target, fixed_sigma):
    if s[_DRIFT] != 0.0:
        s[:] = 0.0
        s[_TARGET] = fixed_target
        s[_SIGMA] = fixed_sigma
    n = s[_N] + 1.0
    s[_N] = n
    if n <= warm_start:
        # Welford's running mean and sum of squares of the warm-up items.
        old = s[_MEAN]
        s[_MEAN] = old + (x - old) / n
        s[_SQ] += (x - old) * (x - s[_MEAN])
        if n == warm_start:
            if math.isnan(fixed_target):
                s[_TARGET] = s[_MEAN]
            if math.isnan(fixed_sigma):
                s[_SIGMA] = math.sqrt(s[_SQ] / (n - 1.0)) if n > 1.0 else 0.0
        return
    deviation = x - s[_TARGET]
    if deviation == 0.0:
        z = 0.0
    else:
        # A zero standard deviation makes any deviation an infinite one: a constant
        # warm-up followed by a different value is a change.
        z = deviation / s[_SIGMA]
    up = max(0.0, s[_UP] + z - k)
    down = max(0.0, s[_DOWN] - z - k)
    s[_UP] = up
    s[_DOWN] = down
    if mode == 0:
        hit = up > h
    elif mode == 1:
        hit = down > h
    else:
        hit = up > h or down > h
    s[_DRIFT] = 1.0 if hit else 0.0


@numba.njit(cache=True, error_model="numpy")
def _run(s, xs, warm_start, k, h, mode, fixed_target, fixed_sigma, flags):
    for i in range(xs.size):
        _step(s, xs[i], warm_start, k, h, mode, fixed_target, fixed_sigma)
        flags[i] = 1 if s[_DRIFT] != 0.0 else 0


class CUSUM(SlotDetector):
    r"""Page's tabular CUSUM: signals a sustained shift of the mean, in standard deviations.

    With :math:`z_t = (x_t - \mu_0) / \sigma` the chart keeps

    .. math:: S^+_t = \max(0, S^+_{t-1} + z_t - k), \qquad
              S^-_t = \max(0, S^-_{t-1} - z_t - k)

    and signals when :math:`S^+_t > h` (a rise) or :math:`S^-_t > h` (a fall). ``k`` is
    usually half the shift to detect (0.5 for a 1σ shift) and ``h`` sets the false-alarm
    rate: with ``k=0.5, h=5`` about one false alarm per 465 items on each side of a
    Gaussian stream, and a 1σ shift found after about 10 items.

    :math:`\mu_0` and :math:`\sigma` are ``target`` and ``sigma`` when given; otherwise they
    are the mean and standard deviation (``ddof=1``) of the first ``warm_start`` items after
    each start, during which nothing is signalled. After a detection the sums (and the
    estimates) start again on the next item.

    Parameters
    ----------
    k
        Allowance, in standard deviations.
    h
        Decision threshold, in standard deviations.
    warm_start
        Items that estimate whatever of ``target`` and ``sigma`` is not given (at least 2
        when ``sigma`` is estimated).
    mode
        ``"up"``, ``"down"`` or ``"both"``.
    target
        In-control mean :math:`\mu_0`, or ``None`` to estimate it.
    sigma
        In-control standard deviation, or ``None`` to estimate it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> stream = np.concatenate([rng.normal(0, 1, 300), rng.normal(1.5, 1, 100)])
    >>> CUSUM().update_many(stream).drift_indices.tolist()
    [310]

    With a fixed ``target`` the chart restarts against the old mean after a detection, so a
    persistent shift is signalled again every few items:

    >>> CUSUM(target=0.0, sigma=1.0).update_many(stream).drift_indices[:3].tolist()
    [309, 315, 320]

    References
    ----------
    E. S. Page. Continuous Inspection Schemes. Biometrika 41 (1/2), 1954, pp. 100-115.
    Douglas C. Montgomery. Introduction to Statistical Quality Control, 6th ed., Wiley 2009,
    section 9.1.
    """

    _step_kernel = staticmethod(_step)
    _run_kernel = staticmethod(_run)

    input_rule = "real"
    _slots: ClassVar[tuple[str, ...]] = (
        "drift",
        "n",
        "warm_mean",
        "warm_sq",
        "target",
        "sigma",
        "sum_up",
        "sum_down",
    )

    def __init__(
        self,
        k: float = 0.5,
        h: float = 5.0,
        warm_start: int = 30,
        mode: str = "both",
        target: float | None = None,
        sigma: float | None = None,
    ) -> None:
        self.k = real_in("CUSUM", "k", k, low=0.0)
        self.h = real_in("CUSUM", "h", h, low=0.0, low_open=True)
        self.mode = one_of("CUSUM", "mode", mode, _MODES)
        self.target = None if target is None else real_in("CUSUM", "target", target)
        self.sigma = (
            None if sigma is None else real_in("CUSUM", "sigma", sigma, low=0.0, low_open=True)
        )
        minimum = 2 if sigma is None else (1 if target is None else 0)
        self.warm_start = positive_int("CUSUM", "warm_start", warm_start, minimum=minimum)
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> CUSUM(target=0.0, sigma=2.0).get_params()["sigma"]
        2.0
        """
        return {
            "k": self.k,
            "h": self.h,
            "warm_start": self.warm_start,
            "mode": self.mode,
            "target": self.target,
            "sigma": self.sigma,
        }

    def _initial_slots(self) -> np.ndarray:
        state = np.zeros(len(self._slots))
        state[_TARGET] = math.nan if self.target is None else self.target
        state[_SIGMA] = math.nan if self.sigma is None else self.sigma
        return state

    def _start_afresh(self) -> None:
        super()._start_afresh()
        # With both given there is nothing to estimate and testing starts at once.
        warm = 0 if (self.target is not None and self.sigma is not None) else self.warm_start
        self._args = (
            float(warm),
            self.k,
            self.h,
            _MODES.index(self.mode),
            math.nan if self.target is None else self.target,
            math.nan if self.sigma is None else self.sigma,
        )

    @property
    def statistics(self) -> tuple[float, float]:
        """The current sums ``(S+, S-)``.

        >>> detector = CUSUM(target=0.0, sigma=1.0)
        >>> detector.update_many([1.0, 2.0]).n_drifts, detector.statistics
        (0, (2.0, 0.0))
        """
        return float(self._s[_UP]), float(self._s[_DOWN])
