"""Charts of many curves drawn on the server: each path passes through exactly the points that
min/max downsampling keeps of its series (each curve with its share of the chart's points),
in the runs' order, placed where the axes put them (computed here by hand)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pandas as pd
import pytest

from opsloop.ui.metric_charts import CHART_POINTS, compared_curves
from opsloop.ui.series_downsampling import min_max_downsample
from opsloop.ui.svg_line_chart import line_chart_svg, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ElementTree.Element:
    # Inline SVG in HTML needs no namespace; XML parsing of it does.
    return ElementTree.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def path_points(d: str) -> np.ndarray:
    assert re.fullmatch(r"M[-\d.]+,[-\d.]+(L[-\d.]+,[-\d.]+( [-\d.]+,[-\d.]+)*|h0)", d), d
    pairs = re.findall(r"([-\d.]+),([-\d.]+)", d)
    return np.array([[float(x), float(y)] for x, y in pairs])


def to_pixels(steps, values, x_range, y_range):
    """Where the plot area (x 64 to 1184, y 32 to 260 of a 1200 × 300 viewBox) puts a point;
    the value range is padded by 4% above and below."""
    (x0, x1), (y0, y1) = x_range, y_range
    pad = (y1 - y0) * 0.04
    y0, y1 = y0 - pad, y1 + pad
    x = 64 + (np.asarray(steps, float) - x0) / (x1 - x0) * 1120
    y = 32 + (y1 - np.asarray(values, float)) / (y1 - y0) * 228
    return np.column_stack([x, y])


@pytest.fixture
def histories():
    """Forty runs of ``loss`` (run 0 a long series with a spike, the others 30 points each,
    run 5 with a NaN), rows shuffled as a store may return them, and ``auc`` with one point
    per run."""
    rng = np.random.default_rng(11)
    frames = []
    for i in range(40):
        length = 50_000 if i == 0 else 30
        values = np.exp(-np.arange(length) / (10 + i)) + 0.01 * rng.standard_normal(length)
        if i == 0:
            values[31_337] = 7.5
        if i == 5:
            values[3] = np.nan
        frames.append(
            pd.DataFrame(
                {"run_id": f"r{i:02d}", "key": "loss", "step": np.arange(length), "value": values}
            )
        )
        frames.append(
            pd.DataFrame({"run_id": [f"r{i:02d}"], "key": "auc", "step": [0], "value": [0.5]})
        )
    frame = pd.concat(frames, ignore_index=True)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def test_curves_are_each_runs_min_max_downsampled_series_in_the_runs_order(histories):
    runs = [(f"r{i:02d}", f"trial {i}") for i in range(39, -1, -1)]
    curves = compared_curves(histories, runs)
    assert list(curves) == ["loss"]  # auc has one point per run: the table shows it
    buckets = CHART_POINTS // (2 * 40)
    assert buckets == 150
    assert [label for label, _, _ in curves["loss"]] == [label for _, label in runs]
    for (run_id, _), (_, x, y) in zip(runs, curves["loss"], strict=True):
        mine = histories[(histories["run_id"] == run_id) & (histories["key"] == "loss")]
        want_x, want_y = min_max_downsample(
            mine["step"].to_numpy(), mine["value"].to_numpy(), buckets
        )
        assert np.array_equal(x, want_x) and np.array_equal(y, want_y)
    spiky = curves["loss"][-1]
    assert len(spiky[1]) <= 2 * buckets and spiky[2].max() == 7.5
    assert 31_337 in spiky[1].tolist()
    assert 3 not in curves["loss"][39 - 5][1].tolist()  # the NaN is not drawn


def test_each_path_passes_through_its_curves_points(histories):
    runs = [(f"r{i:02d}", f"trial <{i}>") for i in range(40)]
    curves = compared_curves(histories, runs)["loss"]
    svg = str(line_chart_svg("loss", curves))
    root = parsed(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "loss over steps, 40 curves"
    paths = root.findall(f"{SVG}g/{SVG}path")
    assert [p.find(f"{SVG}title").text for p in paths] == [f"trial <{i}>" for i in range(40)]
    assert "trial &lt;0&gt;" in svg
    assert [p.get("class") for p in paths[:10]] == [f"c{i % 8}" for i in range(10)]
    every_x = np.concatenate([x for _, x, _ in curves])
    every_y = np.concatenate([y for _, _, y in curves])
    x_range = (every_x.min(), every_x.max())
    y_range = (every_y.min(), every_y.max())
    assert x_range[0] == 0 and y_range[1] == 7.5  # the spike sets the top
    for path, (_, x, y) in zip(paths, curves, strict=True):
        drawn = path_points(path.get("d"))
        assert drawn.shape == (len(x), 2)
        np.testing.assert_allclose(
            drawn, to_pixels(x, y, x_range, y_range), rtol=0, atol=0.05 + 1e-9
        )


def test_points_that_are_not_finite_are_left_out_and_a_lone_point_is_a_dot():
    curves = [
        ("a", np.array([0, 1, 2, 3]), np.array([1.0, np.inf, 3.0, np.nan])),
        ("b", np.array([2]), np.array([2.0])),
    ]
    root = parsed(str(line_chart_svg("auc", curves)))
    a, b = (p.get("d") for p in root.findall(f"{SVG}g/{SVG}path"))
    # The finite points span steps 0 to 2 and values 1 to 3 (padded to 0.92 .. 3.08).
    np.testing.assert_allclose(
        path_points(a), to_pixels([0, 2], [1.0, 3.0], (0, 2), (1.0, 3.0)), atol=0.05 + 1e-9
    )
    assert b.endswith("h0")
    np.testing.assert_allclose(
        path_points(b), to_pixels([2], [2.0], (0, 2), (1.0, 3.0)), atol=0.05 + 1e-9
    )


def test_ticks_are_round_numbers_inside_the_axes():
    root = parsed(str(line_chart_svg("loss", [("a", np.array([0, 19]), np.array([0.0, 1.0]))])))
    labels = [t.text for t in root.findall(f"{SVG}text")]
    # Values 0 to 1 padded to -0.04 .. 1.04: ticks every 0.2; steps 0 to 19: every 5.
    assert labels == ["loss", "0", "0.2", "0.4", "0.6", "0.8", "1", "0", "5", "10", "15", "step"]
    assert nice_ticks(980.0, 1020.0, 6) == [980.0, 990.0, 1000.0, 1010.0, 1020.0]
    assert nice_ticks(0.0, 1_000_000.0, 8) == [i * 200_000.0 for i in range(6)]
