"""The first step of the funnel: drop columns that are mostly missing.

>>> import pandas as pd
>>> from opsloop.data.selection.columns import prepare_columns
>>> frame = pd.DataFrame({"full": [1.0, 2.0, 3.0, 4.0], "holes": [1.0, None, None, None]})
>>> columns = prepare_columns(frame)
>>> result = NullFraction(threshold=0.5).run(columns, list(frame), None, None)
>>> [(d.column, d.value) for d in result.drops]
[('holes', 0.75)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from opsloop.data.selection.columns import FeatureColumns
from opsloop.data.selection.report import Drop
from opsloop.data.selection.steps import Step, StepResult, check_number
from opsloop.data.selection.target import Target


@dataclass(frozen=True)
class NullFraction(Step):
    """Drop a column whose share of missing values is above ``threshold``.

    ``null fraction = missing rows / rows``; a column is dropped when it is ``> threshold``
    (default 0.8: a column missing in more than four rows of five). A table with no rows is
    refused before any step runs.

    >>> NullFraction().describe()
    'drop columns with more than 80% missing values'
    """

    threshold: float = 0.8
    name: ClassVar[str] = "null_fraction"

    def check(self) -> None:
        check_number(self.name, "threshold", self.threshold, 0.0, 1.0)

    def describe(self) -> str:
        return f"drop columns with more than {self.threshold:.0%} missing values"

    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        fractions = {name: columns.n_null[name] / columns.n_rows for name in active}
        drops = tuple(
            Drop(
                name,
                self.name,
                "null_fraction",
                fraction,
                float(self.threshold),
                reason=f"{fraction:.1%} of rows missing (limit {self.threshold:.0%})",
            )
            for name, fraction in fractions.items()
            if fraction > self.threshold
        )
        return StepResult(drops, {"null_fraction": fractions})
