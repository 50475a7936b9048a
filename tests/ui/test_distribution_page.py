"""A feature's distributions in a monitoring window against the reference, over HTTP against
a real server on loopback: the bins and counts are numpy's histogram of the rows the window
was sent and of the reference rows, through the service's HTTP client and on the page the
heatmap's cells open; mistakes are pages naming the field."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import numpy as np
import pandas as pd
import pytest
from tests.ui.monitoring_data import FEATURES, NAME, SHIFT, WINDOWS
from tests.ui.test_monitoring_page import figures, served  # noqa: F401 (fixture)

REFERENCE_ROWS = 250


def _reference_rows() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    order = np.random.default_rng(0).permutation(len(data.frame))
    return data.frame[FEATURES].iloc[order].reset_index(drop=True).iloc[:REFERENCE_ROWS]


@pytest.mark.parametrize("feature", ["mean radius", "worst area"])
def test_the_bins_and_counts_are_numpys_on_the_same_rows(served, feature):  # noqa: F811
    client, monitoring, monitored = served
    start = monitoring.evaluations(NAME)[SHIFT].start_ms
    window = monitored.windows[SHIFT][feature].to_numpy(float)
    reference = _reference_rows()[feature].to_numpy(float)
    edges = np.histogram_bin_edges(np.concatenate([window, reference]), bins=20)
    found = monitoring.feature_distribution(NAME, feature, start_ms=start, variant="stable")
    assert found.kind == "numeric"
    assert found.edges == edges.tolist()
    assert found.window == np.histogram(window, edges)[0].tolist()
    assert found.reference == np.histogram(reference, edges)[0].tolist()
    assert (found.window_rows, found.reference_rows) == (len(window), len(reference))
    # The page draws each side as its share of rows and lists the counts.
    page = client.get(
        f"/deployments/{NAME}/monitoring/distribution",
        params={"feature": feature, "start": start, "variant": "stable"},
    )
    assert page.status_code == 200
    (figure,) = figures(page.text)
    window_bars, reference_bars = figure["data"]
    assert window_bars["customdata"] == found.window
    assert window_bars["y"] == [c / len(window) for c in found.window]
    assert reference_bars["y"] == [c / len(reference) for c in found.reference]
    cells = re.findall(
        r'<tr><td>([^<]+)</td><td class="number">(\d+)</td><td class="number">(\d+)</td></tr>',
        page.text,
    )
    assert [(int(w), int(r)) for _, w, r in cells] == list(
        zip(found.window, found.reference, strict=True)
    )


def test_each_heatmap_cell_opens_its_features_distribution(served):  # noqa: F811
    client, monitoring, _ = served
    page = client.get(f"/deployments/{NAME}/monitoring").text
    heatmap = figures(page)[0]["data"][0]
    assert heatmap["type"] == "heatmap"
    evaluations = monitoring.evaluations(NAME)
    for row, feature in enumerate(heatmap["y"]):
        for column in range(WINDOWS):
            link = heatmap["customdata"][row][column]
            query = dict(re.findall(r"[?&]([^=]+)=([^&]*)", link))
            assert int(query["start"]) == evaluations[column].start_ms
            assert query["variant"] == "stable"
            assert query["feature"].replace("+", " ") == feature
    # A link relative to the page, as the browser resolves it.
    link = heatmap["customdata"][0][SHIFT]
    assert link.startswith("monitoring/distribution?")
    opened = client.get(urljoin(f"/deployments/{NAME}/monitoring", link))
    assert opened.status_code == 200
    assert f"<h1>{heatmap['y'][0]}: window of" in opened.text


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"feature": "nope", "start": 0, "variant": "stable"}, 404, "has no feature"),
        ({"feature": "mean radius", "start": 5, "variant": "stable"}, 404, "start_ms: variant"),
        ({"feature": "mean radius", "start": -1, "variant": "stable"}, 422, "start"),
        ({"feature": "mean radius", "variant": "stable"}, 422, "start"),
    ],
)
def test_mistakes_are_pages_naming_the_field(served, query, status, message):  # noqa: F811
    client, _, _ = served
    response = client.get(f"/deployments/{NAME}/monitoring/distribution", params=query)
    assert response.status_code == status
    assert message in response.text
