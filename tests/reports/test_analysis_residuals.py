"""The residual plots of the analysis report, read back from the rendered page."""

import base64
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.analysis import residual_analysis
from opsloop.analysis.residuals import ResidualAnalysis
from opsloop.reports.analysis import (
    MAX_QQ_POINTS,
    MAX_SCATTER_POINTS,
    TREND_BINS,
    AnalysisReport,
    residual_figures,
)


def figure_data(page: str, div_id: str) -> list[dict]:
    """The traces plotly draws in ``div_id``, with typed arrays decoded to numpy."""
    start = page.index(f'Plotly.newPlot(                        "{div_id}",')
    start = page.index("[", start)
    traces, _ = json.JSONDecoder().raw_decode(page, start)
    return [{key: decoded(value) for key, value in trace.items()} for trace in traces]


def decoded(value):
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    if isinstance(value, list):
        return np.asarray(value)
    return value


def filliben_quantiles(n: int) -> np.ndarray:
    """Normal quantiles at Filliben's plotting positions, from the formula."""
    positions = (np.arange(1, n + 1) - 0.3175) / (n + 0.365)
    positions[-1] = 0.5 ** (1 / n)
    positions[0] = 1 - positions[-1]
    return stats.norm.ppf(positions)


def binned_by_pandas(fitted: np.ndarray, residuals: np.ndarray, bins: int) -> pd.DataFrame:
    frame = pd.DataFrame({"fitted": fitted, "residual": residuals})
    groups = pd.qcut(frame["fitted"], bins, duplicates="drop")
    return frame.groupby(groups, observed=True).mean()


def regression(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y_pred = rng.normal(10, 3, size=n)
    # residuals that grow with the fitted value: what the plot is for
    y_true = y_pred + rng.normal(size=n) * (0.2 + 0.1 * np.abs(y_pred))
    return y_true, y_pred


def test_small_analysis_draws_every_row_and_exact_plot_data():
    y_true, y_pred = regression(400, seed=1)
    result = residual_analysis(y_true, y_pred, lags=3, n_permutations=19)
    page = AnalysisReport(residuals=result).render_html()
    residuals = y_true - y_pred

    scatter, trend = figure_data(page, "residuals-fitted")
    np.testing.assert_array_equal(scatter["x"], y_pred)
    np.testing.assert_array_equal(scatter["y"], residuals)
    reference = binned_by_pandas(y_pred, residuals, TREND_BINS)
    assert len(trend["x"]) == len(reference) == TREND_BINS
    np.testing.assert_allclose(trend["x"], reference["fitted"], rtol=1e-12)
    np.testing.assert_allclose(trend["y"], reference["residual"], rtol=1e-12, atol=1e-12)

    bars, normal = figure_data(page, "residuals-histogram")
    counts, edges = np.histogram(residuals, bins="auto")
    assert len(bars["y"]) == len(counts)
    np.testing.assert_array_equal(bars["y"], counts)
    np.testing.assert_allclose(bars["x"], (edges[:-1] + edges[1:]) / 2, rtol=1e-12)
    assert int(bars["y"].sum()) == 400
    width = edges[1] - edges[0]
    expected = 400 * width * stats.norm.pdf(normal["x"], residuals.mean(), residuals.std(ddof=1))
    np.testing.assert_allclose(normal["y"], expected, rtol=1e-9)
    assert normal["x"][0] == edges[0] and normal["x"][-1] == edges[-1]

    points, line = figure_data(page, "residuals-qq")
    theoretical = filliben_quantiles(400)
    np.testing.assert_allclose(points["x"], theoretical, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(points["y"], np.sort(residuals))
    slope, intercept = np.polyfit(theoretical, np.sort(residuals), 1)
    np.testing.assert_allclose(line["y"], intercept + slope * line["x"], rtol=1e-9)
    np.testing.assert_allclose(line["x"], theoretical[[0, -1]], rtol=1e-12)

    assert "The scatter shows 400 of 400 rows;" in page
    assert "random sample" not in page


def test_large_analysis_shows_a_stated_deterministic_sample():
    n = 30_000
    y_true, y_pred = regression(n, seed=2)
    result = residual_analysis(y_true, y_pred, lags=2, n_permutations=0, seed=7)
    page = AnalysisReport(residuals=result).render_html()
    residuals = y_true - y_pred

    scatter, trend = figure_data(page, "residuals-fitted")
    assert len(scatter["x"]) == len(scatter["y"]) == MAX_SCATTER_POINTS
    # every point drawn is a real row, each row at most once, in row order
    rows = np.flatnonzero(np.isin(y_pred, scatter["x"]))
    assert len(rows) == MAX_SCATTER_POINTS
    np.testing.assert_array_equal(y_pred[rows], scatter["x"])
    np.testing.assert_array_equal(residuals[rows], scatter["y"])
    np.testing.assert_array_equal(
        rows, np.sort(np.random.default_rng(7).choice(n, MAX_SCATTER_POINTS, replace=False))
    )
    # the trend line is computed on every row, not on the sample
    reference = binned_by_pandas(y_pred, residuals, TREND_BINS)
    np.testing.assert_allclose(trend["y"], reference["residual"], rtol=1e-12, atol=1e-12)
    assert f"The scatter shows {MAX_SCATTER_POINTS:,} of {n:,} rows (a uniform random " in page
    assert f"residual vs fitted ({MAX_SCATTER_POINTS:,} of {n:,} rows, random sample)" in page

    bars, _ = figure_data(page, "residuals-histogram")
    counts, _ = np.histogram(residuals, bins="auto")
    assert len(bars["y"]) == min(len(counts), 100)
    assert int(bars["y"].sum()) == n

    points, _ = figure_data(page, "residuals-qq")
    assert len(points["x"]) == MAX_QQ_POINTS
    ordered = np.sort(residuals)
    assert points["y"][0] == ordered[0] and points["y"][-1] == ordered[-1]
    kept = np.round(np.linspace(0, n - 1, MAX_QQ_POINTS)).astype(int)
    np.testing.assert_array_equal(points["y"], ordered[kept])
    np.testing.assert_allclose(points["x"], filliben_quantiles(n)[kept], rtol=1e-12, atol=1e-12)

    assert page == AnalysisReport(residuals=result).render_html()


def test_histogram_is_capped_at_100_bins():
    rng = np.random.default_rng(3)
    residuals = np.concatenate([rng.normal(size=20_000), [500.0]])  # one far outlier
    result = residual_analysis(residuals, np.zeros(len(residuals)), lags=1, n_permutations=0)
    assert len(np.histogram_bin_edges(residuals, bins="auto")) > 101
    bars = residual_figures(result)["histogram"].data[0]
    counts, _ = np.histogram(residuals, bins=100)
    np.testing.assert_array_equal(bars.y, counts)


def test_constant_residuals_draw_without_a_fitted_line():
    result = residual_analysis([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], lags=1, n_permutations=0)
    figures = residual_figures(result)
    assert len(figures["histogram"].data) == 1 and figures["histogram"].data[0].y.tolist() == [3]
    assert len(figures["qq"].data) == 1
    assert figures["qq"].data[0].y.tolist() == [1.0, 1.0, 1.0]


def test_result_without_arrays_renders_tables_only():
    bare = ResidualAnalysis(10, 0.0, 1.0, 2.0, None, 0, (), ())
    page = AnalysisReport(residuals=bare).render_html()
    assert "Durbin-Watson" in page and "residuals-fitted" not in page
    with pytest.raises(ValueError, match="holds no fitted values and residuals to plot"):
        residual_figures(bare)
    result = residual_analysis([1.0, 2.0, 4.0], [1.0, 1.0, 1.0], lags=1)
    with pytest.raises(ValueError, match="max_points must be an integer >= 2, got 1"):
        residual_figures(result, max_points=1)
