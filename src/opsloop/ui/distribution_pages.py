"""One feature's distributions in a monitoring window against the reference: the page a
cell of the drift heatmap (or a feature of a window's table) opens.

The histograms come from the monitoring service's ``feature_distribution`` (the window's
sample and the reference's, on shared bins); the chart draws each side as a share of its
rows, since the two hold different numbers of rows, and the table under it holds the counts.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from opsloop.monitoring.feature_distribution import FeatureDistribution
from opsloop.registry import User
from opsloop.ui.page_route import PageRoute
from opsloop.ui.rendering import format_value, render
from opsloop.ui.session_check import page_user
from opsloop.ui.svg_window_charts import bar_chart

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]


def bin_labels(distribution: FeatureDistribution) -> list[str]:
    """The bins as a person reads them: ``[low, high)`` intervals (the last one closed), or
    the categories.

    >>> d = FeatureDistribution("numeric", [0.0, 0.5, 1.0], None, [1, 2], [2, 1], 3, 3, 0, 0)
    >>> bin_labels(d)
    ['[0, 0.5)', '[0.5, 1]']
    """
    if distribution.edges is None:
        return list(distribution.categories or [])
    edges = [format_value(e) for e in distribution.edges]
    last = len(edges) - 2
    return [
        f"[{edges[k]}, {edges[k + 1]}{']' if k == last else ')'}" for k in range(len(edges) - 1)
    ]


def distribution_figure(feature: str, distribution: FeatureDistribution) -> dict:
    """Bars of the window's and the reference's share of rows in each bin.

    >>> d = FeatureDistribution("categorical", None, ["a", "b"], [1, 3], [2, 2], 4, 4, 0, 0)
    >>> [t["y"] for t in distribution_figure("x", d)["data"]]
    [[0.25, 0.75], [0.5, 0.5]]
    """
    labels = bin_labels(distribution)
    traces = []
    for name, counts, rows in (
        ("window", distribution.window, distribution.window_rows),
        ("reference", distribution.reference, distribution.reference_rows),
    ):
        traces.append(
            {
                "type": "bar",
                "name": f"{name} ({rows} rows)",
                "x": labels,
                "y": [c / rows if rows else 0.0 for c in counts],
                "customdata": counts,
                "hovertemplate": "%{x}: %{customdata} rows (%{y:.1%})<extra></extra>",
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": f"{feature}: window against reference"},
            "barmode": "group",
            "height": 360,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 80},
            "yaxis": {"title": {"text": "share of rows"}, "tickformat": ".0%"},
        },
    }


@router.get("/deployments/{name}/monitoring/distribution")
def distribution_page(
    request: Request,
    user: Viewer,
    name: str,
    feature: str,
    start: Annotated[int, Query(ge=0)],
    variant: str,
    window: str = "1h",
) -> Response:
    """``feature``'s distributions in ``variant``'s window of length ``window`` starting at
    ``start`` (milliseconds), against the reference."""
    deployment = request.app.state.deployments.get(name)  # a 404 naming it when there is none
    distribution = request.app.state.monitoring.feature_distribution(
        name, feature, start_ms=start, variant=variant, window=window
    )
    back = {"window": window, "start": start, "start_variant": variant}
    return render(
        request,
        "distribution.html.j2",
        deployment=deployment,
        feature=feature,
        variant=variant,
        start=start,
        window=window,
        distribution=distribution,
        labels=bin_labels(distribution),
        # SVG drawn here, as the monitoring page's: the page loads no chart script.
        chart=bar_chart(distribution_figure(feature, distribution)),
        back_link=f"/deployments/{quote(name, safe='')}/monitoring?{urlencode(back)}#features",
    )
