"""MD3, margin density drift detection (Sethi & Kantardzic 2015), from a classifier's margins.

Unsupervised and model-dependent: it needs no labels, only the classifier's margin for each
input. The margin density is the share of inputs that fall inside the classifier's margin
(where it is unsure); a change in that share signals that the inputs moved relative to the
decision boundary, the kind of change that can hurt the model. The paper then asks for labels
to confirm the change; this detector is the unsupervised signal that triggers that request.

River has no MD3; this follows the paper: the density is tracked with exponential forgetting
``MD_t = lambda * MD_{t-1} + (1 - lambda) * [|margin_t| <= width]`` with
``lambda = (chunk_size - 1) / chunk_size``, and drift is signalled when
``|MD_t - MD_ref| > sensitivity * sigma_ref``. The reference (``MD_ref``, ``sigma_ref``) is
given, or learnt from the first ``chunk_size`` margins after each start: ``MD_ref`` is their
density and ``sigma_ref`` the standard deviation (``ddof=1``) of the densities of its
``n_folds`` equal parts (the paper uses the folds of a cross-validation on the training
data), floored at ``1 / fold size``, the resolution of one fold's density, so that a chunk
with identical folds does not make every later difference a drift.

The forgetting recursion and the restarts after each detection are sequential, so the loop
is a numba kernel shared by ``update`` and ``update_many``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from opsloop.detect.base import SlotDetector
from opsloop.detect.validation import positive_int, real_in

_DRIFT, _N, _REF, _SIGMA, _DENSITY = range(5)
# Per-fold counts of in-margin items during learning follow the scalar slots.
_FOLDS = 5


@numba.njit(cache=True, error_model="numpy")
def _run(s, xs, width, forget, sensitivity, chunk_size, n_folds, fixed_ref, fixed_sigma, flags):
    fold_size = chunk_size // n_folds
    for i in range(xs.size):
        if s[_DRIFT] != 0.0:
            s[:] = 0.0
            s[_REF] = fixed_ref
            s[_SIGMA] = fixed_sigma
            s[_DENSITY] = fixed_ref
        inside = 1.0 if abs(xs[i]) <= width else 0.0
        s[_N] += 1.0
        n = int(s[_N])
        if math.isnan(s[_REF]):
            # Learning the reference from the first chunk: count in-margin items per fold.
            fold = min((n - 1) // fold_size, n_folds - 1)
            s[_FOLDS + fold] += inside
            if n == chunk_size:
                total = 0.0
                for f in range(n_folds):
                    total += s[_FOLDS + f]
                reference = total / chunk_size
                mean = 0.0
                for f in range(n_folds):
                    size = fold_size if f < n_folds - 1 else chunk_size - fold_size * (n_folds - 1)
                    mean += s[_FOLDS + f] / size
                mean /= n_folds
                spread = 0.0
                for f in range(n_folds):
                    size = fold_size if f < n_folds - 1 else chunk_size - fold_size * (n_folds - 1)
                    spread += (s[_FOLDS + f] / size - mean) ** 2
                sigma = math.sqrt(spread / (n_folds - 1))
                s[_REF] = reference
                s[_SIGMA] = max(sigma, 1.0 / fold_size)
                s[_DENSITY] = reference
            flags[i] = 0
            continue
        density = forget * s[_DENSITY] + (1.0 - forget) * inside
        s[_DENSITY] = density
        hit = abs(density - s[_REF]) > sensitivity * s[_SIGMA]
        s[_DRIFT] = 1.0 if hit else 0.0
        flags[i] = 1 if hit else 0


class MD3(SlotDetector):
    r"""Margin density drift detection: signals when the share of uncertain inputs changes.

    Input: one margin per item, a signed distance to the decision boundary (an SVM's
    ``decision_function``) or a probability margin (see :meth:`margin_from_proba`); an
    item is *in the margin* when :math:`|x| \le` ``margin_width``.

    Parameters
    ----------
    margin_width
        Half-width of the margin: 1 for an SVM's decision function; for the probability
        margins of :meth:`margin_from_proba`, 0.5 puts a binary classifier's inputs with a
        positive-class probability between 0.25 and 0.75 in the margin.
    sensitivity
        :math:`\Theta`, in reference standard deviations.
    chunk_size
        :math:`N`: forgetting factor :math:`(N - 1) / N` and the size of the reference chunk.
    n_folds
        Parts of the reference chunk whose densities give ``sigma_ref`` (2 to 5).
    reference_density
        ``MD_ref`` when known (for example from cross-validation on the training data);
        ``None`` to learn it from the first chunk.
    reference_std
        ``sigma_ref`` when known; ``None`` to learn it from the first chunk.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> margins = np.concatenate([rng.normal(2.0, 1.0, 3000), rng.normal(0.8, 1.0, 2000)])
    >>> MD3().update_many(margins).drift_indices.tolist()
    [3104]

    References
    ----------
    Tegjyot Singh Sethi, Mehmed Kantardzic. Don't Pay for Validation: Detecting Drifts from
    Unlabeled Data Using Margin Density. Procedia Computer Science 53, 2015, pp. 103-112.
    """

    input_rule = "real"
    _slots: ClassVar[tuple[str, ...]] = (
        "drift",
        "n",
        "reference_density",
        "reference_std",
        "density",
        *(f"fold_{i}_in_margin" for i in range(_FOLDS)),
    )

    def __init__(
        self,
        margin_width: float = 1.0,
        sensitivity: float = 2.0,
        chunk_size: int = 500,
        n_folds: int = 5,
        reference_density: float | None = None,
        reference_std: float | None = None,
    ) -> None:
        self.margin_width = real_in("MD3", "margin_width", margin_width, low=0.0)
        self.sensitivity = real_in("MD3", "sensitivity", sensitivity, low=0.0, low_open=True)
        self.n_folds = positive_int("MD3", "n_folds", n_folds, minimum=2)
        if self.n_folds > _FOLDS:
            raise ValueError(f"MD3: n_folds must be at most {_FOLDS}, got {n_folds!r}")
        self.chunk_size = positive_int("MD3", "chunk_size", chunk_size, minimum=self.n_folds)
        self.reference_density = (
            None
            if reference_density is None
            else real_in("MD3", "reference_density", reference_density, low=0.0, high=1.0)
        )
        self.reference_std = (
            None
            if reference_std is None
            else real_in("MD3", "reference_std", reference_std, low=0.0, low_open=True)
        )
        if (self.reference_density is None) != (self.reference_std is None):
            raise ValueError("MD3: give both reference_density and reference_std, or neither")
        self._init_stream()

    @staticmethod
    def margin_from_proba(proba) -> np.ndarray:
        """Probability margins: ``2 p - 1`` for a 1-D array of positive-class probabilities,
        top probability minus the runner-up for a 2-D ``(items, classes)`` array.

        >>> MD3.margin_from_proba(np.array([0.9, 0.5])).tolist()
        [0.8, 0.0]
        >>> MD3.margin_from_proba(np.array([[0.2, 0.5, 0.3]])).round(3).tolist()
        [0.2]
        """
        array = np.asarray(proba, dtype=np.float64)
        if array.ndim == 1:
            return 2.0 * array - 1.0
        if array.ndim != 2 or array.shape[1] < 2:
            raise ValueError("MD3.margin_from_proba: proba must be 1-D or (items, >= 2 classes)")
        top_two = np.sort(array, axis=1)[:, -2:]
        return top_two[:, 1] - top_two[:, 0]

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> MD3().get_params()["chunk_size"]
        500
        """
        return {
            "margin_width": self.margin_width,
            "sensitivity": self.sensitivity,
            "chunk_size": self.chunk_size,
            "n_folds": self.n_folds,
            "reference_density": self.reference_density,
            "reference_std": self.reference_std,
        }

    def _fixed(self) -> tuple[float, float]:
        if self.reference_density is None:
            return math.nan, math.nan
        return self.reference_density, self.reference_std

    def _initial_slots(self) -> np.ndarray:
        state = np.zeros(len(self._slots))
        state[_REF], state[_SIGMA] = self._fixed()
        state[_DENSITY] = state[_REF]
        return state

    def _start_afresh(self) -> None:
        super()._start_afresh()
        self._args = (
            self.margin_width,
            (self.chunk_size - 1) / self.chunk_size,
            self.sensitivity,
            self.chunk_size,
            self.n_folds,
            *self._fixed(),
        )
        # Reused by ``update`` so that one item costs no allocation.
        self._one = np.empty(1)
        self._flag = np.empty(1, dtype=np.uint8)

    def _step(self, x: float) -> None:
        self._one[0] = x
        _run(self._s, self._one, *self._args, self._flag)

    def _run(self, xs: np.ndarray) -> np.ndarray:
        flags = np.empty(xs.size, dtype=np.uint8)
        _run(self._s, xs, *self._args, flags)
        return flags

    @property
    def density(self) -> float:
        """The current forgetting margin density (``nan`` while the reference is learnt)."""
        return float(self._s[_DENSITY])

    @property
    def reference(self) -> tuple[float, float]:
        """``(MD_ref, sigma_ref)`` in use (``nan`` while being learnt)."""
        return float(self._s[_REF]), float(self._s[_SIGMA])
