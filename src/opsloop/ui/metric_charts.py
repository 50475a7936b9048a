"""Metric charts for the run and compare pages, each series shrunk on the server to the min
and max of each x bucket: plotly figure documents for a few curves, and the curves of many
runs for :mod:`opsloop.ui.svg_line_chart`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from opsloop.ui.series_downsampling import min_max_downsample, min_max_downsample_runs

#: Buckets per chart: about one per pixel column of a chart in the page.
CHART_BUCKETS = 600
#: Charts drawn at once; a run with more keys links to the others.
MAX_CHARTS = 12
#: Up to this many curves a chart is plotly's (zoom, legend, hover); with more it is drawn
#: on the server as SVG: plotly takes seconds to lay out a thousand traces, and its 4.7 MB
#: script is parsed again on every cold load.
INTERACTIVE_CURVES = 20
#: The points one chart of many curves carries at most (each curve gets an equal share).
CHART_POINTS = 20 * CHART_BUCKETS


def metric_figure(key: str, series: Sequence[tuple[str, pd.DataFrame]]) -> dict:
    """One plotly chart of metric ``key``: a line per ``(label, history)`` over steps.

    Each history (columns ``step`` and ``value``) is shrunk to at most
    ``2 * CHART_BUCKETS`` points; ``customdata`` is absent, so the document stays small.
    Meant for up to :data:`INTERACTIVE_CURVES` curves (more are drawn as SVG).

    >>> history = pd.DataFrame({"step": np.arange(5000), "value": np.sin(np.arange(5000))})
    >>> figure = metric_figure("loss", [("run a", history)])
    >>> len(figure["data"][0]["x"]) <= 2 * CHART_BUCKETS, figure["layout"]["title"]["text"]
    (True, 'loss')
    """
    traces = []
    for label, history in series:
        steps, values = min_max_downsample(
            history["step"].to_numpy(np.int64),
            history["value"].to_numpy(np.float64),
            CHART_BUCKETS,
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(steps) < 50 else "lines",
                "name": label,
                "x": steps.tolist(),
                "y": values.tolist(),
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": key},
            "height": 300,
            "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "xaxis": {"title": {"text": "step"}},
            "showlegend": len(traces) > 1,
        },
    }


def shrunk_curve(label: str, history: pd.DataFrame) -> tuple[str, np.ndarray, np.ndarray]:
    """One run's curve ``(label, steps, values)`` for :func:`~.svg_line_chart.line_chart_svg`:
    ``history`` (columns ``step`` and ``value``) shrunk to the min and max of each of
    :data:`CHART_BUCKETS` step buckets, so a spike survives.

    >>> history = pd.DataFrame({"step": np.arange(5000), "value": np.zeros(5000)})
    >>> history.loc[2500, "value"] = 9.0
    >>> label, steps, values = shrunk_curve("run a", history)
    >>> len(steps) <= 2 * CHART_BUCKETS, float(values.max()), int(steps[values.argmax()])
    (True, 9.0, 2500)
    """
    steps, values = min_max_downsample(
        history["step"].to_numpy(np.int64), history["value"].to_numpy(np.float64), CHART_BUCKETS
    )
    return label, steps, values


def compared_curves(
    histories: pd.DataFrame, runs: Sequence[tuple[str, str]]
) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """``metric_histories`` rows as each key's curves ``(label, steps, values)``, in the
    order of ``runs`` (``(run_id, label)`` pairs), for a chart of many curves.

    Each curve is what :func:`min_max_downsample` makes of it with the curve's equal share
    of :data:`CHART_POINTS` as buckets; a key whose runs have one point each is left out
    (see :func:`is_curve`). The rows are sorted once for every curve and each key's curves
    shrunk together (:func:`min_max_downsample_runs`), so a thousand runs cost a few sorts,
    not a thousand frames or calls.

    >>> histories = pd.DataFrame({"run_id": ["b", "a", "a", "b", "a"], "key": "loss",
    ...     "step": [0, 1, 0, 1, 2], "value": [4.0, 2.0, 1.0, 3.0, 9.0]})
    >>> curves = compared_curves(histories, [("a", "run a"), ("b", "run b")])
    >>> [(label, x.tolist(), y.tolist()) for label, x, y in curves["loss"]]
    [('run a', [0, 1, 2], [1.0, 2.0, 9.0]), ('run b', [0, 1], [4.0, 3.0])]
    """
    position = {run_id: i for i, (run_id, _) in enumerate(runs)}
    labels = [label for _, label in runs]
    run_at = histories["run_id"].map(position).to_numpy(np.int64)
    key_code, keys = pd.factorize(histories["key"])
    steps = histories["step"].to_numpy(np.int64)
    values = histories["value"].to_numpy(np.float64)
    # By key, then the runs' order, then step; points sharing a step stay in logged order,
    # as min_max_downsample's stable sort leaves them.
    order = np.lexsort((np.arange(len(steps)), steps, run_at, key_code))
    key_code, run_at, steps, values = key_code[order], run_at[order], steps[order], values[order]
    starts = np.flatnonzero(
        np.diff(key_code, prepend=-1).astype(bool) | np.diff(run_at, prepend=-1).astype(bool)
    )
    ends = np.append(starts[1:], len(steps))
    curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for code in np.unique(key_code):
        mine = key_code[starts] == code
        first, last = starts[mine], ends[mine]
        if ((last - first) <= 1).all():
            continue
        buckets = max(1, CHART_POINTS // (2 * len(first)))
        # The key's curves lie one after another: shrunk together, then cut apart.
        lo, hi = int(first[0]), int(last[-1])
        kept = lo + min_max_downsample_runs(first - lo, steps[lo:hi], values[lo:hi], buckets)
        bounds = np.append(np.searchsorted(kept, first), len(kept)).tolist()
        found = [
            (labels[run_at[start]], steps[kept[a:b]], values[kept[a:b]])
            for start, a, b in zip(first.tolist(), bounds[:-1], bounds[1:], strict=True)
        ]
        curves[str(keys[code])] = found
    return curves


def histories_by_key(histories: pd.DataFrame) -> dict[str, dict[str, pd.DataFrame]]:
    """``metric_histories`` rows grouped as ``{key: {run_id: history}}``, keys sorted.

    >>> frame = pd.DataFrame({"run_id": ["a", "a"], "key": ["k", "k"], "step": [0, 1],
    ...                       "value": [1.0, 2.0]})
    >>> histories_by_key(frame)["k"]["a"]["value"].tolist()
    [1.0, 2.0]
    """
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for (key, run_id), group in histories.groupby(["key", "run_id"], sort=True):
        out.setdefault(key, {})[run_id] = group
    return out


def is_curve(histories: dict[str, pd.DataFrame]) -> bool:
    """Whether some run logged the key at more than one point (a single value per run is
    read better in the table than as a dot on a chart).

    >>> one = pd.DataFrame({"step": [0], "value": [1.0]})
    >>> is_curve({"a": one, "b": one}), is_curve({"a": pd.concat([one, one])})
    (False, True)
    """
    return any(len(history) > 1 for history in histories.values())
