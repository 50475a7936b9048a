"""What the funnel decided about every column, and how many columns each step let through.

:class:`SelectionReport` is the list for the conversation with the people who know the data:
for each column the step that dropped it, the statistic and threshold that decided, and the
column it was redundant with; plus the funnel's counts per step (1000 -> 600 -> 350 -> ...).

>>> report = SelectionReport(
...     columns=(
...         ColumnDecision("a", "numeric", True, null_fraction=0.0),
...         ColumnDecision("b", "numeric", False, step="null_fraction",
...                        statistic="null_fraction", value=0.9, threshold=0.8,
...                        null_fraction=0.9, reason="90% missing"),
...     ),
...     steps=(StepSummary("null_fraction", 2, 1, 0.0),),
...     n_rows=10,
... )
>>> report.counts, report.kept, report["b"].step
([2, 1], ['a'], 'null_fraction')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

#: The columns of :meth:`SelectionReport.to_frame`, in order.
FRAME_COLUMNS = (
    "column",
    "kind",
    "kept",
    "step",
    "statistic",
    "value",
    "threshold",
    "redundant_with",
    "reason",
    "judged",
    "null_fraction",
    "top_share",
    "relevance",
    "importance",
)


def _plain(value: float | None) -> float | None:
    """A JSON-safe float: ``None`` for missing or non-finite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Drop:
    """One column dropped by one step: the statistic that decided and its threshold.

    >>> Drop("x2", "numeric_redundancy", "pearson_r", 0.99, 0.95, "x1").redundant_with
    'x1'
    """

    column: str
    step: str
    statistic: str
    value: float | None
    threshold: float | None
    redundant_with: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class ColumnDecision:
    """The funnel's verdict on one column and the measurements taken on the way.

    ``step``, ``statistic``, ``value``, ``threshold`` and ``redundant_with`` describe the
    drop (all ``None`` for a kept column). ``judged`` is ``False`` for a column that passed
    every step it could be measured by but that a step reading the target could not
    measure (text): it is not kept, and ``reason`` says which steps could not judge it.
    ``null_fraction``, ``top_share``, ``relevance`` and ``importance`` are what the steps
    measured, ``None`` where a step did not measure this column (it was dropped before, or
    the step was not configured).

    >>> ColumnDecision("age", "numeric", True, relevance=12.5).to_dict()["relevance"]
    12.5
    """

    column: str
    kind: str
    kept: bool
    step: str | None = None
    statistic: str | None = None
    value: float | None = None
    threshold: float | None = None
    redundant_with: str | None = None
    reason: str = ""
    judged: bool = True
    null_fraction: float | None = None
    top_share: float | None = None
    relevance: float | None = None
    importance: float | None = None

    def to_dict(self) -> dict:
        """A JSON-safe dictionary (non-finite numbers become ``None``).

        >>> ColumnDecision("x", "numeric", False, value=float("nan")).to_dict()["value"] is None
        True
        """
        out = asdict(self)
        for key in ("value", "threshold", "null_fraction", "top_share", "relevance", "importance"):
            out[key] = _plain(out[key])
        return out


@dataclass(frozen=True)
class StepSummary:
    """How many columns entered a step and how many it dropped, and how long it took.

    >>> StepSummary("near_zero_variance", 600, 250, 0.4).n_out
    350
    """

    step: str
    n_in: int
    n_dropped: int
    seconds: float
    description: str = ""

    @property
    def n_out(self) -> int:
        """Columns that passed the step."""
        return self.n_in - self.n_dropped

    def to_dict(self) -> dict:
        """A JSON-safe dictionary, ``n_out`` included.

        >>> StepSummary("relevance", 5, 2, 0.5).to_dict()["n_out"]
        3
        """
        return {**asdict(self), "n_out": self.n_out, "seconds": float(self.seconds)}


@dataclass(frozen=True)
class SelectionReport:
    """Every column's decision, in input order, and one summary per step, in funnel order.

    >>> report = SelectionReport(
    ...     columns=(ColumnDecision("a", "numeric", True),),
    ...     steps=(StepSummary("null_fraction", 1, 0, 0.0),),
    ...     n_rows=3,
    ... )
    >>> report.to_frame()[["column", "kept"]].to_dict("records")
    [{'column': 'a', 'kept': True}]
    """

    columns: tuple[ColumnDecision, ...]
    steps: tuple[StepSummary, ...]
    n_rows: int
    target: str | None = None
    task: str | None = None

    @property
    def counts(self) -> list[int]:
        """Columns before the first step, then after each step (the funnel's widths).

        >>> SelectionReport((), (StepSummary("a", 4, 1, 0.0),), 2).counts
        [4, 3]
        """
        if not self.steps:
            return [len(self.columns)]
        return [self.steps[0].n_in, *(s.n_out for s in self.steps)]

    @property
    def kept(self) -> list[str]:
        """The columns that passed every step, in input order.

        >>> SelectionReport((ColumnDecision("a", "numeric", True),), (), 1).kept
        ['a']
        """
        return [c.column for c in self.columns if c.kept]

    @property
    def dropped(self) -> list[str]:
        """The columns some step dropped, in input order.

        >>> SelectionReport((ColumnDecision("a", "numeric", True),), (), 1).dropped
        []
        """
        return [c.column for c in self.columns if not c.kept and c.judged]

    @property
    def not_judged(self) -> list[str]:
        """The columns no step reading the target could measure (text), in input order.

        >>> SelectionReport((ColumnDecision("t", "text", False, judged=False),), (), 1).not_judged
        ['t']
        """
        return [c.column for c in self.columns if not c.judged]

    def dropped_by(self, step: str) -> list[str]:
        """The columns that ``step`` dropped, in input order.

        >>> SelectionReport((ColumnDecision("a", "numeric", True),), (), 1).dropped_by("x")
        []
        """
        return [c.column for c in self.columns if c.step == step]

    def __getitem__(self, column: str) -> ColumnDecision:
        for decision in self.columns:
            if decision.column == column:
                return decision
        raise KeyError(f"no column {column!r} in the selection report")

    def __len__(self) -> int:
        return len(self.columns)

    def to_frame(self) -> pd.DataFrame:
        """One row per column (see :data:`FRAME_COLUMNS`), in input order.

        >>> SelectionReport((ColumnDecision("a", "numeric", True),), (), 1).to_frame().shape
        (1, 14)
        """
        rows = [c.to_dict() for c in self.columns]
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def steps_frame(self) -> pd.DataFrame:
        """One row per step: columns in, dropped, out, and seconds.

        >>> report = SelectionReport((), (StepSummary("relevance", 5, 2, 0.1),), 9)
        >>> report.steps_frame()["n_out"].tolist()
        [3]
        """
        rows = [s.to_dict() for s in self.steps]
        return pd.DataFrame(
            rows, columns=["step", "description", "n_in", "n_dropped", "n_out", "seconds"]
        )

    def to_dict(self) -> dict:
        """A JSON-safe dictionary of the whole report.

        >>> SelectionReport((), (), 0).to_dict()["counts"]
        [0]
        """
        return {
            "n_rows": int(self.n_rows),
            "target": self.target,
            "task": self.task,
            "counts": self.counts,
            "steps": [s.to_dict() for s in self.steps],
            "not_judged": self.not_judged,
            "columns": [c.to_dict() for c in self.columns],
        }
