"""Learning curves of several query strategies on the same problem, labels spent vs accuracy.

Every strategy of one repeat starts from the same random initial rows, so the curves differ only
by what each strategy chose to ask. Given a run, :func:`compare_strategies` logs its settings,
each strategy's mean curve over repeats (``<strategy>/accuracy`` and
``<strategy>/balanced_accuracy`` at step = labels spent), the area under each
(``<strategy>/accuracy_area``), and the curves as ``learning_curves.json`` and
``learning_curves.csv`` (every round of every repeat).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.learn.active.loop import active_learning
from opsloop.learn.active.oracle import SimulatedOracle
from opsloop.learn.active.strategies import STRATEGY_NAMES, QueryStrategy, make_strategy
from opsloop.learn.run_log import RunLog, checked_run, log_csv, log_json, log_metrics


@dataclass(frozen=True)
class LearningCurves:
    """Accuracy after each round for each strategy and repeat (``frame``, long format)."""

    frame: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """Columns: strategy, repeat, labels_spent, accuracy, balanced_accuracy."""
        return self.frame.copy()

    def mean_curve(self, metric: str = "accuracy") -> pd.DataFrame:
        """``metric`` averaged over repeats: one row per labels_spent, one column per strategy."""
        return self.frame.pivot_table(
            index="labels_spent", columns="strategy", values=metric, aggfunc="mean", sort=False
        )

    def area(self, metric: str = "accuracy") -> pd.DataFrame:
        """Mean ``metric`` over each curve (the normalised area under it), per strategy and repeat.

        One row per repeat, one column per strategy: a single number per curve that rewards
        reaching a good model with few labels.
        """
        return self.frame.pivot_table(
            index="repeat", columns="strategy", values=metric, aggfunc="mean", sort=False
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the mean area under each strategy's accuracy curves."""
        means = self.area().mean(axis=0)
        balanced = self.area("balanced_accuracy").mean(axis=0)
        return {
            "strategies": [str(s) for s in means.index],
            "mean_accuracy_area": {str(k): float(v) for k, v in means.items()},
            "mean_balanced_accuracy_area": {str(k): float(v) for k, v in balanced.items()},
            "repeats": int(self.frame["repeat"].nunique()),
        }


def compare_strategies(
    estimator: Any,
    X_pool: np.ndarray,
    y_pool: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    strategies: Sequence[str | QueryStrategy] = STRATEGY_NAMES,
    budget: int,
    batch_size: int = 10,
    initial: int = 10,
    repeats: int = 1,
    random_state: int = 0,
    run: RunLog | None = None,
) -> LearningCurves:
    """Run :func:`active_learning` for each strategy, ``repeats`` times, with a simulated oracle.

    ``run`` (see :class:`~opsloop.learn.run_log.RunLog`) receives the settings, the mean curve
    and area of each strategy, and the curves as JSON and CSV.

    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = make_classification(300, random_state=0)
    >>> curves = compare_strategies(LogisticRegression(), X[:200], y[:200], X[200:], y[200:],
    ...                             strategies=["random", "margin"], budget=30)
    >>> curves.mean_curve().shape
    (3, 2)
    """
    run = checked_run(run)
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    chosen = [make_strategy(strategy) for strategy in strategies]
    if not chosen:
        raise ValueError("strategies must name at least one strategy")
    if isinstance(initial, bool) or not isinstance(initial, int | np.integer) or initial < 1:
        raise ValueError(f"initial must be a positive integer, got {initial!r}")
    if initial > min(budget, len(X_pool)):
        raise ValueError(
            f"initial must not exceed the budget ({budget}) nor the pool size "
            f"({len(X_pool)}), got {initial}"
        )
    if run is not None:
        run.log_params(
            {
                "strategies": ",".join(c.name for c in chosen),
                "estimator": type(estimator).__name__,
                "budget": budget,
                "batch_size": batch_size,
                "initial": initial,
                "repeats": repeats,
                "random_state": random_state,
                "n_pool": len(X_pool),
                "n_test": len(X_test),
            }
        )
    rows = []
    for repeat in range(repeats):
        seed = random_state + repeat
        first = np.random.default_rng(seed).choice(len(X_pool), size=initial, replace=False)
        for strategy in chosen:
            result = active_learning(
                estimator,
                X_pool,
                SimulatedOracle(y_pool),
                strategy=strategy,
                budget=budget,
                batch_size=batch_size,
                initial=first,
                X_test=X_test,
                y_test=y_test,
                random_state=seed,
            )
            frame = result.to_frame()
            frame.insert(1, "repeat", repeat)
            rows.append(frame)
    curves = LearningCurves(pd.concat(rows, ignore_index=True))
    if run is not None:
        accuracy, balanced = curves.mean_curve(), curves.mean_curve("balanced_accuracy")
        for spent in accuracy.index:
            metrics: dict[str, float | None] = {}
            for name in accuracy.columns:
                # repeats whose cold start bought more labels have no point at the first sizes
                for key, table in (("accuracy", accuracy), ("balanced_accuracy", balanced)):
                    value = table.loc[spent, name]
                    metrics[f"{name}/{key}"] = None if pd.isna(value) else float(value)
            log_metrics(run, metrics, step=int(spent))
        summary = curves.to_dict()
        log_metrics(
            run,
            {f"{name}/accuracy_area": v for name, v in summary["mean_accuracy_area"].items()},
        )
        log_json(run, summary, "learning_curves.json")
        log_csv(run, curves.to_frame(), "learning_curves.csv")
    return curves
