"""Layer 2: layer-1 results rendered for people, as standalone HTML files and notebook tables.

>>> import pandas as pd
>>> from opsloop.reports import drift_report
>>> reference = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50, "x": range(100)})
>>> current = pd.DataFrame({"c": ["a"] * 80 + ["b"] * 20, "x": range(100)})
>>> report = drift_report(reference, current, alpha=0.01)
>>> report.n_drifted, report.to_frame()[["column", "test", "drifted"]].values.tolist()
(1, [['c', 'chi2', True], ['x', 'ks', False]])
>>> "<strong>Drift detected: 1 of 2 columns drifted (50%).</strong>" in report._repr_html_()
True
"""

from opsloop.reports.drift import DriftReport, drift_report
from opsloop.reports.model_analysis import analyze_model
from opsloop.reports.robustness import RobustnessReport, robustness_report

__all__ = ["DriftReport", "RobustnessReport", "analyze_model", "drift_report", "robustness_report"]
