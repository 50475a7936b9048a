"""What SMOTE changed, slice by slice: a model's metrics per slice before and after oversampling.

Oversampling is a remediation for a class (or a slice) the training data has too few rows of;
its effect is not one number. :func:`oversampling_effect` fits the same estimator twice, on the
training rows and on them plus :func:`~opsloop.learn.oversampling.smote`'s rows, and measures
both on the same held-out rows with :func:`opsloop.analysis.slices.slice_metrics`: every metric
on all the rows, on every tag value and, when asked, on intersections of two tags. Both tables
are bootstrapped with the same seed over the same rows, so their intervals come from the same
resamples.

>>> import numpy as np
>>> from sklearn.datasets import make_classification
>>> from sklearn.linear_model import LogisticRegression
>>> X, y = make_classification(n_samples=2000, n_features=4, weights=[0.9], random_state=0)
>>> region = np.where(X[1000:, 0] > 0, "high", "low")
>>> effect = oversampling_effect(LogisticRegression(), (X[:1000], y[:1000]),
...                              (X[1000:], y[1000:]), {"x0": region}, "recall_score",
...                              n_boot=0)
>>> effect.to_frame()[["value", "before", "after"]].round(3).values.tolist()
[['(all)', 0.902, 0.931], ['high', 0.973, 0.973], ['low', 0.704, 0.815]]
>>> effect.added
((1, 788),)

The minority's recall rises where it was lowest (``x0 <= 0``) and stays where it was high.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opsloop.analysis.slices import SliceMetrics, slice_metrics
from opsloop.learn.labelled_rows import labelled_rows
from opsloop.learn.oversampling import smote

_KEYS = ["tag", "value", "metric"]


@dataclass(frozen=True)
class OversamplingEffect:
    """Metrics per slice of a model fitted without and with SMOTE rows.

    ``added`` is the count of synthetic rows per class; ``before`` and ``after`` are the two
    :class:`~opsloop.analysis.slices.SliceMetrics`; ``model`` is the estimator fitted on the
    oversampled rows.
    """

    added: tuple[tuple[Any, int], ...]
    before: SliceMetrics
    after: SliceMetrics
    model: Any = field(repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per slice and metric: ``tag``, ``value``, ``metric``, ``n``, ``before``,
        ``after``, ``change``, both intervals and ``small`` (too few rows to trust)."""
        columns = ["value_of_metric", "ci_low", "ci_high"]
        before = self.before.to_frame().rename(
            columns={c: f"before_{c}" for c in columns} | {"value_of_metric": "before"}
        )
        after = self.after.to_frame()[_KEYS + columns].rename(
            columns={c: f"after_{c}" for c in columns} | {"value_of_metric": "after"}
        )
        frame = before.merge(after, on=_KEYS, how="left", validate="one_to_one")
        frame["change"] = frame["after"] - frame["before"]
        order = [*_KEYS, "n", "before", "after", "change"]
        order += ["before_ci_low", "before_ci_high", "after_ci_low", "after_ci_high", "small"]
        return frame[order]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the model left out)."""
        return {
            "added": {str(label): count for label, count in self.added},
            "rows": self.to_frame()
            .astype(object)
            .where(lambda f: f.notna(), None)
            .to_dict("records"),
        }

    def _repr_html_(self) -> str:
        added = ", ".join(f"{count} of class {label}" for label, count in self.added)
        return f"<p>SMOTE added {added or 'no rows'}</p>" + self.to_frame().to_html(index=False)


def oversampling_effect(
    model: Any,
    train: Any,
    test: Any,
    tags: Any,
    metrics: Any,
    *,
    n_new: Mapping[Any, int] | None = None,
    k_neighbors: int = 5,
    within: Any = None,
    seed: int = 0,
    **slice_options: Any,
) -> OversamplingEffect:
    """Fit ``model`` on ``train`` and on ``train`` plus SMOTE rows; slice metrics of both.

    Parameters
    ----------
    model
        An unfitted scikit-learn estimator; it is cloned for each fit.
    train, test
        Pairs ``(X, y)`` of numeric rows: the rows to fit on (and oversample) and the held-out
        rows the metrics are taken on.
    tags
        The slices of ``test``'s rows (a DataFrame or a mapping of name to one value per row),
        as :func:`~opsloop.analysis.slices.slice_metrics` takes them.
    metrics
        A metric or metrics of ``(y_true, y_pred)``, or scikit-learn metric names.
    n_new, k_neighbors, within
        As :func:`~opsloop.learn.oversampling.smote` takes them (``within`` is a mask of
        ``train``'s rows).
    seed
        Seeds SMOTE and both tables' bootstrap.
    slice_options
        ``intersections``, ``bins``, ``n_boot``, ``confidence``, ``min_size`` for
        :func:`~opsloop.analysis.slices.slice_metrics`.
    """
    from sklearn.base import clone

    X_train, y_train = labelled_rows("train", train)
    X_test, y_test = labelled_rows("test", test)
    unknown = sorted(
        set(slice_options) - {"intersections", "bins", "n_boot", "confidence", "min_size"}
    )
    if unknown:
        raise TypeError(f"oversampling_effect got unknown slice options {unknown}")
    X_more, y_more = smote(
        X_train, y_train, n_new=n_new, k_neighbors=k_neighbors, within=within, seed=seed
    )
    labels, counts = np.unique(y_more[len(y_train) :], return_counts=True)
    plain = clone(model).fit(X_train, y_train)
    oversampled = clone(model).fit(X_more, y_more)
    measured = dict(seed=seed, **slice_options)
    return OversamplingEffect(
        added=tuple(
            (label, int(count)) for label, count in zip(labels.tolist(), counts, strict=True)
        ),
        before=slice_metrics(y_test, plain.predict(X_test), tags, metrics, **measured),
        after=slice_metrics(y_test, oversampled.predict(X_test), tags, metrics, **measured),
        model=oversampled,
    )
