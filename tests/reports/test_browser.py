"""Every HTML report rendered in headless Chromium: plotly draws every figure, the page logs no
error, loads nothing from the network, and the share axes' tick labels read as distinct
percentages. Screenshots are written under the test's tmp dir for a person to look at.

Uses Debian's Chromium (``/usr/bin/chromium``, or ``OPSLOOP_CHROMIUM``) through Playwright.
Without either the tests skip, except in CI (``CI=true``), where they fail.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from opsloop.analysis import error_analysis, explain, residual_analysis
from opsloop.data.selection import FeatureFunnel, NearZeroVariance, NullFraction
from opsloop.reports import drift_report
from opsloop.reports.analysis import AnalysisReport
from opsloop.reports.drift import column_figure
from opsloop.reports.selection import selection_report
from opsloop.reports.standalone import PLOTLY_FILE

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("OPSLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
#: How long a page may take to draw its figures (plotly parses 4.8 MB of script first).
DRAW_TIMEOUT_MS = 60_000


def missing(reason: str):
    """Skip, or fail in CI, where the browser is installed on purpose."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run the browser tests)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (the test extra)")
    if not Path(CHROMIUM).is_file():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


def render(context, path: Path, figures: int, screenshot: Path) -> dict:
    """Open ``path``, wait until plotly has drawn ``figures`` figures, screenshot the page and
    return what the page showed: console errors, network requests, each figure's tick labels."""
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Reports open offline: anything but the page's own files is refused and recorded.
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file://")
            else (requests.append(route.request.url), route.abort())
        ),
    )
    try:
        page.goto(path.resolve().as_uri())
        page.wait_for_function(
            "n => document.querySelectorAll('.js-plotly-plot .plot-container svg.main-svg')"
            ".length >= n",
            arg=figures,
            timeout=DRAW_TIMEOUT_MS,
        )
        shown = page.evaluate(
            """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div => ({
                id: div.id,
                graph: div.classList.contains('plotly-graph-div'),
                containers: div.querySelectorAll('.plot-container').length,
                bars: div.querySelectorAll('.point path, .trace.bars path').length,
                xticks: Array.from(div.querySelectorAll('.xtick text')).map(t => t.textContent),
                yticks: Array.from(div.querySelectorAll('.ytick text')).map(t => t.textContent),
            }))"""
        )
        # A full-page screenshot grows the viewport, and plotly's responsive figures redraw
        # on resize while the capture runs: size the window to the page first, and wait for
        # every figure's redraw to finish.
        height = page.evaluate("() => document.documentElement.scrollHeight")
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.evaluate(
            "() => Promise.all(Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".map(div => Plotly.Plots.resize(div)))"
        )
        overflowing = page.evaluate(
            """() => Array.from(document.querySelectorAll('table, .js-plotly-plot'))
                .filter(el => {
                    const box = el.closest('section, main') || document.body;
                    return el.getBoundingClientRect().right > box.getBoundingClientRect().right + 1;
                })
                .map(el => el.id || el.className || el.tagName)"""
        )
        # plotly draws into the first element with a figure's id.
        duplicates = page.evaluate(
            """() => { const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
                return ids.filter((id, i) => ids.indexOf(id) !== i); }"""
        )
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    return {
        "errors": errors,
        "requests": requests,
        "figures": shown,
        "overflowing": overflowing,
        "duplicate_ids": duplicates,
    }


def drift_frames(seed: int = 0, n: int = 4_000):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")

    def side(shift: float, ages: tuple[int, int], mix: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.integers(*ages, n),
                "salary": rng.lognormal(10.5 + shift, 0.4, n),
                "applied_at": start + pd.to_timedelta(rng.integers(0, 49 * 86_400, n), unit="s"),
                "device": rng.choice(["mobile", "desktop", "tablet"], n, p=mix),
                "purpose": rng.choice(["a new car", "home repairs", "study"], n),
            }
        )

    reference = side(0.0, (20, 81), [0.4, 0.4, 0.2])
    current = side(0.15, (25, 86), [0.7, 0.2, 0.1])
    current.loc[rng.choice(n, 40, replace=False), "age"] = rng.integers(-35, 146, 40)
    return reference, current


def analysis_report(seed: int = 0, n: int = 600) -> AnalysisReport:
    rng = np.random.default_rng(seed)
    group = rng.choice(["north", "south", "east", "west"], n)
    truth = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(group == "west", 0.25, 0.1)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = 2 * x["a"] - x["b"] + rng.normal(0, 0.5, n)
    model = LinearRegression().fit(x, y)
    return AnalysisReport(
        errors=error_analysis(truth, truth ^ wrong, {"region": group}, hlp=0.05),
        residuals=residual_analysis(y.to_numpy(), model.predict(x), x, n_permutations=19),
        explanation=explain(model, x, y, top=2, shapley_rows=0),
        title="analysis in a browser",
    )


def selection(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "constant": np.ones(n),
            "empty": np.where(rng.random(n) < 0.9, np.nan, 1.0),
        }
    )
    return selection_report(FeatureFunnel(steps=[NullFraction(), NearZeroVariance()]).fit(frame))


def figure_count(page_text: str) -> int:
    return page_text.count('class="plotly-graph-div"')


def assert_drawn(shown: dict, expected: int):
    assert shown["errors"] == []
    assert shown["requests"] == []
    # Nothing runs over the edge of its card or the page.
    assert shown["overflowing"] == []
    assert shown["duplicate_ids"] == []
    assert len(shown["figures"]) == expected
    for figure in shown["figures"]:
        assert figure["graph"] and figure["containers"] == 1, figure["id"]
        assert figure["bars"] > 0 or figure["id"].startswith(("ale", "pdp", "residual")), figure


@pytest.mark.parametrize("plotly", ["inline", "beside"])
def test_drift_report_draws_every_column(browser, tmp_path, plotly):
    report = drift_report(*drift_frames())
    path = report.to_html(tmp_path / "drift.html", plotly=plotly)
    expected = sum(column_figure(c) is not None for c in report.columns)
    assert expected == 5 and figure_count(path.read_text(encoding="utf-8")) == expected
    shown = render(browser, path, expected, tmp_path / f"drift-{plotly}.png")
    assert_drawn(shown, expected)
    for figure in shown["figures"]:
        ticks = figure["yticks"]
        # The share axis as drawn: percentages, none repeated after rounding.
        assert len(ticks) >= 3 and all(t.endswith("%") for t in ticks), figure
        assert len(set(ticks)) == len(ticks), figure
    age = next(f for f in shown["figures"] if f["id"] == "plot-0")
    # Ages 20-85 with a few strays from -35 to 145: the axis spans the ages.
    lowest, highest = float(age["xticks"][0]), float(age["xticks"][-1])
    assert lowest >= 15 and highest <= 90, age["xticks"]


def test_analysis_report_draws_every_figure(browser, tmp_path):
    path = analysis_report().to_html(tmp_path / "analysis.html")
    expected = figure_count(path.read_text(encoding="utf-8"))
    assert expected >= 5  # room, residual plots, importance
    shown = render(browser, path, expected, tmp_path / "analysis.png")
    assert_drawn(shown, expected)
    room = next(f for f in shown["figures"] if f["id"] == "errors-room")
    # Shares in percent, as the table beside the chart writes them.
    assert all(t.endswith("%") for t in room["xticks"]), room["xticks"]
    assert len(set(room["xticks"])) == len(room["xticks"]) >= 3


def test_selection_report_draws_its_funnel(browser, tmp_path):
    path = selection().to_html(tmp_path / "selection.html")
    assert figure_count(path.read_text(encoding="utf-8")) == 1
    shown = render(browser, path, 1, tmp_path / "selection.png")
    assert_drawn(shown, 1)


def test_reports_sharing_one_library_open_offline(browser, tmp_path):
    # The demo's layout: several reports in one folder, plotly.min.js beside them.
    paths = [
        drift_report(*drift_frames(1)).to_html(tmp_path / "drift.html", plotly="beside"),
        analysis_report(1).to_html(tmp_path / "analysis_a.html", plotly="beside"),
        analysis_report(2).to_html(tmp_path / "analysis_b.html", plotly="beside"),
    ]
    assert (tmp_path / PLOTLY_FILE).is_file()
    for path in paths:
        expected = figure_count(path.read_text(encoding="utf-8"))
        shown = render(browser, path, expected, tmp_path / f"{path.stem}.png")
        assert_drawn(shown, expected)
