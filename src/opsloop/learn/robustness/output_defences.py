"""Answers that say less: rounded, top-k-only or label-only probabilities, and what they buy.

Membership inference and extraction read a model through its answers; the less an answer says,
the less they learn. :class:`RestrictedOutput` wraps any model with ``predict_proba`` and serves:

* ``decimals``: probabilities rounded to that many decimals (ART's ``Rounded`` postprocessor);
* ``top_k``: only the ``k`` largest probabilities, the others 0 (ties broken towards the lower
  class, as ``argmax`` does);
* ``label_only``: 1 for the top class and 0 elsewhere (what ``predict`` answers, as a row).

The served class (``predict``) never changes: it is the model's own.

:func:`output_defence_effects` measures, for each restriction, the membership advantage of the
loss- and confidence-threshold attacks and the fidelity of a surrogate trained on the answers
(:func:`probability_extraction_curve`), before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opsloop.learn.robustness.defence_effect import DefenceEffect
from opsloop.learn.robustness.extraction import ExtractionCurve
from opsloop.learn.robustness.membership import threshold_attack


def restrict_probabilities(
    probabilities: Any,
    *,
    decimals: int | None = None,
    top_k: int | None = None,
    label_only: bool = False,
) -> np.ndarray:
    """Rows of probabilities (one column per class) as a restricted answer gives them:
    ``label_only`` a one-hot row of the top class; else the ``top_k`` largest kept and the
    others 0 (ties broken towards the lower class, as ``argmax`` does), then each rounded to
    ``decimals``. The serving runtime answers with the same function (per variant, see
    :mod:`opsloop.serving.deployment_settings`), so what is measured here is what is served.

    >>> p = [[0.125, 0.375, 0.5], [0.5, 0.5, 0.0]]
    >>> restrict_probabilities(p, top_k=1, decimals=1).tolist()
    [[0.0, 0.0, 0.5], [0.5, 0.0, 0.0]]
    >>> restrict_probabilities(p, label_only=True).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    p = np.array(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be 2-d (rows, classes), got shape {p.shape}")
    if label_only:
        out = np.zeros_like(p)
        out[np.arange(len(p)), p.argmax(axis=1)] = 1.0
        return out
    if top_k is not None and top_k < p.shape[1]:
        # a stable sort of -p keeps the lower class first among ties, as argmax does
        dropped = np.argsort(-p, axis=1, kind="stable")[:, top_k:]
        np.put_along_axis(p, dropped, 0.0, axis=1)
    if decimals is not None:
        p = np.round(p, decimals)
    return p


class RestrictedOutput:
    """A fitted classifier whose ``predict_proba`` answers only what the settings allow.

    Parameters
    ----------
    model
        A fitted classifier with ``predict_proba`` (``predict`` and ``classes_`` are passed on
        when it has them).
    decimals
        Round every probability to this many decimals (``None``: no rounding).
    top_k
        Keep the ``k`` largest probabilities of a row, zero the rest (``None``: all).
    label_only
        Answer a one-hot row of the top class; the other settings are then moot.

    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier(strategy="prior").fit([[0]] * 8, [0, 1, 1, 1, 2, 2, 2, 2])
    >>> model.predict_proba([[0]]).tolist()
    [[0.125, 0.375, 0.5]]
    >>> RestrictedOutput(model, decimals=1).predict_proba([[0]]).tolist()
    [[0.1, 0.4, 0.5]]
    >>> RestrictedOutput(model, top_k=2).predict_proba([[0]]).tolist()
    [[0.0, 0.375, 0.5]]
    >>> RestrictedOutput(model, label_only=True).predict_proba([[0]]).tolist()
    [[0.0, 0.0, 1.0]]
    """

    def __init__(
        self,
        model: Any,
        *,
        decimals: int | None = None,
        top_k: int | None = None,
        label_only: bool = False,
    ) -> None:
        if not hasattr(model, "predict_proba"):
            raise TypeError(f"model must have predict_proba, got {type(model).__name__}")
        if decimals is not None and (
            isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0
        ):
            raise ValueError(f"decimals must be an int of at least 0 or None, got {decimals!r}")
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1
        ):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        self.model, self.decimals, self.top_k = model, decimals, top_k
        self.label_only = bool(label_only)
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_

    @property
    def name(self) -> str:
        """What the answers are, in words: ``"label only"``, ``"top 1, 2 decimals"``, ..."""
        if self.label_only:
            return "label only"
        parts = []
        if self.top_k is not None:
            parts.append(f"top {self.top_k}")
        if self.decimals is not None:
            parts.append(f"{self.decimals} decimals")
        return ", ".join(parts) or "full probabilities"

    def restrict(self, probabilities: Any) -> np.ndarray:
        """Apply the settings to rows of probabilities (one column per class)."""
        return restrict_probabilities(
            probabilities, decimals=self.decimals, top_k=self.top_k, label_only=self.label_only
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """The model's probabilities, restricted."""
        return self.restrict(self.model.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The model's own class (restricting the answer does not change it)."""
        if hasattr(self.model, "predict"):
            return np.asarray(self.model.predict(X))
        probabilities = np.asarray(self.model.predict_proba(X))
        classes = getattr(self.model, "classes_", None)
        top = probabilities.argmax(axis=1)
        return top if classes is None else np.asarray(classes)[top]

    def __repr__(self) -> str:
        return f"RestrictedOutput({self.model!r}, {self.name})"


def probability_extraction_curve(
    model: Any,
    X_pool: Any,
    X_test: Any,
    y_test: Any,
    n_queries: Any,
    *,
    surrogate: Any = None,
    seed: int = 0,
) -> ExtractionCurve:
    """Like :func:`~.extraction.extraction_curve`, but the surrogate learns the probabilities.

    Each queried row enters the surrogate's training once per class it was given a probability
    for, labelled with that class and weighted by that probability: for a classifier fitted
    by log-loss (the default ``LogisticRegression``), this minimises the cross-entropy against
    the answers, so it uses everything an answer says. A label-only answer is one row of
    weight 1, which is the label-only extraction exactly.

    ``model`` needs ``predict_proba`` (and ``classes_`` if its classes are not ``0..k-1``);
    fidelity is agreement with ``model.predict`` on ``X_test``. The rest is as in
    :func:`~.extraction.extraction_curve`; ``surrogate`` must accept ``sample_weight``.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> target = RandomForestClassifier(50, random_state=0).fit(X[:600], y[:600])
    >>> soft = probability_extraction_curve(target, X[1200:], X[600:1200], y[600:1200], [30])
    >>> labels = probability_extraction_curve(RestrictedOutput(target, label_only=True),
    ...                                       X[1200:], X[600:1200], y[600:1200], [30])
    >>> soft.fidelity, labels.fidelity  # agreement with the target after 30 answers
    ((0.71,), (0.645,))
    """
    from sklearn.base import clone
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from opsloop.learn.robustness.membership import class_probabilities, model_classes

    if not hasattr(model, "predict_proba"):
        raise TypeError(f"model must have predict_proba, got {type(model).__name__}")
    X_pool, X_test, y_test = np.asarray(X_pool), np.asarray(X_test), np.asarray(y_test)
    budgets = [int(n) for n in np.atleast_1d(n_queries)]
    for n in budgets:
        if not 1 <= n <= len(X_pool):
            raise ValueError(f"n_queries: {n} is outside 1..{len(X_pool)} (the pool's rows)")
    if len(X_test) != len(y_test) or len(X_test) == 0:
        raise ValueError("X_test and y_test must have the same, non-zero number of rows")
    template = LogisticRegression(max_iter=2000) if surrogate is None else surrogate
    order = np.random.default_rng(seed).permutation(len(X_pool))
    asked = X_pool[order[: max(budgets)]]
    classes = model_classes(model, asked)
    answers = class_probabilities(model, asked, classes)
    target_predictions = np.asarray(model.predict(X_test))
    fidelity, accuracy, surrogates = [], [], []
    for n in budgets:
        rows, columns = np.nonzero(answers[:n] > 0)
        labels = classes[columns]
        if len(np.unique(labels)) > 1:
            copy = clone(template).fit(asked[rows], labels, sample_weight=answers[rows, columns])
        else:
            copy = DummyClassifier().fit(asked[:n], classes[answers[:n].argmax(axis=1)])
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


DEFAULT_RESTRICTIONS = ({"decimals": 1}, {"top_k": 1}, {"label_only": True})


def output_defence_effects(
    model: Any,
    members: Any,
    non_members: Any,
    attacker_rows: Any,
    *,
    restrictions: Sequence[dict[str, Any]] = DEFAULT_RESTRICTIONS,
    n_queries: Any = (50, 200),
    seed: int = 0,
) -> tuple[DefenceEffect, ...]:
    """Membership advantage and extraction fidelity with full answers and with each restriction.

    Parameters
    ----------
    model
        A fitted classifier with ``predict_proba``.
    members, non_members
        Pairs ``(X, y)``: the model's training rows and rows it never saw (non-members are
        also the rows extraction fidelity is measured on).
    attacker_rows
        The attacker's unlabelled rows ``X`` to query for the extraction.
    restrictions
        Keyword arguments of :class:`RestrictedOutput`, one defence each.
    n_queries
        Extraction budgets.
    seed
        Seeds the extraction's order of queries.

    Measures: ``clean accuracy`` (of the served class on the non-members), the
    ``membership advantage`` and ``AUC`` of the loss- and confidence-threshold attacks, and the
    ``extraction fidelity @N`` of :func:`probability_extraction_curve` for each ``N``.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> forest = RandomForestClassifier(50, random_state=0).fit(X[:600], y[:600])
    >>> (effect,) = output_defence_effects(
    ...     forest, (X[:600], y[:600]), (X[600:1200], y[600:1200]), X[1200:],
    ...     restrictions=[{"label_only": True}], n_queries=[30])
    >>> effect.to_frame().round(3).loc[:1, ["before", "after"]].values.tolist()
    [[0.895, 0.895], [0.598, 0.105]]

    The rows are the clean accuracy and the loss attack's membership advantage.

    Label-only answers leave the loss attack only the gap between training and test accuracy
    (1.0 - 0.895).
    """
    X_out, y_out = np.asarray(non_members[0]), np.asarray(non_members[1])
    served = [(RestrictedOutput(model, **settings), settings) for settings in restrictions]

    def measure(answering: Any) -> list[float]:
        values = [float(np.mean(np.asarray(answering.predict(X_out)) == y_out))]
        for score in ("loss", "confidence"):
            attack = threshold_attack(answering, members, non_members, score=score)
            values += [attack.advantage, attack.auc]
        curve = probability_extraction_curve(
            answering, attacker_rows, X_out, y_out, n_queries, seed=seed
        )
        return values + list(curve.fidelity)

    names = ["clean accuracy"]
    for score in ("loss", "confidence"):
        names += [
            f"membership advantage ({score} threshold)",
            f"membership AUC ({score} threshold)",
        ]
    names += [f"extraction fidelity @{int(n)}" for n in np.atleast_1d(n_queries)]
    before = tuple(measure(model))
    return tuple(
        DefenceEffect(
            defence=f"answers: {wrapper.name}",
            settings=tuple(settings.items()),
            measures=tuple(names),
            before=before,
            after=tuple(measure(wrapper)),
            model=wrapper,
        )
        for wrapper, settings in served
    )
