"""Reports written together share one plotly.min.js beside them; a report written alone keeps
plotly.js inside it."""

import re

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from opsloop.analysis import error_analysis
from opsloop.data.selection import FeatureFunnel, NullFraction
from opsloop.reports import drift_report
from opsloop.reports.analysis import AnalysisReport
from opsloop.reports.selection import selection_report
from opsloop.reports.standalone import PLOTLY_FILE

LIBRARY_START = get_plotlyjs()[:2000]


def reports():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b"], 300)})
    drift = drift_report(frame, frame.assign(x=frame["x"] + 1))
    truth = rng.integers(0, 2, 300)
    analysis = AnalysisReport(
        errors=error_analysis(truth, truth ^ (rng.random(300) < 0.2), {"g": frame["c"]}, hlp=0.1)
    )
    funnel = FeatureFunnel(steps=[NullFraction()]).fit(frame.assign(empty=np.nan))
    return {"drift": drift, "analysis": analysis, "selection": selection_report(funnel)}


def scripts(page: str) -> list[str]:
    return re.findall(r"<script[^>]*src=\"([^\"]*)\"", page)


def test_reports_written_beside_share_one_library(tmp_path):
    written = {
        name: report.to_html(tmp_path / f"{name}.html", plotly="beside")
        for name, report in reports().items()
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "analysis.html",
        "drift.html",
        PLOTLY_FILE,
        "selection.html",
    ]
    assert (tmp_path / PLOTLY_FILE).read_text(encoding="utf-8") == get_plotlyjs()
    for path in written.values():
        page = path.read_text(encoding="utf-8")
        # One relative reference, loaded before the figures' scripts, and no inline copy.
        assert scripts(page) == [PLOTLY_FILE]
        assert page.index(PLOTLY_FILE) < page.index("Plotly.newPlot")
        assert LIBRARY_START not in page
        assert path.stat().st_size < 200_000
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) < len(get_plotlyjs()) + 600_000


def test_a_report_written_alone_stays_standalone_by_default(tmp_path):
    for name, report in reports().items():
        page = report.to_html(tmp_path / f"{name}.html").read_text(encoding="utf-8")
        assert scripts(page) == [] and page.count(LIBRARY_START) == 1
    assert not (tmp_path / PLOTLY_FILE).exists()


def test_a_stale_library_beside_is_replaced(tmp_path):
    (tmp_path / PLOTLY_FILE).write_text("/* an older plotly.js */", encoding="utf-8")
    reports()["drift"].to_html(tmp_path / "drift.html", plotly="beside")
    assert (tmp_path / PLOTLY_FILE).read_text(encoding="utf-8") == get_plotlyjs()


def test_a_page_without_figures_needs_no_library(tmp_path):
    frame = pd.DataFrame({"c": ["a"] * 5})
    AnalysisReport().to_html(tmp_path / "empty.html", plotly="beside")
    drift_report(frame, frame.assign(c=None)).to_html(tmp_path / "skipped.html", plotly="beside")
    assert not (tmp_path / PLOTLY_FILE).exists()


@pytest.mark.parametrize("name", ["drift", "analysis", "selection"])
def test_an_unknown_mode_names_the_argument(tmp_path, name):
    with pytest.raises(
        ValueError, match=r"plotly must be one of \('inline', 'beside'\), got 'cdn'"
    ):
        reports()[name].to_html(tmp_path / "x.html", plotly="cdn")
    assert list(tmp_path.iterdir()) == []
