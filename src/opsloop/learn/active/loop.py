"""The active-learning loop: fit, ask the oracle about the most useful rows, refit, within a budget.

The loop works with any scikit-learn classifier that has ``predict_proba``; the estimator given is
cloned at every round, so it is never modified. Given a run, the loop logs its settings, the
learning curve (``accuracy`` and ``balanced_accuracy`` at step = labels spent, ``labels_spent`` at
step = round) and the report ``active_learning.json`` with the queried rows in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from opsloop.learn.active.oracle import Oracle
from opsloop.learn.active.strategies import (
    DiverseUncertaintySampling,
    QueryStrategy,
    RandomSampling,
    UncertaintySampling,
    make_strategy,
)
from opsloop.learn.run_log import (
    RunLog,
    checked_run,
    log_json,
    log_metrics,
    log_sklearn_model,
)


@dataclass(frozen=True)
class ActiveLearningResult:
    """What a loop asked, in order, and how the classifier scored after each round.

    ``labels_spent[i]`` is the number of labels bought when the ``i``-th model was fitted;
    ``accuracy`` and ``balanced_accuracy`` are empty when no evaluation set was given.
    """

    strategy: str
    queried: tuple[int, ...]
    labels_spent: tuple[int, ...]
    accuracy: tuple[float, ...]
    balanced_accuracy: tuple[float, ...]
    estimator: Any = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (the fitted estimator is left out)."""
        return {
            "strategy": self.strategy,
            "queried": list(self.queried),
            "labels_spent": list(self.labels_spent),
            "accuracy": list(self.accuracy),
            "balanced_accuracy": list(self.balanced_accuracy),
        }

    def to_frame(self) -> pd.DataFrame:
        """The learning curve: one row per round."""
        frame = pd.DataFrame({"labels_spent": list(self.labels_spent)})
        if self.accuracy:
            frame["accuracy"] = list(self.accuracy)
            frame["balanced_accuracy"] = list(self.balanced_accuracy)
        frame.insert(0, "strategy", self.strategy)
        return frame


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def active_learning(
    estimator: Any,
    X_pool: np.ndarray,
    oracle: Oracle,
    *,
    strategy: str | QueryStrategy = "entropy",
    budget: int,
    batch_size: int = 10,
    initial: int | np.ndarray = 10,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    random_state: int | None = None,
    run: RunLog | None = None,
) -> ActiveLearningResult:
    """Label at most ``budget`` pool rows, ``batch_size`` at a time, chosen by ``strategy``.

    ``initial`` is the number of random rows labelled first (or their pool positions); they count
    towards the budget. While the labelled rows hold a single class no classifier can be fitted,
    so the loop keeps drawing random batches until a second class appears (a cold start).
    ``run`` (see :class:`~opsloop.learn.run_log.RunLog`) receives the settings, the curve after
    every round and ``active_learning.json``.

    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from opsloop.learn.active import SimulatedOracle
    >>> X, y = make_classification(300, random_state=0)
    >>> result = active_learning(LogisticRegression(), X[:200], SimulatedOracle(y[:200]),
    ...                          budget=40, X_test=X[200:], y_test=y[200:], random_state=0)
    >>> result.labels_spent
    (10, 20, 30, 40)
    """
    run = checked_run(run)
    X = np.asarray(X_pool)
    n_pool = len(X)
    budget = _positive_int(budget, "budget")
    batch_size = _positive_int(batch_size, "batch_size")
    if budget > n_pool:
        raise ValueError(f"budget must not exceed the pool size {n_pool}, got {budget}")
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test and y_test must be given together")
    if X_test is not None and len(X_test) != len(y_test):
        raise ValueError(
            f"X_test and y_test must have one label per row, got {len(X_test)} rows "
            f"and {len(y_test)} labels"
        )
    chooser = make_strategy(strategy)
    # found before any label is bought: the first query would fail after the cold start
    if isinstance(chooser, UncertaintySampling | DiverseUncertaintySampling) and not hasattr(
        estimator, "predict_proba"
    ):
        raise TypeError(
            f"strategy {chooser.name!r} ranks rows by predict_proba, which "
            f"{type(estimator).__name__} does not have; use 'qbc' or 'random', or a "
            "classifier with predict_proba"
        )
    rng = np.random.default_rng(random_state)
    if isinstance(initial, int | np.integer) and not isinstance(initial, bool):
        first = rng.choice(
            n_pool, size=min(_positive_int(initial, "initial"), budget), replace=False
        )
    else:
        first = np.unique(np.asarray(initial, dtype=np.int64))
        if first.size == 0 or first.size > budget or first.min() < 0 or first.max() >= n_pool:
            raise ValueError(
                f"initial positions must be 1 to budget={budget} distinct indices in [0, {n_pool})"
            )
    if run is not None:
        run.log_params(
            {
                "strategy": chooser.name,
                "estimator": type(estimator).__name__,
                "budget": budget,
                "batch_size": batch_size,
                "initial": int(first.size),
                "random_state": random_state,
                "n_pool": n_pool,
            }
        )
    labelled = np.zeros(n_pool, dtype=bool)
    order: list[np.ndarray] = []
    answers: list[np.ndarray] = []

    def ask(positions: np.ndarray) -> None:
        labelled[positions] = True
        order.append(positions)
        answers.append(np.asarray(oracle.label(positions, X[positions])))

    ask(first)
    spent = int(first.size)
    cold = RandomSampling()
    while np.unique(np.concatenate(answers)).size < 2 and spent < budget:
        pool = np.flatnonzero(~labelled)
        n = min(batch_size, budget - spent)
        ask(pool[cold.select(None, X[pool], n, X_labelled=None, y_labelled=None, rng=rng)])
        spent += n
    if np.unique(np.concatenate(answers)).size < 2:
        raise ValueError(f"the budget of {budget} labels found only one class; raise the budget")

    spent_curve, accuracy, balanced = [], [], []
    while True:
        idx = np.concatenate(order)
        y_lab = np.concatenate(answers)
        model = clone(estimator).fit(X[idx], y_lab)
        spent_curve.append(spent)
        if X_test is not None:
            predicted = model.predict(X_test)
            accuracy.append(float(accuracy_score(y_test, predicted)))
            balanced.append(float(balanced_accuracy_score(y_test, predicted)))
        if run is not None:
            run.log_metric("labels_spent", spent, step=len(spent_curve) - 1)
            if X_test is not None:
                log_metrics(
                    run, {"accuracy": accuracy[-1], "balanced_accuracy": balanced[-1]}, step=spent
                )
        pool = np.flatnonzero(~labelled)
        n = min(batch_size, budget - spent, pool.size)
        if n <= 0:
            break
        picked = chooser.select(model, X[pool], n, X_labelled=X[idx], y_labelled=y_lab, rng=rng)
        ask(pool[np.asarray(picked, dtype=np.int64)])
        spent += n
    result = ActiveLearningResult(
        strategy=chooser.name,
        queried=tuple(int(i) for i in np.concatenate(order)),
        labels_spent=tuple(spent_curve),
        accuracy=tuple(accuracy),
        balanced_accuracy=tuple(balanced),
        estimator=model,
    )
    if run is not None:
        log_json(run, result.to_dict(), "active_learning.json")
        log_sklearn_model(run, model, "model.skops")
    return result
