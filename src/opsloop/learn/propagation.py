"""Semi-supervised labelling: spread a few known labels to unlabelled rows, and say how sure it is.

The propagation itself is scikit-learn's :class:`~sklearn.semi_supervised.LabelSpreading` or
:class:`~sklearn.semi_supervised.LabelPropagation`; this module adds the report a person needs
before trusting the new labels: how many rows got a label, with what confidence (the largest
entry of the row's label distribution), and, where true labels were held back, how many are right
at each confidence level. Given a run, :func:`propagate_labels` logs the model's settings, the
report's counts and accuracies, the report ``propagation.json`` and every row's label and
confidence in ``propagated_labels.csv``.

Labels may be numbers or text (iris' ``"setosa"``). scikit-learn takes only numbers with
``-1`` for an unlabelled row: an array of text labels holding a marker such as
``"unlabeled"`` is fitted with the marker as one more class, and a list mixing text with
``-1`` is refused as of "unknown" type. Here text labels are numbered in sorted order
before the fit (the classes scikit-learn would sort them into) and named again after it, so
the labels and confidences are those of scikit-learn on the numbered labels; the marker is
``unlabelled`` (``-1``, for text the text ``"-1"``, by default).

scikit-learn's default :class:`~sklearn.semi_supervised.LabelSpreading` (an RBF kernel
:math:`e^{-\\gamma \\lVert x - x' \\rVert^2}` with ``gamma=20``) is the default here too, so
the same parameters give the same labels. It assumes features of unit scale: on raw features
(``load_digits``' pixels 0..16, ``load_wine``, ``load_breast_cancer``) nearly every weight
between
two distinct rows underflows to 0, so no label spreads. scikit-learn then gives every such
row the first class (10% right on digits); here those rows stay unlabelled, counted in
``n_unreached``, and a warning says what to change: scale ``X`` (``StandardScaler``: 96.5%
of digits' propagated labels right with 10% labelled) or take ``kernel="knn"`` (96.5%).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.semi_supervised import LabelSpreading
from sklearn.semi_supervised._label_propagation import BaseLabelPropagation

from opsloop.learn.feature_rows import finite_rows
from opsloop.learn.run_log import (
    RunLog,
    checked_run,
    log_csv,
    log_json,
    log_metrics,
    log_sklearn_model,
)

UNLABELLED = -1


@dataclass(frozen=True)
class PropagationResult:
    """Labels for every row, each row's confidence, and the summary of what was propagated.

    ``labels`` keeps the given labels and fills the unlabelled rows the graph reached (those
    it did not reach keep the ``unlabelled`` marker); ``confidence`` is the
    largest probability of each row's label distribution (0 for rows the graph did not reach);
    ``accuracy`` and ``accuracy_at`` are ``None`` unless true labels were given. For text
    labels, ``model`` was fitted on their numbers: class ``i`` is ``classes[i]``.
    """

    method: str
    labels: np.ndarray = field(repr=False)
    confidence: np.ndarray = field(repr=False)
    propagated: np.ndarray = field(repr=False)
    n_rows: int
    n_labelled: int
    n_propagated: int
    n_unreached: int
    mean_confidence: float | None
    count_at: dict[float, int]
    accuracy: float | None
    accuracy_at: dict[float, float | None] | None
    per_class: pd.DataFrame = field(repr=False)
    model: Any = field(repr=False, compare=False)
    classes: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (arrays and the model left out)."""
        return {
            "method": self.method,
            "n_rows": self.n_rows,
            "n_labelled": self.n_labelled,
            "n_propagated": self.n_propagated,
            "n_unreached": self.n_unreached,
            "mean_confidence": self.mean_confidence,
            "count_at": {str(k): v for k, v in self.count_at.items()},
            "accuracy": self.accuracy,
            "accuracy_at": None
            if self.accuracy_at is None
            else {str(k): v for k, v in self.accuracy_at.items()},
            "per_class": [
                {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}
                for row in self.per_class.to_dict(orient="records")
            ],
        }

    def to_frame(self) -> pd.DataFrame:
        """Per class: rows given, rows propagated, their mean confidence (and accuracy)."""
        return self.per_class.copy()


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in levels)
    if any(not 0.0 <= v <= 1.0 for v in out):
        raise ValueError(f"confidence_levels must lie in [0, 1], got {list(levels)}")
    return out


def propagate_labels(
    X: np.ndarray,
    y: np.ndarray,
    *,
    model: BaseLabelPropagation | None = None,
    y_true: np.ndarray | None = None,
    confidence_levels: Sequence[float] = (0.5, 0.8, 0.95),
    unlabelled: Any = UNLABELLED,
    run: RunLog | None = None,
) -> PropagationResult:
    """Fit ``model`` (default ``LabelSpreading()``) on ``X`` with ``y`` (``unlabelled``, -1
    by default, marks a row without a label).

    ``y`` holds numbers or text, of one type (a mix is refused); classes keep their own
    values, numbered in sorted order for scikit-learn. For text, the marker is compared as
    text (``-1`` matches ``-1`` among text labels of an object array, and ``"-1"``). A
    missing marker (``None``, NaN, ``pd.NA``) takes every missing label as unlabelled;
    under any other marker a missing label is refused. ``X`` must hold finite
    numbers, on a common scale for the default RBF kernel (see the module).

    ``y_true``, when given, holds the true label of every row; only the unlabelled rows are
    scored against it. ``confidence_levels`` sets the thresholds of ``count_at``/``accuracy_at``.
    ``run`` (see :class:`~opsloop.learn.run_log.RunLog`) receives the model's params, the
    counts, confidences and accuracies (``propagated_at_<level>``, ``accuracy_at_<level>``),
    ``propagation.json`` and ``propagated_labels.csv``.

    >>> from sklearn.datasets import make_moons
    >>> X, y_true = make_moons(200, noise=0.05, random_state=0)
    >>> y = np.full(200, -1)
    >>> y[:10] = y_true[:10]
    >>> from sklearn.semi_supervised import LabelPropagation
    >>> knn = LabelPropagation(kernel="knn", n_neighbors=7, max_iter=2000)
    >>> result = propagate_labels(X, y, y_true=y_true, model=knn)
    >>> result.n_propagated, result.accuracy
    (190, 1.0)

    Text labels, with their own marker:

    >>> named = np.where(y == -1, "unknown", np.array(["left", "right"])[y_true])
    >>> texts = propagate_labels(X, named, model=knn, unlabelled="unknown")
    >>> (texts.labels == np.array(["left", "right"])[result.labels]).all()
    np.True_
    """
    run = checked_run(run)
    if model is None:
        model = LabelSpreading()
    if not isinstance(model, BaseLabelPropagation):
        raise TypeError(
            f"model must be a scikit-learn LabelSpreading or LabelPropagation, got {model!r}"
        )
    levels = _check_levels(confidence_levels)
    X = finite_rows("X", X)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one label per row of X ({X.shape[0]}), got {y.shape}")
    given, classes, codes = _label_codes(y, unlabelled)
    if y_true is not None:
        y_true = np.asarray(y_true)
        if y_true.shape != y.shape:
            raise ValueError(f"y_true must have the shape of y {y.shape}, got {y_true.shape}")
    fitted = clone(model).fit(X, y if codes is None else codes)
    distributions = fitted.label_distributions_
    unreached = ~np.isfinite(distributions).all(axis=1) | (distributions.sum(axis=1) == 0)
    confidence = np.where(unreached, 0.0, np.nan_to_num(distributions).max(axis=1))
    transduced = fitted.transduction_ if classes is None else classes[fitted.transduction_]
    propagated = ~given & ~unreached
    # Labels keep y's own type (text, object, numbers) and its marker where nothing reached:
    # scikit-learn's transduction gives a row the graph never reached the first class (the
    # argmax of an all-zero distribution); such a row has no label, so it stays unlabelled.
    labels = y.copy()
    labels[propagated] = transduced[propagated]
    _warn_unreached(fitted, int((unreached & ~given).sum()), int((~given).sum()))

    conf_prop = confidence[propagated]
    count_at = {lv: int((conf_prop >= lv).sum()) for lv in levels}
    accuracy = accuracy_at = None
    correct = None
    if y_true is not None:
        correct = labels[propagated] == y_true[propagated]
        accuracy = float(correct.mean()) if correct.size else None
        accuracy_at = {
            lv: (float(correct[conf_prop >= lv].mean()) if count_at[lv] else None) for lv in levels
        }

    frame = pd.DataFrame({"label": labels[propagated], "confidence": conf_prop})
    if correct is not None:
        frame["correct"] = correct
    per_class = frame.groupby("label").agg(
        n_propagated=("confidence", "size"), mean_confidence=("confidence", "mean")
    )
    if correct is not None:
        per_class["accuracy"] = frame.groupby("label")["correct"].mean()
    given_counts = (
        pd.Series(y[given] if classes is None else classes[codes[given]])
        .value_counts()
        .rename("n_labelled")
    )
    per_class = (
        pd.concat([given_counts, per_class], axis=1)
        .reindex(fitted.classes_ if classes is None else classes)
        .fillna({"n_labelled": 0, "n_propagated": 0})
        .astype({"n_labelled": int, "n_propagated": int})
        .rename_axis("label")
        .reset_index()
    )
    per_class = per_class.astype(object).where(per_class.notna(), None)
    result = PropagationResult(
        method=type(fitted).__name__,
        labels=labels,
        confidence=confidence,
        propagated=propagated,
        n_rows=int(y.size),
        n_labelled=int(given.sum()),
        n_propagated=int(propagated.sum()),
        n_unreached=int((unreached & ~given).sum()),
        mean_confidence=float(conf_prop.mean()) if conf_prop.size else None,
        count_at=count_at,
        accuracy=accuracy,
        accuracy_at=accuracy_at,
        per_class=per_class,
        model=fitted,
        classes=classes,
    )
    if run is not None:
        _log_propagation(run, result, levels)
    return result


def _is_missing(value: Any) -> bool:
    """Whether ``value`` is a missing-value marker: None, NaN or pandas' NA."""
    try:
        return bool(pd.api.types.is_scalar(value) and pd.isna(value))
    except (TypeError, ValueError):
        return False


def _label_kind(value: Any) -> str:
    if isinstance(value, str | np.str_ | bytes | np.bytes_):
        return "text"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    return type(value).__name__


def _label_codes(
    y: np.ndarray, unlabelled: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Which rows are labelled; for labels scikit-learn cannot take as they are (text, an
    object array, or a marker other than -1), the sorted classes, of the labels' own type,
    and each row's number (-1 unlabelled)."""
    text = y.dtype.kind in "OUS"
    missing = pd.isna(y) if y.dtype.kind in "Of" else np.zeros(len(y), dtype=bool)
    if _is_missing(unlabelled):
        # NaN never equals NaN, and pd.NA has no truth value: missing values are the marker
        given = ~missing
    elif y.dtype.kind == "O":
        marker = str(unlabelled)
        given = ~missing & np.fromiter(
            (not (v == unlabelled or str(v) == marker) for v in y), dtype=bool, count=len(y)
        )
    elif text:
        given = y.astype(str) != str(unlabelled)
    else:
        given = np.asarray(y != unlabelled, dtype=bool)
    if not given.any():
        raise ValueError(f"y has no labelled rows (every entry is the marker {unlabelled!r})")
    if text and given.all():
        # a text marker such as "unknown" would otherwise be taken for one more class
        raise ValueError(
            f"y: no row holds the marker of unlabelled rows {unlabelled!r}; name the marker "
            "your text labels use with unlabelled=, e.g. unlabelled='unknown'"
        )
    if (given & missing).any():
        row = int(np.flatnonzero(given & missing)[0])
        raise ValueError(
            f"y: row {row} is missing ({y[row]}) and unlabelled={unlabelled!r}; pass "
            "unlabelled=None to take missing labels as unlabelled"
        )
    if y.dtype.kind == "f" and not np.isfinite(y[given]).all():
        row = int(np.flatnonzero(given & ~np.isfinite(y))[0])
        raise ValueError(f"y: row {row} is infinite ({y[row]}); labels must be finite")
    if y.dtype.kind in "iub" and not _is_missing(unlabelled) and unlabelled == UNLABELLED:
        return given, None, None  # scikit-learn's own convention: labels passed unchanged
    values = y[given]
    if y.dtype.kind == "O":
        kinds = sorted({_label_kind(v) for v in values})
        if len(kinds) > 1:
            raise ValueError(
                f"y mixes label types ({' and '.join(kinds)}); give every labelled row the "
                "same type (all numbers or all text) and mark unlabelled rows with unlabelled="
            )
        # the labels' own type (numbers stay numbers), so classes sort as their values do
        values = np.asarray(values.tolist())
    classes = np.unique(values)
    codes = np.full(len(y), UNLABELLED, dtype=np.int64)
    codes[given] = np.searchsorted(classes, values)
    return given, classes, codes


def _warn_unreached(fitted: BaseLabelPropagation, n_unreached: int, n_unlabelled: int) -> None:
    """Say why rows were not reached when the RBF kernel's weights underflowed for most."""
    if fitted.kernel != "rbf" or n_unreached <= n_unlabelled // 2:
        return
    warnings.warn(
        f"{n_unreached} of {n_unlabelled} unlabelled rows got no label: the RBF kernel "
        f"exp(-gamma * squared distance) with gamma={fitted.gamma} is 0 between rows farther "
        "apart than about 27 / sqrt(gamma). Scale X (sklearn.preprocessing.StandardScaler), "
        "lower gamma, or use kernel='knn'",
        UserWarning,
        stacklevel=3,
    )


def _log_propagation(run: RunLog, result: PropagationResult, levels: tuple[float, ...]) -> None:
    run.log_params(
        {
            "method": result.method,
            **{f"model.{k}": v for k, v in sorted(result.model.get_params().items())},
            "confidence_levels": ",".join(str(v) for v in levels),
        }
    )
    metrics: dict[str, float | None] = {
        "n_rows": result.n_rows,
        "n_labelled": result.n_labelled,
        "n_propagated": result.n_propagated,
        "n_unreached": result.n_unreached,
        "mean_confidence": result.mean_confidence,
        "accuracy": result.accuracy,
    }
    for level in levels:
        metrics[f"propagated_at_{level}"] = result.count_at[level]
        if result.accuracy_at is not None:
            metrics[f"accuracy_at_{level}"] = result.accuracy_at[level]
    log_metrics(run, metrics)
    log_json(run, result.to_dict(), "propagation.json")
    log_sklearn_model(run, result.model, "model.skops")
    rows = pd.DataFrame(
        {
            "row": np.arange(result.n_rows),
            "label": result.labels,
            "confidence": result.confidence,
            "propagated": result.propagated,
        }
    )
    log_csv(run, rows, "propagated_labels.csv")
