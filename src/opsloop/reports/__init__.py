"""Layer 2: layer-1 results rendered for people, as standalone HTML files and notebook tables.

>>> from opsloop.reports import DriftReport, drift_report
>>> DriftReport.__mro__[1].__name__
'DriftResult'
"""

from opsloop.reports.drift import DriftReport, drift_report

__all__ = ["DriftReport", "drift_report"]
