"""Feature selection: from thousands of columns to the few that matter, with a record of every
drop.

* :class:`FeatureFunnel`: a scikit-learn transformer running the steps in order;
  ``report_`` says, for every column, which step dropped it and why;
* the steps: :class:`NullFraction`, :class:`NearZeroVariance`, :class:`NumericRedundancy`,
  :class:`CategoricalRedundancy`, :class:`Relevance`, :class:`ModelImportance`;
* :func:`null_fractions`: each column's null fraction and distinct count computed inside a
  database (SQLite, DuckDB, PostgreSQL); :meth:`FeatureFunnel.fit_table` starts the funnel
  there and :func:`read_columns` loads the chosen columns.

>>> from opsloop.data.selection import FeatureFunnel, Relevance
>>> FeatureFunnel(steps=[Relevance(k=5)]).steps[0].k
5
"""

from opsloop.data.selection.database import NullFractions, null_fractions, read_columns
from opsloop.data.selection.funnel import FeatureFunnel, default_steps
from opsloop.data.selection.importance import ModelImportance
from opsloop.data.selection.nulls import NullFraction
from opsloop.data.selection.redundancy import CategoricalRedundancy, NumericRedundancy
from opsloop.data.selection.relevance import Relevance
from opsloop.data.selection.report import ColumnDecision, Drop, SelectionReport, StepSummary
from opsloop.data.selection.steps import Step, StepResult
from opsloop.data.selection.variance import NearZeroVariance

__all__ = [
    "CategoricalRedundancy",
    "ColumnDecision",
    "Drop",
    "FeatureFunnel",
    "ModelImportance",
    "NearZeroVariance",
    "NullFraction",
    "NullFractions",
    "NumericRedundancy",
    "Relevance",
    "SelectionReport",
    "Step",
    "StepResult",
    "StepSummary",
    "default_steps",
    "null_fractions",
    "read_columns",
]
