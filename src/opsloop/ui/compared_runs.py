"""The runs of a compare view, read in one search, and the columns it shows of them.

A handful of runs is read as columns side by side, every param and metric a row. A thousand
runs (the first of a table's order) cannot be: they become rows, and only the keys most of
them have are columns (params that differ first), so the page stays the size of the runs
table's largest page times ten columns, whatever the number of keys the runs logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from opsloop.ui.run_table import filter_literal

#: Up to this many runs, runs are columns and every key a row.
SIDE_BY_SIDE = 10
#: With more runs, the param and metric columns shown of each kind.
COLUMNS_PER_KIND = 10


@dataclass(frozen=True)
class ComparedRuns:
    """Runs in the order asked (``rows``: run_id, label, params, metrics, with the shown keys
    only), the param and metric keys shown, the params that differ, the keys left out, and
    every metric key with the number of runs that logged it, most logged first."""

    rows: list[dict]
    param_keys: list[str]
    differing: set[str]
    metric_keys: list[str]
    hidden_params: int
    hidden_metrics: int
    metric_counts: dict[str, int]

    @property
    def side_by_side(self) -> bool:
        """Whether the runs are few enough to be the tables' columns."""
        return len(self.rows) <= SIDE_BY_SIDE


def runs_by_id(tracking, run_ids: Sequence[str]) -> pd.DataFrame:
    """The search rows of ``run_ids`` (full ids or unambiguous prefixes) in their order, read
    in one search; an unknown id is a 404 naming it.

    ``tracking`` is an empty local tracking store:

    >>> a, b = tracking.create_run("e", name="a"), tracking.create_run("e", name="b")
    >>> runs_by_id(tracking, [a, b[:8]])["name"].tolist()
    ['a', 'b']
    """
    ids = [tracking.resolve_run_id(r) for r in run_ids]
    found = tracking.search_runs(
        None, f"run_id IN ({', '.join(filter_literal(r) for r in ids)})", max_results=len(ids)
    ).set_index("run_id", drop=False)
    for run_id in ids:
        if run_id not in found.index:
            tracking.get_run(run_id)  # raises the store's own not-found error
    return found.loc[ids].reset_index(drop=True)


def _present(frame: pd.DataFrame, prefix: str) -> pd.Series:
    """How many runs hold each ``prefix`` column, most first, then by name.

    Columns are picked by position and counted on the block's array: two thousand metric
    columns looked up by label, then counted one Series at a time, cost more than the search.
    """
    names = frame.columns.tolist()
    positions = [i for i, name in enumerate(names) if name.startswith(prefix)]
    counts = frame.iloc[:, positions].notna().to_numpy().sum(axis=0).tolist()
    held = {names[i][len(prefix) :]: n for i, n in zip(positions, counts, strict=True) if n > 0}
    order = sorted(held, key=lambda key: (-held[key], key))
    return pd.Series({key: held[key] for key in order}, dtype="int64")


def compared_runs(frame: pd.DataFrame) -> ComparedRuns:
    """What a compare view shows of the runs in ``frame`` (search rows, in order).

    >>> frame = pd.DataFrame({"run_id": ["r1", "r2"], "name": ["a", None],
    ...     "params.depth": ["2", "4"], "params.model": ["rf", "rf"],
    ...     "metrics.auc": [0.7, 0.8], "metrics.loss": [None, 0.3]})
    >>> runs = compared_runs(frame)
    >>> runs.param_keys, runs.differing, runs.metric_keys
    (['depth', 'model'], {'depth'}, ['auc', 'loss'])
    >>> runs.rows[0]["label"], runs.rows[0]["metrics"], runs.rows[1]["label"]
    ('a r1', {'auc': 0.7}, 'r2')
    """
    params = _present(frame, "params.")
    metrics = _present(frame, "metrics.")
    differing_all = {k for k in params.index if frame[f"params.{k}"].nunique(dropna=False) > 1}
    if len(frame) <= SIDE_BY_SIDE:
        param_keys, metric_keys = sorted(params.index), sorted(metrics.index)
    else:
        # Params that tell the runs apart first, then the most logged.
        ranked = sorted(params.index, key=lambda k: k not in differing_all)
        param_keys = sorted(ranked[:COLUMNS_PER_KIND])
        metric_keys = sorted(metrics.index[:COLUMNS_PER_KIND])
    # Cells read once as plain lists: a thousand runs' twenty cells each, checked one by one
    # through pandas, cost more than the page's search.
    columns = [f"params.{k}" for k in param_keys] + [f"metrics.{k}" for k in metric_keys]
    cells = frame[columns]
    values = cells.to_numpy(dtype=object).tolist()
    present = cells.notna().to_numpy().tolist()
    keys = [("params", k) for k in param_keys] + [("metrics", k) for k in metric_keys]
    rows = []
    for run_id, name, row, has in zip(
        frame["run_id"].tolist(), frame["name"].tolist(), values, present, strict=True
    ):
        name = name if isinstance(name, str) else ""
        shown: dict[str, dict] = {"params": {}, "metrics": {}}
        for (kind, key), value, there in zip(keys, row, has, strict=True):
            if there:
                shown[kind][key] = value
        rows.append({"run_id": run_id, "label": f"{name} {run_id[:8]}".strip(), **shown})
    return ComparedRuns(
        rows,
        param_keys,
        differing_all & set(param_keys),
        metric_keys,
        len(params) - len(param_keys),
        len(metrics) - len(metric_keys),
        metrics.to_dict(),
    )
