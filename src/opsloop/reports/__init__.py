"""Layer 2: layer-1 results rendered for people, as standalone HTML files and notebook tables.

>>> from opsloop.reports import DriftReport, drift_report
>>> DriftReport.__mro__[1].__name__
'DriftResult'
"""

from opsloop.reports.drift import DriftReport, drift_report
from opsloop.reports.model_analysis import analyze_model

__all__ = ["DriftReport", "analyze_model", "drift_report"]
