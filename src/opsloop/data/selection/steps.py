"""What every funnel step shares: its parameters as a frozen dataclass, a check of them, and
:meth:`Step.run`, which looks at the columns still in the funnel and returns the ones to drop.

A step never changes the data; it returns a :class:`StepResult`, the drops (each with the
statistic and threshold that decided) and the values it measured on the columns it kept, for
the report.

>>> from opsloop.data.selection.nulls import NullFraction
>>> NullFraction(threshold=0.5).name, NullFraction.needs_target
('null_fraction', False)
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from opsloop.data.selection.columns import CATEGORICAL, NUMERIC, TEXT, FeatureColumns
from opsloop.data.selection.report import Drop
from opsloop.data.selection.target import Target


@dataclass(frozen=True)
class StepResult:
    """The columns a step drops and what it measured: ``measured[measure][column]``.

    ``measure`` is one of the report's per-column fields (``null_fraction``, ``top_share``,
    ``relevance``, ``importance``).

    >>> StepResult().drops
    ()
    """

    drops: tuple[Drop, ...] = ()
    measured: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Step(ABC):
    """Base of the funnel's steps; subclasses set ``name`` and implement :meth:`run`.

    >>> from opsloop.data.selection.nulls import NullFraction
    >>> NullFraction().name
    'null_fraction'
    """

    name: ClassVar[str] = "step"
    #: Whether the step reads the target (``fit`` then needs ``y``).
    needs_target: ClassVar[bool] = False
    #: The kinds of column the step can measure; a column of another kind that a step
    #: reading the target cannot measure is reported as not judged.
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC, CATEGORICAL, TEXT)

    def check(self) -> None:  # noqa: B027 - a step without parameters has nothing to check
        """Raise ``ValueError``/``TypeError`` naming a parameter that breaks its rule.

        >>> from opsloop.data.selection.nulls import NullFraction
        >>> NullFraction().check() is None
        True
        """

    def describe(self) -> str:
        """One line for the report: what the step drops.

        >>> from opsloop.data.selection.nulls import NullFraction
        >>> NullFraction(threshold=0.5).describe()
        'drop columns with more than 50% missing values'
        """
        return self.name

    @abstractmethod
    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        """Decide which of ``active`` to drop (each step's class shows an example)."""


def check_number(
    step: str,
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise when ``value`` is not a real number in the interval, naming step and parameter.

    >>> check_number("null_fraction", "threshold", 1.5, 0.0, 1.0)
    Traceback (most recent call last):
    ...
    ValueError: null_fraction: threshold must be a number in [0, 1], got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise TypeError(f"{step}: {name} must be a number, got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        left = "(" if low_open else "["
        right = ")" if high_open or math.isinf(high) else "]"
        shown_high = "inf" if math.isinf(high) else f"{high:g}"
        raise ValueError(
            f"{step}: {name} must be a number in {left}{low:g}, {shown_high}{right}, got {value!r}"
        )


def check_count(step: str, name: str, value: object, low: int = 1) -> None:
    """Raise when ``value`` is not an integer >= ``low``.

    >>> check_count("relevance", "k", 0)
    Traceback (most recent call last):
    ...
    ValueError: relevance: k must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{step}: {name} must be an integer >= {low}, got {value!r}")
