"""Model extraction: how well a copy trained on N answers of a model's predict API imitates it.

An attacker with unlabelled rows from the same population sends ``N`` of them to the model,
keeps the labels it answers with, and trains a surrogate on them (Tramèr et al., 2016, in its
simplest, label-only form). :func:`extraction_curve` does this for each ``N`` and reports, on
held-out rows, the surrogate's fidelity (the share of rows where it agrees with the model) and
its accuracy against the true labels, next to the model's own accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ExtractionCurve:
    """Per number of queries ``n_queries[i]``: the surrogate's ``fidelity[i]`` and ``accuracy[i]``.

    ``target_accuracy`` is the model's own accuracy on the same held-out rows; ``surrogates``
    the fitted copies, in the order of ``n_queries``.
    """

    n_queries: tuple[int, ...]
    fidelity: tuple[float, ...]
    accuracy: tuple[float, ...]
    target_accuracy: float
    surrogates: tuple[Any, ...] = field(repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per ``N``: ``n_queries``, ``fidelity``, ``accuracy``."""
        return pd.DataFrame(
            {"n_queries": self.n_queries, "fidelity": self.fidelity, "accuracy": self.accuracy}
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the surrogates left out)."""
        return {
            "target_accuracy": self.target_accuracy,
            "curve": self.to_frame().to_dict(orient="records"),
        }


def extraction_curve(
    model: Any,
    X_pool: Any,
    X_test: Any,
    y_test: Any,
    n_queries: Any,
    *,
    surrogate: Any = None,
    seed: int = 0,
) -> ExtractionCurve:
    """Train a surrogate on ``N`` of the model's answers, for each ``N`` in ``n_queries``.

    Parameters
    ----------
    model
        The target: anything with ``predict``.
    X_pool
        The attacker's unlabelled rows; each ``N`` takes the first ``N`` of one random order,
        so a larger budget sees the smaller budget's rows too.
    X_test, y_test
        Held-out rows and their true labels, for fidelity and accuracy.
    n_queries
        Budgets, each at most ``len(X_pool)``.
    surrogate
        Unfitted scikit-learn classifier to clone for each budget; ``None`` is a
        ``LogisticRegression``. A budget whose answers hold a single class gets a constant
        surrogate.
    seed
        Seeds the order of the pool.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> target = RandomForestClassifier(50, random_state=0).fit(X[:600], y[:600])
    >>> curve = extraction_curve(target, X[600:1400], X[1400:], y[1400:], [20, 800])
    >>> curve.fidelity[0] < curve.fidelity[1], curve.fidelity[1] > 0.85
    (True, True)
    """
    from sklearn.base import clone
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    if not hasattr(model, "predict"):
        raise TypeError(f"model must have predict, got {type(model).__name__}")
    X_pool, X_test, y_test = np.asarray(X_pool), np.asarray(X_test), np.asarray(y_test)
    budgets = [int(n) for n in np.atleast_1d(n_queries)]
    for n in budgets:
        if not 1 <= n <= len(X_pool):
            raise ValueError(f"n_queries: {n} is outside 1..{len(X_pool)} (the pool's rows)")
    if len(X_test) != len(y_test) or len(X_test) == 0:
        raise ValueError("X_test and y_test must have the same, non-zero number of rows")
    template = LogisticRegression(max_iter=2000) if surrogate is None else surrogate
    order = np.random.default_rng(seed).permutation(len(X_pool))
    # one batch of queries for the largest budget; a smaller budget is a prefix of it
    asked = X_pool[order[: max(budgets)]]
    answers = np.asarray(model.predict(asked))
    target_predictions = np.asarray(model.predict(X_test))
    fidelity, accuracy, surrogates = [], [], []
    for n in budgets:
        labels = answers[:n]
        copy = clone(template) if len(np.unique(labels)) > 1 else DummyClassifier()
        copy.fit(asked[:n], labels)
        predictions = copy.predict(X_test)
        fidelity.append(float(np.mean(predictions == target_predictions)))
        accuracy.append(float(np.mean(predictions == y_test)))
        surrogates.append(copy)
    return ExtractionCurve(
        n_queries=tuple(budgets),
        fidelity=tuple(fidelity),
        accuracy=tuple(accuracy),
        target_accuracy=float(np.mean(target_predictions == y_test)),
        surrogates=tuple(surrogates),
    )
