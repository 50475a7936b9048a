"""``analyze_model``: the analyses ``opsloop analyze`` runs, as one library call.

For a classifier: errors by tag against a baseline (human-level performance), accuracy by
slice with bootstrap intervals, fairness by tag, an error tree and SliceLine's slices with
the most errors. For a regressor: residual analysis, MAE by slice and fairness. For both,
unless ``explain=False``: importances, Shapley values, dependence and surrogates.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> frame = pd.DataFrame({"x": np.arange(40.0) % 8, "region": ["n", "s"] * 20})
>>> frame["y"] = (frame["x"] > 3).astype(int)
>>> frame.loc[[0, 2], "y"] = 1  # two labels no model of x gets right, both in region n
>>> model = LogisticRegression().fit(frame[["x"]], frame["y"])
>>> report = analyze_model(model, frame, "y", tags=["region"], explain=False)
>>> report.title, report.errors.errors, [(r.value, r.error_rate) for r in report.errors.rows]
('Analysis of model on data', 2, [('n', 0.1), ('s', 0.0)])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from opsloop.reports.analysis import AnalysisReport


def analyze_model(
    model: Any,
    frame: pd.DataFrame,
    label: str,
    tags: Sequence[str] = (),
    *,
    hlp: float | None = None,
    human_labels: str | None = None,
    order: str | None = None,
    seed: int = 0,
    explain: bool = True,
    model_name: str = "model",
    data_name: str = "data",
) -> AnalysisReport:
    """The analysis report of a fitted ``model`` on a labelled ``frame``.

    ``label`` is the label column and ``tags`` the columns errors are broken down by. The
    model's inputs are its ``feature_names_in_``, else every column but the label,
    ``human_labels`` and ``order``. ``hlp`` is a baseline (human-level) error rate, or
    ``human_labels`` a column of a second labeller's labels giving one per tag. ``order`` is a
    time column for the residuals' autocorrelation (regression). ``seed`` fixes the
    bootstraps, the error tree and the explanations. ``model_name`` and ``data_name`` go into
    the title and the error messages.

    A missing column, a missing label or a model whose ``predict`` fails raises
    :class:`ValueError` naming it.

    >>> import pandas as pd
    >>> analyze_model(None, pd.DataFrame({"a": [1]}), "y", data_name="loans.csv")
    Traceback (most recent call last):
    ...
    ValueError: loans.csv has no column 'y'
    """
    from sklearn.base import is_classifier
    from sklearn.metrics import accuracy_score, mean_absolute_error

    from opsloop import analysis

    # The functions, not ``analysis.<name>``: these two share their module's name, and
    # importing the module (as a doctest run does) rebinds the package attribute to it.
    from opsloop.analysis.fairness import fairness
    from opsloop.analysis.sliceline import sliceline

    tag_columns = list(tags)
    for column in [label, *tag_columns, *(c for c in (human_labels, order) if c)]:
        if column not in frame.columns:
            raise ValueError(f"{data_name} has no column {column!r}")
    inputs = [str(c) for c in getattr(model, "feature_names_in_", [])]
    if not inputs:
        skip = {label, *(c for c in (human_labels, order) if c)}
        inputs = [c for c in frame.columns if c not in skip]
    missing = [c for c in inputs if c not in frame.columns]
    if missing:
        raise ValueError(f"{data_name} lacks the model's input columns {missing}")
    if frame.empty:
        raise ValueError(f"{data_name} has no rows to analyse")
    unlabelled = np.flatnonzero(frame[label].isna().to_numpy())
    if unlabelled.size:
        first = ", ".join(str(i) for i in unlabelled[:5])
        raise ValueError(
            f"{data_name}: the label column {label!r} holds missing values in "
            f"{unlabelled.size} of {len(frame)} rows (rows {first}"
            f"{', ...' if unlabelled.size > 5 else ''}); drop or label them"
        )
    X = frame[inputs]
    y = frame[label].to_numpy()
    try:
        predicted = model.predict(X)
    except Exception as error:  # the model's own code: report it, naming the step
        raise ValueError(
            f"{model_name}: predict failed on {data_name} ({type(error).__name__}: {error})"
        ) from None
    tag_frame = frame[tag_columns] if tag_columns else None
    parts: dict[str, Any] = {"title": f"Analysis of {model_name} on {data_name}"}
    if is_classifier(model):
        baseline: Any = hlp
        if human_labels:
            baseline = analysis.hlp(frame[human_labels], y, tag_frame)
        wrong = (predicted != y).astype(float)
        if tag_frame is not None:
            parts["errors"] = analysis.error_analysis(y, predicted, tag_frame, hlp=baseline)
            parts["slices"] = analysis.slice_metrics(
                y,
                predicted,
                tag_frame,
                {"accuracy": accuracy_score},
                intersections=True,
                n_boot=100,
                seed=seed,
            )
            parts["fairness"] = fairness(y, predicted, tag_frame, **_fairness_task(model, y))
        slice_source = frame[[*dict.fromkeys([*tag_columns, *inputs])]]
        parts["tree"] = analysis.error_tree(slice_source, y, predicted, seed=seed)
        parts["found"] = sliceline(slice_source, wrong)
    else:
        left_out = frame.drop(columns=[*inputs, label])
        time = frame[order].to_numpy() if order else None
        parts["residuals"] = analysis.residual_analysis(
            y, predicted, left_out if left_out.shape[1] else None, order=time, seed=seed
        )
        if tag_frame is not None:
            parts["slices"] = analysis.slice_metrics(
                y, predicted, tag_frame, {"mae": mean_absolute_error}, n_boot=100, seed=seed
            )
            parts["fairness"] = fairness(y, predicted, tag_frame, task="regression")
    if explain:
        parts["explanation"] = analysis.explain(model, X, y, seed=seed)
    return AnalysisReport(**parts)


def _fairness_task(model: Any, y: np.ndarray) -> dict[str, Any]:
    """How fairness reads a classifier: its task and positive class, from the model first.

    A model of three classes is multiclass even where the data show only two of them. The
    positive class of a binary model is its second class, as in scikit-learn (with labels
    "no"/"yes" there is no class 1); a model without ``classes_`` takes the second of
    exactly two sorted label values.

    >>> from sklearn.linear_model import LogisticRegression
    >>> model = LogisticRegression().fit([[0.0], [1.0], [2.0]], ["a", "b", "c"])
    >>> _fairness_task(model, np.array(["a", "b"]))
    {'task': 'multiclass'}
    >>> _fairness_task(LogisticRegression().fit([[0.0], [1.0]], [1, 2]), np.array([1, 2]))
    {'pos_label': 2}
    >>> _fairness_task(object(), np.array(["yes", "no", "no"]))
    {'pos_label': 'yes'}
    """
    classes = np.asarray(getattr(model, "classes_", [])).tolist()
    if len(classes) > 2:
        return {"task": "multiclass"}
    if not classes:
        try:
            values = np.unique(y).tolist()
        except TypeError:  # labels of mixed types have no order: fairness decides alone
            values = []
        classes = values if len(values) == 2 else []
    return {"pos_label": classes[1]} if len(classes) == 2 else {}
