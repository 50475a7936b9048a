"""The result of one two-sample statistic: a test (with a p-value) or a distance."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class StatResult:
    """One statistic comparing a reference and a current sample.

    ``p_value`` is ``None`` for distances; ``threshold`` is the significance level for a
    test and the cut-off for a distance. ``drifted`` is the verdict of this statistic alone,
    except for the statistic that decides a column's verdict: that one carries the column's
    verdict, and its ``p_adjusted`` (the p-value after the multiple-testing correction, which
    is what was compared with the threshold). A statistic computed from quantile sketches
    (:mod:`opsloop.data.drift.sketched`) carries the intervals that hold the exact
    statistic and p-values (``statistic_bounds``, ``p_value_bounds``, ``p_adjusted_bounds``);
    they are ``None``, and left out of :meth:`to_dict`, for exact statistics.

    >>> StatResult("psi", 0.31, None, 0.2, True).to_dict()["drifted"]
    True
    """

    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    p_adjusted: float | None = None
    statistic_bounds: tuple[float, float] | None = None
    p_value_bounds: tuple[float, float] | None = None
    p_adjusted_bounds: tuple[float, float] | None = None

    @property
    def is_test(self) -> bool:
        """Whether this statistic is a hypothesis test (has a p-value)."""
        return self.p_value is not None

    def to_dict(self) -> dict:
        """A JSON-safe dictionary (non-finite numbers become ``None``)."""
        out = asdict(self)
        for key in ("statistic", "p_value", "p_adjusted"):
            value = out[key]
            if value is not None and not math.isfinite(value):
                out[key] = None
        for key in ("statistic_bounds", "p_value_bounds", "p_adjusted_bounds"):
            if out[key] is None:
                del out[key]
            else:
                out[key] = [v if math.isfinite(v) else None for v in out[key]]
        return out


def verdict(test: str, statistic: float, p_value: float | None, threshold: float) -> StatResult:
    """Build a :class:`StatResult`, deciding drift by p-value or by distance.

    >>> verdict("ks", 0.1, 0.01, 0.05).drifted
    True
    >>> verdict("js", 0.05, None, 0.1).drifted
    False
    """
    if p_value is None:
        drifted = bool(statistic >= threshold)
    else:
        drifted = bool(p_value < threshold)
    return StatResult(
        test,
        float(statistic),
        None if p_value is None else float(p_value),
        float(threshold),
        drifted,
    )
