"""Runs side by side: their params and latest metrics in columns, and their metric histories.

>>> import pandas as pd
>>> from opsloop.tracking.records import Run
>>> a = Run("a", "e", None, "FINISHED", 0, 1, None, None, None, {"m": "rf"}, {"auc": 0.8}, {})
>>> b = Run("b", "e", None, "FINISHED", 0, 1, None, None, None, {"m": "gbm"}, {"auc": 0.9}, {})
>>> c = compare(
...     [a, b], pd.DataFrame(columns=["run_id", "key", "step", "value", "timestamp"]))
>>> c.params
   a    b
m  rf  gbm
>>> c.differing_params()
['m']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from opsloop.tracking.records import Run


@dataclass(frozen=True)
class RunComparison:
    """Params and latest metrics (rows: keys, columns: run ids) and long-form histories.

    ``histories`` has columns ``run_id``, ``key``, ``step``, ``value``, ``timestamp``.

    >>> RunComparison((), pd.DataFrame(), pd.DataFrame(), pd.DataFrame()).run_ids
    ()
    """

    run_ids: tuple[str, ...]
    params: pd.DataFrame
    metrics: pd.DataFrame
    histories: pd.DataFrame

    def differing_params(self) -> list[str]:
        """Param keys whose values are not the same in every run (missing counts as different).

        >>> RunComparison(("a",), pd.DataFrame({"a": ["1"]}, index=["x"]), pd.DataFrame(),
        ...               pd.DataFrame()).differing_params()
        []
        """
        if self.params.empty:
            return []
        filled = self.params.fillna("\x00missing")
        return [key for key, row in filled.iterrows() if row.nunique() > 1]

    def to_frame(self) -> pd.DataFrame:
        """Params and metrics in one table, indexed by (``kind``, ``key``).

        >>> RunComparison(("a",), pd.DataFrame({"a": ["1"]}, index=["x"]),
        ...               pd.DataFrame({"a": [0.5]}, index=["auc"]), pd.DataFrame()).to_frame()
                      a
        kind   key
        param  x      1
        metric auc  0.5
        """
        return pd.concat(
            [self.params.astype(object), self.metrics.astype(object)],
            keys=["param", "metric"],
            names=["kind", "key"],
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-safe: params and metrics per run, histories as records (time in ms).

        >>> RunComparison(("a",), pd.DataFrame({"a": ["1"]}, index=["x"]), pd.DataFrame(),
        ...               pd.DataFrame()).to_dict()["params"]
        {'a': {'x': '1'}}
        """
        histories = []
        if not self.histories.empty:
            h = self.histories
            milliseconds = (h["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")
            histories = [
                {"run_id": r, "key": k, "step": s, "value": v, "timestamp_ms": t}
                for r, k, s, v, t in zip(
                    h["run_id"].tolist(),
                    h["key"].tolist(),
                    h["step"].astype("int64").tolist(),
                    h["value"].astype("float64").tolist(),
                    milliseconds.astype("int64").tolist(),
                    strict=True,
                )
            ]
        return {
            "run_ids": list(self.run_ids),
            "params": {
                run: {k: v for k, v in self.params[run].items() if pd.notna(v)}
                for run in self.params.columns
            },
            "metrics": {
                run: {k: float(v) for k, v in self.metrics[run].items() if pd.notna(v)}
                for run in self.metrics.columns
            },
            "histories": histories,
        }


def compare(runs: Sequence[Run], histories: pd.DataFrame) -> RunComparison:
    """Build a :class:`RunComparison` from runs and their metric histories.

    >>> compare([], pd.DataFrame()).run_ids
    ()
    """
    ids = tuple(run.run_id for run in runs)
    params = pd.DataFrame({run.run_id: pd.Series(dict(run.params), dtype=object) for run in runs})
    metrics = pd.DataFrame(
        {run.run_id: pd.Series(dict(run.metrics), dtype="float64") for run in runs}
    )
    params = params.sort_index().astype(object)
    params = params.where(params.notna(), None)
    return RunComparison(ids, params, metrics.sort_index(), histories)
