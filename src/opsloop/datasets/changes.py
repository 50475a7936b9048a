"""Regime changes that :func:`opsloop.datasets.credit` can inject: the failures monitoring
must catch.

Each change starts at row ``start`` and either switches at once (``width=0``) or phases in
over ``width`` rows: row ``i`` follows the new regime with probability

.. math::

    p(i) = \\min\\left(1, \\max\\left(0, \\frac{i - start}{width}\\right)\\right)

a linear ramp from 0 at ``start`` to 1 at ``start + width`` (abrupt: ``p(i) = [i >= start]``).
Each row then draws once whether it follows the new regime, so the regime is known row by
row and detectors can be scored against it. A linear ramp is used rather than the sigmoid of
River's ``ConceptDriftStream`` because it gives the change exact ends: no row before
``start`` and every row from ``start + width`` on is in the new regime.

* :class:`CovariateShift` moves the features (inflation, an older or younger clientele, a
  new channel mix, a new region mix); the labelling rule stays.
* :class:`PriorShift` moves the default rate to a target while ``P(x | default)`` stays.
* :class:`ConceptShift` swaps the labelling rule for another Agrawal rule; ``P(x)`` stays.

Changes compose: a row may be in several regimes at once. Covariate and concept changes act on
the features and the rule; prior changes act last, by class-conditional redrawing (see
:class:`PriorShift`). Where two changes of the same kind overlap, the later one in the list
wins for that row.

>>> ConceptShift(start=1000, rule=2, width=100).probability(np.array([999, 1050, 2000])).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import KW_ONLY, asdict, dataclass, field

import numpy as np

from opsloop.datasets.agrawal import check_rule
from opsloop.datasets.credit_attributes import category_weights


def regime_probability(positions: np.ndarray, start: int, width: int) -> np.ndarray:
    """Probability that each row position follows a regime starting at ``start`` over ``width``.

    >>> regime_probability(np.arange(5), start=1, width=2).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    >>> regime_probability(np.arange(3), start=1, width=0).tolist()
    [0.0, 1.0, 1.0]
    """
    positions = np.asarray(positions)
    if width == 0:
        return (positions >= start).astype(float)
    return np.clip((positions - start) / width, 0.0, 1.0)


def _check_window(kind: str, start: object, width: object) -> None:
    for name, value in (("start", start), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{kind}.{name} must be an integer >= 0, got {value!r}")


def _check_positive(kind: str, name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number)
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        raise ValueError(f"{kind}.{name} must be a finite number > 0, got {value!r}")


class _Regime:
    """Shared behaviour of the three changes: when a row is in the new regime."""

    start: int
    width: int
    name: str | None

    kind: str = ""

    def probability(self, positions: np.ndarray) -> np.ndarray:
        """Probability that each row position follows this change's new regime."""
        return regime_probability(positions, self.start, self.width)

    def to_dict(self) -> dict:
        """The change as JSON-safe parameters, with its ``kind`` first."""
        params = asdict(self)  # type: ignore[call-overload]
        for key, value in params.items():
            if isinstance(value, Mapping):
                params[key] = {str(k): float(v) for k, v in value.items()}
            elif isinstance(value, tuple):
                params[key] = [int(v) for v in value]
        return {"kind": self.kind, **params}


@dataclass(frozen=True)
class CovariateShift(_Regime):
    """Features move from row ``start`` on while the labelling rule stays.

    Parameters (each left at its default changes nothing):

    * ``salary_scale``: salaries are multiplied by it (inflation: 1.1); commission then
      follows Agrawal's rule on the new salary (0 at or above 75,000).
    * ``loan_scale``: loan amounts are multiplied by it.
    * ``age_range``: ``(low, high)``, ages drawn uniformly from these integers instead of
      20-80 (an older clientele: ``(45, 80)``).
    * ``device_mix``: ``{device: weight}``, the channel mix for every age in the new regime
      (devices left out get weight 0), replacing the age-dependent mix.
    * ``region_mix``: ``{region: weight}``, the region (Agrawal zipcode) mix, replacing the
      uniform one; house values follow the region as usual.

    >>> shift = CovariateShift(5000, width=1000, salary_scale=1.2, device_mix={"mobile": 1})
    >>> shift.kind, shift.start, shift.width
    ('covariate_shift', 5000, 1000)
    >>> shift.to_dict()["device_mix"]
    {'mobile': 1.0}
    """

    start: int
    width: int = 0
    _: KW_ONLY
    salary_scale: float = 1.0
    loan_scale: float = 1.0
    age_range: tuple[int, int] | None = None
    device_mix: Mapping[str, float] | None = field(default=None, hash=False)
    region_mix: Mapping[str, float] | None = field(default=None, hash=False)
    name: str | None = None

    kind = "covariate_shift"

    def __post_init__(self) -> None:
        _check_window("CovariateShift", self.start, self.width)
        _check_positive("CovariateShift", "salary_scale", self.salary_scale)
        _check_positive("CovariateShift", "loan_scale", self.loan_scale)
        if self.age_range is not None:
            ages = self.age_range
            if (
                not isinstance(ages, tuple | list)
                or len(ages) != 2
                or not all(
                    isinstance(a, int | np.integer) and not isinstance(a, bool) for a in ages
                )
                or not 0 <= ages[0] <= ages[1]
            ):
                raise ValueError(
                    f"CovariateShift.age_range must be two integers 0 <= low <= high, got {ages!r}"
                )
            # a tuple keeps the shift hashable and comparable whatever sequence was given
            object.__setattr__(self, "age_range", (int(ages[0]), int(ages[1])))
        for name, column in (("device_mix", "device"), ("region_mix", "region")):
            mix = getattr(self, name)
            if mix is None:
                continue
            if not isinstance(mix, Mapping):
                raise TypeError(
                    f"CovariateShift.{name} must map {column} names to weights, got {mix!r}"
                )
            category_weights(column, dict(mix))


@dataclass(frozen=True)
class PriorShift(_Regime):
    """The default rate moves to ``default_rate`` from row ``start`` on; ``P(x | default)`` stays.

    Method: each row in the new regime draws the label it should carry, 1 with probability
    ``default_rate``. A row whose generated label differs is generated again (all its
    features, its rule and its label noise, under the other changes active at its position)
    until the label matches. This is rejection sampling from the joint distribution conditioned
    on the label, as Agrawal's ``balance classes`` option does, so the features of a class
    keep exactly the distribution they had. The condition is on the label in the frame (after
    label noise). A redrawn row costs about ``1 / P(label)`` draws: cheap for the default rule
    (about half the rows default), slow for a rare label without noise (rule 10 without noise
    defaults 0.2% of rows; moving 500,000 such rows to a 30% rate takes about 15 s).

    >>> PriorShift(2000, default_rate=0.1).default_rate
    0.1
    """

    start: int
    width: int = 0
    _: KW_ONLY
    default_rate: float
    name: str | None = None

    kind = "prior_shift"

    def __post_init__(self) -> None:
        _check_window("PriorShift", self.start, self.width)
        rate = self.default_rate
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float | np.number)
            or not 0.0 <= float(rate) <= 1.0
        ):
            raise ValueError(f"PriorShift.default_rate must be in [0, 1], got {rate!r}")


@dataclass(frozen=True)
class ConceptShift(_Regime):
    """The labelling rule becomes Agrawal rule ``rule`` from row ``start`` on; ``P(x)`` stays.

    The features of every row are drawn exactly as without the change (the same numbers, not
    only the same distribution); only the rule that turns them into a label differs.

    >>> ConceptShift(3000, rule=7).rule
    7
    """

    start: int
    width: int = 0
    _: KW_ONLY
    rule: int
    name: str | None = None

    kind = "concept_shift"

    def __post_init__(self) -> None:
        _check_window("ConceptShift", self.start, self.width)
        check_rule(self.rule, "ConceptShift.rule")


Change = CovariateShift | PriorShift | ConceptShift
