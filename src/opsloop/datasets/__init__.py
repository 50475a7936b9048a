"""Generated data that opsloop is tested and demonstrated on; nothing is downloaded.

* :func:`credit`: loan applications from Agrawal et al.'s (1993) population, labelled by one
  of the paper's ten rules, with knobs for covariate, prior and concept shift
  (:class:`CovariateShift`, :class:`PriorShift`, :class:`ConceptShift`), label noise and
  missing cells; :func:`agrawal_default` recomputes a rule's label from a frame.
* :func:`inject_schema_skew`: a copy of a frame with one schema violation.
* :func:`human_labels`: a second labeller whose error rate differs by slice
  (:func:`human_error_rates` gives each row's rate).
* :func:`drift_table`: a generic reference/current table with known shifted columns
  (:class:`ColumnShift`, :class:`DriftTruth`) for drift-test calibration and benchmarks.

>>> from opsloop.datasets import credit, drift_table
>>> credit(100).shape
(100, 14)
"""

from opsloop.datasets.agrawal import agrawal_group_b
from opsloop.datasets.changes import ConceptShift, CovariateShift, PriorShift, regime_probability
from opsloop.datasets.drift_table import (
    BENCHMARK_SHIFTS,
    ColumnShift,
    ColumnTruth,
    DriftTruth,
    drift_table,
)
from opsloop.datasets.human_labels import DEFAULT_ERROR_RATES, human_error_rates, human_labels
from opsloop.datasets.loan_applications import DEFAULT_RULE, agrawal_default, credit
from opsloop.datasets.schema_skew import SKEW_KINDS, inject_schema_skew

__all__ = [
    "BENCHMARK_SHIFTS",
    "DEFAULT_ERROR_RATES",
    "DEFAULT_RULE",
    "SKEW_KINDS",
    "ColumnShift",
    "ColumnTruth",
    "ConceptShift",
    "CovariateShift",
    "DriftTruth",
    "PriorShift",
    "agrawal_default",
    "agrawal_group_b",
    "credit",
    "drift_table",
    "human_error_rates",
    "human_labels",
    "inject_schema_skew",
    "regime_probability",
]
