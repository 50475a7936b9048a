"""How far a binary classifier's probabilities are from the frequencies they claim: the
expected calibration error.

The probabilities are cut into ``bins`` equal-width bins of [0, 1] exactly as
scikit-learn's ``calibration_curve(strategy="uniform")`` cuts them (a probability on an edge
goes to the lower bin), and in each non-empty bin the mean probability is compared with the
share of positives:

    ECE = sum over bins of (rows in the bin / rows) * |share of positives - mean probability|

``max_gap`` is the largest of those per-bin gaps (the maximum calibration error). Naeini,
Cooper and Hauskrecht, *Obtaining well calibrated probabilities using Bayesian binning*,
AAAI 2015.

>>> r = expected_calibration_error([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], bins=2)
>>> round(r.ece, 6), round(r.max_gap, 6), r.counts
(0.175, 0.2, (2, 2))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from opsloop.analysis.labels import as_labels


@dataclass(frozen=True)
class CalibrationError:
    """The expected and maximum calibration error, and each non-empty bin's numbers.

    >>> expected_calibration_error([1, 0], [0.7, 0.2], bins=5).to_dict()["bins"]
    5
    """

    ece: float
    max_gap: float
    bins: int
    counts: tuple[int, ...]
    mean_probability: tuple[float, ...]
    share_positive: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> expected_calibration_error([1, 0], [1.0, 0.0], bins=2).to_dict()["ece"]
        0.0
        """
        return asdict(self)


def expected_calibration_error(
    y_true: Any, y_prob: Any, *, bins: int = 10, pos_label: Any = 1
) -> CalibrationError:
    """The calibration error of ``y_prob``, the predicted probabilities of ``pos_label``.

    >>> expected_calibration_error([1, 1, 0, 0], [0.9, 0.9, 0.9, 0.9], bins=10).ece
    0.4
    """
    truth = as_labels(y_true, "y_true")
    probability = np.asarray(as_labels(y_prob, "y_prob", len(truth)), dtype=np.float64)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    if np.any((probability < 0.0) | (probability > 1.0)):
        raise ValueError("y_prob must hold probabilities in [0, 1]")
    positive = (truth == pos_label).astype(np.float64)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    ids = np.searchsorted(edges[1:-1], probability)
    sums = np.bincount(ids, weights=probability, minlength=bins)
    hits = np.bincount(ids, weights=positive, minlength=bins)
    totals = np.bincount(ids, minlength=bins)
    used = totals != 0
    mean_probability = sums[used] / totals[used]
    share_positive = hits[used] / totals[used]
    gaps = np.abs(share_positive - mean_probability)
    return CalibrationError(
        ece=float(np.sum(totals[used] / len(truth) * gaps)),
        max_gap=float(gaps.max()),
        bins=int(bins),
        counts=tuple(int(c) for c in totals[used]),
        mean_probability=tuple(float(v) for v in mean_probability),
        share_positive=tuple(float(v) for v in share_positive),
    )
