"""HDDDM, Hellinger distance drift detection (Ditzler & Polikar 2011), on feature batches.

Unsupervised: it watches the distribution of the inputs, not the model's errors. Items are
gathered into batches of ``batch_size``; each batch's histogram is compared with the
histogram of everything since the last change (the reference), by the Hellinger distance
averaged over features. What is tested is the *change* of that distance from one batch to
the next, against an adaptive threshold learned from the earlier changes since the last
detection. On a detection the batch that triggered it becomes the new reference.

River has no HDDDM; this follows the paper, with choices it leaves open made explicit:

* histograms have ``n_bins`` equal-width bins (``floor(sqrt(batch_size))`` by default, as
  in the paper) spanning the first reference batch of each feature; later values outside
  that span fall in the end bins;
* the distance per feature is :math:`\\sqrt{\\sum_i (\\sqrt{p_i} - \\sqrt{q_i})^2}` with
  :math:`p, q` normalised counts (range [0, √2], as in the paper), averaged over features;
* a batch is tested once at least two earlier distance changes exist since the last start.

Batches are processed one at a time (each with vectorised numpy) because every decision
changes the reference that the next batch is compared with.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import numpy as np
from scipy import stats

from opsloop.detect.base import DetectionResult, ScalarDetector, decode_float, encode_float
from opsloop.detect.validation import positive_int, real_in


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, dof: int) -> float:
    return float(stats.t.ppf(q, dof))


def _hellinger(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Hellinger distance (paper's scaling, no 1/sqrt(2)) per row of two count matrices."""
    p = reference / reference.sum(axis=1, keepdims=True)
    q = current / current.sum(axis=1, keepdims=True)
    return np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(axis=1))


class HDDDM(ScalarDetector):
    r"""Hellinger distance drift detection: flags a batch whose distance jump is unusual.

    For batch :math:`t` after the last change at :math:`\lambda`, with distance
    :math:`\delta_t` to the reference and :math:`\epsilon_t = |\delta_t - \delta_{t-1}|`, the
    threshold from the earlier :math:`k` values of :math:`\epsilon` (mean
    :math:`\hat\epsilon`, standard deviation :math:`\hat\sigma`) is

    * :math:`\hat\epsilon + t_{1-\alpha/2, k-1} \, \hat\sigma / \sqrt{k}` (default), or
    * :math:`\hat\epsilon + \gamma \hat\sigma` when ``gamma`` is given,

    and the batch signals drift when :math:`\epsilon_t` exceeds it. Drift is signalled at the
    item that completes the batch.

    Input: finite real values, one per item (``update_many`` of a 1-D array) or one row of
    ``n_features`` values per item (a 2-D array); the number of features is fixed by the
    first item.

    Parameters
    ----------
    batch_size
        Items per batch.
    n_bins
        Histogram bins per feature; ``None`` for ``floor(sqrt(batch_size))``.
    alpha
        Significance of the t-statistic threshold.
    gamma
        Use :math:`\hat\epsilon + \gamma \hat\sigma` instead of the t-statistic threshold.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> stream = np.concatenate([rng.normal(0, 1, 3000), rng.normal(2, 1, 1000)])
    >>> HDDDM(batch_size=200, gamma=3.0).update_many(stream).drift_indices.tolist()
    [3199]

    References
    ----------
    Gregory Ditzler, Robi Polikar. Hellinger Distance Based Drift Detection for Nonstationary
    Environments. IEEE Symposium on Computational Intelligence in Dynamic and Uncertain
    Environments (CIDUE), 2011, pp. 41-48.
    """

    input_rule = "real"

    def __init__(
        self,
        batch_size: int = 100,
        n_bins: int | None = None,
        alpha: float = 0.05,
        gamma: float | None = None,
    ) -> None:
        self.batch_size = positive_int("HDDDM", "batch_size", batch_size, minimum=2)
        self.n_bins = None if n_bins is None else positive_int("HDDDM", "n_bins", n_bins)
        self.alpha = real_in(
            "HDDDM", "alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.gamma = None if gamma is None else real_in("HDDDM", "gamma", gamma, low=0.0)
        self._bins = self.n_bins or max(math.isqrt(self.batch_size), 1)
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> HDDDM(batch_size=50).get_params()["batch_size"]
        50
        """
        return {
            "batch_size": self.batch_size,
            "n_bins": self.n_bins,
            "alpha": self.alpha,
            "gamma": self.gamma,
        }

    # -- state ---------------------------------------------------------------------------------

    def _start_afresh(self) -> None:
        self._n_features: int | None = None
        self._buffer = np.empty((0, 0))
        self._filled = 0
        self._lows: np.ndarray | None = None
        self._widths: np.ndarray | None = None
        self._reference: np.ndarray | None = None
        self._last_distance = math.nan
        self._jumps: list[float] = []
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        """Whether the last item completed a batch that signalled drift."""
        return self._drift

    @property
    def n_features(self) -> int | None:
        """Features per item, fixed by the first item (``None`` before it)."""
        return self._n_features

    def _export_state(self) -> dict[str, Any]:
        def rows(array):
            return None if array is None else array.tolist()

        return {
            "n_features": self._n_features,
            "buffer": self._buffer[: self._filled].tolist(),
            "lows": rows(self._lows),
            "widths": rows(self._widths),
            "reference": rows(self._reference),
            "last_distance": encode_float(self._last_distance),
            "jumps": list(self._jumps),
            "drift": self._drift,
        }

    def _import_state(self, state: dict[str, Any]) -> None:
        keys = ("n_features", "buffer", "lows", "widths", "reference", "last_distance", "jumps")
        missing = [key for key in (*keys, "drift") if key not in state]
        if missing:
            raise ValueError(f"HDDDM.from_state: the saved state lacks {missing}")
        if state["n_features"] is not None:
            self._set_features(int(state["n_features"]))
            buffer = np.asarray(state["buffer"], dtype=np.float64).reshape(-1, self._n_features)
            self._buffer[: buffer.shape[0]] = buffer
            self._filled = buffer.shape[0]
        if state["reference"] is not None:
            self._lows = np.asarray(state["lows"], dtype=np.float64)
            self._widths = np.asarray(state["widths"], dtype=np.float64)
            self._reference = np.asarray(state["reference"], dtype=np.float64)
        self._last_distance = decode_float(state["last_distance"])
        self._jumps = [float(v) for v in state["jumps"]]
        self._drift = bool(state["drift"])

    # -- input ---------------------------------------------------------------------------------

    def _set_features(self, n_features: int) -> None:
        self._n_features = n_features
        self._buffer = np.empty((self.batch_size, n_features))

    def _rows(self, xs, name: str, single: bool) -> np.ndarray:
        array = np.asarray(xs)
        if array.dtype.kind not in "biuf":
            raise ValueError(
                f"HDDDM: {name} must hold booleans, integers or floats, got dtype {array.dtype}"
            )
        if single:
            if array.ndim > 1:
                raise ValueError(f"HDDDM: {name} must be a number or a 1-D row of features")
            array = array.reshape(1, -1)
        elif array.ndim == 1:
            array = array.reshape(-1, 1)
        elif array.ndim != 2:
            raise ValueError(
                f"HDDDM: {name} must be a 1-D array or a 2-D (items, features) array, "
                f"got {array.ndim} dimensions"
            )
        array = np.asarray(array, dtype=np.float64)
        expected = self._n_features
        if array.shape[0] and expected is not None and array.shape[1] != expected:
            raise ValueError(
                f"HDDDM: {name} has {array.shape[1]} features per item, the stream has {expected}"
            )
        finite = np.isfinite(array)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise ValueError(
                f"HDDDM: {name} item {row}, feature {col} is {array[row, col]!r}; "
                "values must be finite real numbers"
            )
        return array

    # -- the method ----------------------------------------------------------------------------

    def _histogram(self, batch: np.ndarray) -> np.ndarray:
        bins = self._bins
        scaled = np.floor((batch - self._lows) / self._widths * bins)
        index = np.clip(scaled, 0, bins - 1).astype(np.int64)
        index += np.arange(batch.shape[1]) * bins
        counts = np.bincount(index.ravel(), minlength=batch.shape[1] * bins)
        return counts.reshape(batch.shape[1], bins).astype(np.float64)

    def _restart_reference(self, batch: np.ndarray) -> None:
        low, high = batch.min(axis=0), batch.max(axis=0)
        flat = high == low
        self._lows = np.where(flat, low - 0.5, low)
        self._widths = np.where(flat, 1.0, high - low)
        self._reference = self._histogram(batch)
        self._last_distance = math.nan
        self._jumps = []

    def _threshold(self) -> float:
        jumps = np.asarray(self._jumps)
        mean, spread = float(jumps.mean()), float(jumps.std(ddof=1))
        if self.gamma is not None:
            return mean + self.gamma * spread
        k = jumps.size
        return mean + _t_quantile(1.0 - self.alpha / 2, k - 1) * spread / math.sqrt(k)

    def _close_batch(self, batch: np.ndarray) -> bool:
        if self._reference is None:
            self._restart_reference(batch)
            return False
        current = self._histogram(batch)
        distance = float(_hellinger(self._reference, current).mean())
        drift = False
        if not math.isnan(self._last_distance):
            jump = abs(distance - self._last_distance)
            drift = len(self._jumps) >= 2 and jump > self._threshold()
            if not drift:
                self._jumps.append(jump)
        if drift:
            self._restart_reference(batch)
        else:
            self._reference += current
            self._last_distance = distance
        return drift

    def _feed(self, rows: np.ndarray) -> np.ndarray:
        if self._n_features is None:
            self._set_features(rows.shape[1])
        flags = np.zeros(rows.shape[0], dtype=np.uint8)
        at = 0
        while at < rows.shape[0]:
            take = min(self.batch_size - self._filled, rows.shape[0] - at)
            self._buffer[self._filled : self._filled + take] = rows[at : at + take]
            self._filled += take
            at += take
            self._drift = False
            if self._filled == self.batch_size:
                self._filled = 0
                self._drift = self._close_batch(self._buffer.copy())
                flags[at - 1] = 1 if self._drift else 0
        return flags

    def update(self, x) -> bool:
        """Read one item (a number, or a row of features); return whether drift is signalled."""
        if isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_):
            x = float(x)
        rows = self._rows(x, "x", single=True)
        self._feed(rows)
        self._n_seen += 1
        return self._drift

    def update_many(self, xs) -> DetectionResult:
        """Read a 1-D array (one feature) or a 2-D array (items, features), in order."""
        rows = self._rows(xs, "xs", single=False)
        start = self._n_seen
        if rows.shape[0] == 0:
            return DetectionResult.empty(self.name, start)
        flags = self._feed(rows)
        self._n_seen += rows.shape[0]
        return DetectionResult.from_flags(self.name, start, flags)

    def _step(self, x: float) -> None:
        self._feed(np.array([[x]]))

    def _run(self, xs: np.ndarray) -> np.ndarray:
        return self._feed(xs.reshape(-1, 1))

    @property
    def distances(self) -> dict[str, Any]:
        """The last batch's distance and the distance jumps since the last change.

        >>> HDDDM().distances
        {'last_distance': nan, 'jumps': []}
        """
        return {"last_distance": self._last_distance, "jumps": list(self._jumps)}
