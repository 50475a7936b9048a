"""ADWIN, adaptive windowing (Bifet & Gavaldà 2007), for a change in the mean of a stream.

The update rule is River's ``drift.ADWIN`` (same parameters, defaults and detections): the
window is kept in exponential histograms ("buckets"), every ``clock`` items each cut point is
tested, and the oldest bucket is dropped while some cut point shows a change. River keeps this
in Rust; here it is a numba kernel (bucket merging and window shrinking are data-dependent
loops, which numpy cannot express), with River's order of floating-point operations so the
detections agree item for item. After a detection River starts a new, empty window on the
next item, and so does this class.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numba
import numpy as np

from opsloop.detect.base import ScalarDetector, decode_float, encode_float
from opsloop.detect.validation import check_value, positive_int, real_in

# The whole state is one float64 array, because every array or number passed to a numba
# function costs a conversion on each call, which matters to ``update``: the scalars of the
# window, the parameters, the bucket count of each level (int64, through a view), then the
# bucket totals and variances of each level.
_DRIFT, _TOTAL, _VARIANCE, _WIDTH, _PHASE, _N_LEVELS = range(6)
_DELTA, _CLOCK, _MAX_BUCKETS, _MIN_WINDOW, _GRACE = range(6, 11)
_SCALARS = ("drift", "total", "variance", "width", "clock_phase", "n_levels")
#: Bucket levels held; level ``i`` summarises 2**i items, so 64 levels outlast any stream.
_MAX_LEVELS = 64
_COUNTS = 11
_BUCKETS = _COUNTS + _MAX_LEVELS
#: Items ``update`` holds at most before giving them to the kernel.
_MAX_HELD = 1024


@numba.njit(cache=True, error_model="numpy", inline="always")
def _shift_out(totals, variances, counts, level, k):
    # Drop the k oldest summaries of a level, moving the others down and zeroing the tail.
    count = counts[level]
    for j in range(count - k):
        totals[level, j] = totals[level, j + k]
        variances[level, j] = variances[level, j + k]
    for j in range(count - k, count):
        totals[level, j] = 0.0
        variances[level, j] = 0.0
    counts[level] = count - k


@numba.njit(cache=True, error_model="numpy", inline="always")
def _merge_full_levels(totals, variances, counts, n_levels, max_buckets):
    # Merge the two oldest summaries of a full level into the next level, cascading upwards.
    level = 0
    while counts[level] == max_buckets + 1:
        size = float(2**level)
        t0 = totals[level, 0]
        t1 = totals[level, 1]
        mu0 = t0 / size
        mu1 = t1 / size
        spread = size * 0.5 * (mu0 - mu1) * (mu0 - mu1)
        merged_var = variances[level, 0] + variances[level, 1] + spread
        if level + 1 >= n_levels:
            n_levels = level + 2
        nxt = counts[level + 1]
        totals[level + 1, nxt] = t0 + t1
        variances[level + 1, nxt] = merged_var
        counts[level + 1] = nxt + 1
        _shift_out(totals, variances, counts, level, 2)
        if counts[level + 1] <= max_buckets:
            break
        level += 1
    return n_levels


@numba.njit(cache=True, error_model="numpy", inline="always")
def _drop_oldest(totals, variances, counts, n_levels, total, variance, width):
    last = n_levels - 1
    size = float(2**last)
    u = totals[last, 0]
    v = variances[last, 0]
    mu = u / size
    width -= size
    total -= u
    mu_window = total / width
    variance -= v + size * width * (mu - mu_window) * (mu - mu_window) / (size + width)
    _shift_out(totals, variances, counts, last, 1)
    if counts[last] == 0:
        n_levels -= 1
    return n_levels, total, variance, width


@numba.njit(cache=True, error_model="numpy")
def _run(s, xs, flags):
    # Reads ``xs``, writing a drift flag per item into ``flags`` (``None``: only the last
    # item's, in the state); returns how many items may come before the next one at which
    # ADWIN tests (at most ``_MAX_HELD``), for ``ADWIN.update``. ``xs`` is a numpy array or
    # the ``array("d")`` that ``update`` fills: numba reads either through the buffer
    # protocol, which spares ``update`` a numpy view per call (a third of its call's cost).
    counts = s[_COUNTS:_BUCKETS].view(np.int64)
    buckets = s[_BUCKETS:].reshape((2, _MAX_LEVELS, int(s[_MAX_BUCKETS]) + 1))
    totals = buckets[0]
    variances = buckets[1]
    delta = s[_DELTA]
    clock = s[_CLOCK]
    max_buckets = int(s[_MAX_BUCKETS])
    min_window = s[_MIN_WINDOW]
    grace = s[_GRACE]
    # The scalars live in locals for the whole batch: kept in the state array, every bucket
    # write would force the compiler to reload them (it cannot rule out aliasing).
    drift = s[_DRIFT] != 0.0
    total = s[_TOTAL]
    variance = s[_VARIANCE]
    width = s[_WIDTH]
    phase = s[_PHASE]
    n_levels = int(s[_N_LEVELS])
    for i in range(len(xs)):
        x = xs[i]
        if drift:
            # River starts a new, empty window on the item after a detection.
            totals[:n_levels] = 0.0
            variances[:n_levels] = 0.0
            counts[:n_levels] = 0
            total = 0.0
            variance = 0.0
            width = 0.0
            phase = 0.0
            n_levels = 1

        totals[0, counts[0]] = x
        variances[0, counts[0]] = 0.0
        counts[0] += 1
        width += 1.0
        increment = 0.0
        if width > 1.0:
            d = x - total / (width - 1.0)
            increment = (width - 1.0) * d * d / width
        variance += increment
        total += x
        n_levels = _merge_full_levels(totals, variances, counts, n_levels, max_buckets)

        # River tests when its item counter is a multiple of ``clock``; counting the phase
        # instead of dividing keeps a 64-bit division out of the per-item cost.
        phase += 1.0
        if phase == clock:
            phase = 0.0
        change = False
        if phase == 0.0 and width > grace:
            shrink = True
            while shrink:
                shrink = False
                # The same for every cut point of a pass: River computes them per cut point
                # from the same numbers, so computing them once gives the same bits.
                delta_prime = math.log(2.0 * math.log(width) / delta)
                window_var = variance / width
                n0 = 0.0
                n1 = width
                u0 = 0.0
                u1 = total
                done = False
                level = n_levels - 1
                while level >= 0 and not done:
                    size = float(2**level)
                    count = counts[level]
                    for k in range(count):
                        n0 += size
                        n1 -= size
                        t = totals[level, k]
                        u0 += t
                        u1 -= t
                        if level == 0 and k == count - 1:
                            done = True
                            break
                        if n1 >= min_window and n0 >= min_window:
                            delta_mean = (u0 / n0) - (u1 / n1)
                            m = 1.0 / (n0 - min_window + 1.0) + 1.0 / (n1 - min_window + 1.0)
                            epsilon = (
                                math.sqrt(2.0 * m * window_var * delta_prime)
                                + 2.0 / 3.0 * delta_prime * m
                            )
                            if abs(delta_mean) > epsilon:
                                shrink = True
                                change = True
                                if width > 0.0:
                                    n_levels, total, variance, width = _drop_oldest(
                                        totals, variances, counts, n_levels, total, variance, width
                                    )
                                    done = True
                                    break
                    level -= 1
        drift = change
        # Compiled away when ``flags`` is None (numba specialises on the argument's type).
        if flags is not None:
            flags[i] = 1 if drift else 0
    s[_DRIFT] = 1.0 if drift else 0.0
    s[_TOTAL] = total
    s[_VARIANCE] = variance
    s[_WIDTH] = width
    s[_PHASE] = phase
    s[_N_LEVELS] = n_levels
    return min(int(clock - phase), _MAX_HELD)


class ADWIN(ScalarDetector):
    r"""Adaptive windowing: keeps the longest recent window whose mean looks constant.

    ADWIN holds a window :math:`W` of recent items, compressed into buckets of :math:`2^i`
    items. Every ``clock`` items it tests each split of :math:`W` into an older part
    :math:`W_0` and a newer part :math:`W_1` (both at least ``min_window_length`` long) and
    signals drift when, for some split,

    .. math:: |\hat\mu_{W_0} - \hat\mu_{W_1}| > \sqrt{2 m \sigma^2_W \delta'}
              + \tfrac{2}{3} \delta' m,

    with :math:`m = 1/(n_0 - l + 1) + 1/(n_1 - l + 1)` and
    :math:`\delta' = \ln(2 \ln |W| / \delta)`; it then drops old buckets until no split does.

    Input: any finite real values (an error stream, a loss, a feature).

    Parameters
    ----------
    delta
        Significance of the test; smaller means fewer false alarms and later detection.
    clock
        Test every ``clock`` items (1 tests after each item).
    max_buckets
        Buckets of each size kept before two are merged (at least 2).
    min_window_length
        Shortest sub-window a split may leave on either side.
    grace_period
        Items to read before the first test.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(12345)
    >>> stream = np.concatenate([rng.integers(0, 2, 1000), rng.integers(4, 8, 1000)])
    >>> ADWIN().update_many(stream).drift_indices.tolist()
    [1023]

    References
    ----------
    Albert Bifet, Ricard Gavaldà. Learning from Time-Changing Data with Adaptive Windowing.
    SIAM International Conference on Data Mining, 2007, pp. 443-448.
    """

    input_rule = "real"

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta = real_in(
            "ADWIN", "delta", delta, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.clock = positive_int("ADWIN", "clock", clock)
        self.max_buckets = positive_int("ADWIN", "max_buckets", max_buckets, minimum=2)
        self.min_window_length = positive_int("ADWIN", "min_window_length", min_window_length)
        self.grace_period = positive_int("ADWIN", "grace_period", grace_period, minimum=0)
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> ADWIN(delta=0.01).get_params()["delta"]
        0.01
        """
        return {
            "delta": self.delta,
            "clock": self.clock,
            "max_buckets": self.max_buckets,
            "min_window_length": self.min_window_length,
            "grace_period": self.grace_period,
        }

    def _start_afresh(self) -> None:
        self._s = np.zeros(_BUCKETS + 2 * _MAX_LEVELS * (self.max_buckets + 1))
        self._s[_N_LEVELS] = 1.0
        self._s[_DELTA : _GRACE + 1] = self._params()
        # Items read by ``update`` and not yet given to the kernel, and how many more items
        # may be held before the next one at which ADWIN tests (see ``update``).
        self._pending = array("d")
        self._hold = min(self.clock, _MAX_HELD)

    def _counts(self) -> np.ndarray:
        """Buckets held at each level (a view of the state)."""
        return self._s[_COUNTS:_BUCKETS].view(np.int64)

    def _buckets(self) -> np.ndarray:
        """Bucket totals (``[0]``) and variances (``[1]``) by level (a view of the state)."""
        return self._s[_BUCKETS:].reshape((2, _MAX_LEVELS, self.max_buckets + 1))

    def _params(self) -> np.ndarray:
        return np.array(
            [
                self.delta,
                float(self.clock),
                float(self.max_buckets),
                float(self.min_window_length),
                float(self.grace_period),
            ]
        )

    def update(self, x: float) -> bool:
        """Read one item; return whether drift is signalled at it.

        ADWIN can signal only at the items where it tests (every ``clock``-th item since the
        window started), so the items in between are held and given to the kernel together
        with the next tested item: one kernel call per ``clock`` items instead of one per
        item, with the same arithmetic in the same order as ``update_many``.
        """
        pending = self._pending
        # The checks cost as much as the rest of ``update``, so they ride on operations it
        # needs anyway: ``x - x`` is 0 for a finite number, and the float array refuses what
        # is not a real number. ``check_value`` then raises, naming the rule broken.
        try:
            if x - x == 0.0:
                pending.append(x)
            else:
                raise ArithmeticError  # nan or infinite
        except (TypeError, ValueError, ArithmeticError):
            pending.append(check_value("ADWIN", x, "real"))
        if len(pending) < self._hold:
            return False
        self._flush()
        return bool(self._s[_DRIFT])

    def _flush(self) -> None:
        """Give the held items to the kernel; the next test is then ``_hold`` items away."""
        pending = self._pending
        held = len(pending)
        if held:
            self._hold = _run(self._s, pending, None)
            del pending[:]
            self._n_seen += held

    @property
    def n_seen(self) -> int:
        """Items read since construction or the last :meth:`reset`."""
        return self._n_seen + len(self._pending)

    def _step(self, x: float) -> None:
        self._run(np.array([x]))

    def _run(self, xs: np.ndarray) -> np.ndarray:
        self._flush()
        flags = np.empty(xs.size, dtype=np.uint8)
        self._hold = _run(self._s, xs, flags)
        return flags

    @property
    def drift_detected(self) -> bool:
        """Whether the last item made ADWIN shrink its window."""
        # Held items were read between tests, where ADWIN does not signal.
        return not self._pending and bool(self._s[_DRIFT])

    @property
    def width(self) -> int:
        """Number of items in the window."""
        self._flush()
        return int(self._s[_WIDTH])

    @property
    def estimation(self) -> float:
        """Mean of the window (0 when it is empty)."""
        self._flush()
        width = self._s[_WIDTH]
        return float(self._s[_TOTAL] / width) if width > 0 else 0.0

    @property
    def variance(self) -> float:
        """Sum of squared deviations from the mean, over the window (River's ``variance``)."""
        self._flush()
        return float(self._s[_VARIANCE])

    def _export_state(self) -> dict[str, Any]:
        self._flush()
        levels = int(self._s[_N_LEVELS])
        counts = self._counts()[:levels]
        buckets = self._buckets()
        return {
            **{name: encode_float(self._s[i]) for i, name in enumerate(_SCALARS)},
            "bucket_totals": [buckets[0, i, : counts[i]].tolist() for i in range(levels)],
            "bucket_variances": [buckets[1, i, : counts[i]].tolist() for i in range(levels)],
        }

    def _import_state(self, state: dict[str, Any]) -> None:
        keys = (*_SCALARS, "bucket_totals", "bucket_variances")
        missing = [key for key in keys if key not in state]
        if missing:
            raise ValueError(f"ADWIN.from_state: the saved state lacks {missing}")
        totals, variances = state["bucket_totals"], state["bucket_variances"]
        if len(totals) != len(variances) or len(totals) > _MAX_LEVELS:
            raise ValueError("ADWIN.from_state: bucket_totals and bucket_variances disagree")
        scalars = np.array([decode_float(state[name]) for name in _SCALARS])
        self._s[: len(_SCALARS)] = scalars
        counts, buckets = self._counts(), self._buckets()
        for level, (t, v) in enumerate(zip(totals, variances, strict=True)):
            if len(t) != len(v) or len(t) > self.max_buckets + 1:
                raise ValueError(f"ADWIN.from_state: bucket level {level} is malformed")
            counts[level] = len(t)
            buckets[0, level, : len(t)] = t
            buckets[1, level, : len(v)] = v
        if math.isnan(self._s[_N_LEVELS]) or int(self._s[_N_LEVELS]) != max(len(totals), 1):
            raise ValueError("ADWIN.from_state: n_levels does not match the bucket levels")
        phase = self._s[_PHASE]
        if not (0.0 <= phase < self.clock) or phase != int(phase):
            raise ValueError(
                f"ADWIN.from_state: clock_phase must be an integer in [0, {self.clock})"
            )
        self._hold = min(self.clock - int(phase), _MAX_HELD)
