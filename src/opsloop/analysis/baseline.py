"""Human-level performance (HLP): the error rate a second labeller reaches, overall and per tag.

HLP is the yardstick of the error analysis: a slice where the model errs at 12% while people
err at 10% has 2 points to gain, one where both err at 12% has none. The same measurement
serves for any other baseline given as labels (a previous model's predictions); a single
number is accepted by :func:`opsloop.analysis.errors.error_analysis` directly.

>>> result = hlp([1, 0, 1, 1], [1, 0, 0, 1])
>>> result.error_rate, result.errors, result.n
(0.25, 1, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from opsloop.analysis.intervals import wilson_interval
from opsloop.analysis.labels import as_labels
from opsloop.analysis.tags import binned_tags, tag_groupings


@dataclass(frozen=True)
class SliceRate:
    """The baseline's error rate within one tag value, with its Wilson interval.

    >>> SliceRate("device", "tv", 4, 1, 0.25, 0.05, 0.7).to_dict()["error_rate"]
    0.25
    """

    tag: str
    value: str
    n: int
    errors: int
    error_rate: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> sorted(SliceRate("t", "v", 1, 0, 0.0, 0.0, 0.8).to_dict())[:3]
        ['ci_high', 'ci_low', 'error_rate']
        """
        return {
            "tag": self.tag,
            "value": self.value,
            "n": int(self.n),
            "errors": int(self.errors),
            "error_rate": float(self.error_rate),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
        }


@dataclass(frozen=True)
class HumanLevel:
    """HLP overall and per tag value (``by_tag``), with Wilson intervals at ``confidence``.

    >>> h = hlp([0, 0, 1, 1], [0, 1, 1, 1], {"device": ["pc", "pc", "tv", "tv"]})
    >>> h.error_rate_for("device", "pc"), h.error_rate_for("device", "radio")
    (0.5, 0.25)
    """

    n: int
    errors: int
    error_rate: float
    ci_low: float
    ci_high: float
    confidence: float
    by_tag: tuple[SliceRate, ...] = ()
    #: ``(tag, bins)`` of each numeric tag cut into quantile bins (see :mod:`.tags`).
    binned: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def error_rate_for(self, tag: str, value: str) -> float:
        """The baseline error rate in ``tag == value``, or the overall rate if not measured.

        >>> HumanLevel(10, 1, 0.1, 0.0, 0.4, 0.95).error_rate_for("any", "slice")
        0.1
        """
        for rate in self.by_tag:
            if rate.tag == tag and rate.value == value:
                return rate.error_rate
        return self.error_rate

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values, per-tag rates as a list of dicts.

        >>> hlp([1, 1], [1, 0]).to_dict()["error_rate"]
        0.5
        """
        return {
            "n": int(self.n),
            "errors": int(self.errors),
            "error_rate": float(self.error_rate),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "confidence": float(self.confidence),
            "by_tag": [rate.to_dict() for rate in self.by_tag],
            "binned": {tag: list(bins) for tag, bins in self.binned},
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per tag value.

        >>> hlp([1, 0], [1, 1], {"g": ["a", "b"]}).to_frame()["error_rate"].tolist()
        [0.0, 1.0]
        """
        columns = ["tag", "value", "n", "errors", "error_rate", "ci_low", "ci_high"]
        return pd.DataFrame([rate.to_dict() for rate in self.by_tag], columns=columns)


def hlp(
    human_labels: Any,
    ground_truth: Any,
    tags: Any = None,
    *,
    bins: int = 5,
    confidence: float = 0.95,
    intersections: bool | Sequence[tuple[str, str]] = False,
) -> HumanLevel:
    """Human-level performance of ``human_labels`` against ``ground_truth``, overall and per tag.

    ``tags`` (optional) is a DataFrame or mapping of tag columns aligned by position; numeric
    tags with more than ``bins`` values are cut into quantile bins, unless they are whole
    numbers with at most 20 values (codes, a slice each; see :mod:`.tags`), and ``binned``
    lists the bins; ``intersections`` also
    measures pairs of tags (``True`` for every pair). Pass another model's predictions as
    ``human_labels`` to use that model as the baseline.

    >>> h = hlp([1, 0, 1, 0], [1, 1, 1, 1], {"g": ["a", "a", "b", "b"]})
    >>> h.error_rate, [r.error_rate for r in h.by_tag]
    (0.5, [0.5, 0.5])
    """
    truth = as_labels(ground_truth, "ground_truth")
    human = as_labels(human_labels, "human_labels", len(truth), "ground_truth")
    wrong = human != truth
    errors = int(wrong.sum())
    low, high = wilson_interval(errors, len(truth), confidence)
    rates: list[SliceRate] = []
    binned: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if tags is not None:
        groupings = tag_groupings(tags, len(truth), bins=bins, intersections=intersections)
        for grouping in groupings:
            n = grouping.counts()
            slice_errors = grouping.counts(wrong)
            lows, highs = wilson_interval(slice_errors, n, confidence)
            rate = slice_errors / n
            columns = zip(grouping.labels, n, slice_errors, rate, lows, highs, strict=True)
            rates.extend(
                SliceRate(grouping.tag, str(v), int(a), int(b), float(c), float(d), float(e))
                for v, a, b, c, d, e in columns
            )
        binned = binned_tags(groupings)
    return HumanLevel(
        n=len(truth),
        errors=errors,
        error_rate=errors / len(truth),
        ci_low=float(low),
        ci_high=float(high),
        confidence=float(confidence),
        by_tag=tuple(rates),
        binned=binned,
    )
