"""Model-based importance: fit a model on the columns still in the funnel and keep the ones
it needs, measured by permutation importance on held-out rows (or by the model's own
importances).

Permutation importance is the default because
impurity importances favour columns with many distinct values and are measured on the rows
the trees were grown on. The rows are split once (``test_size`` held out, stratified for
classification); with ``max_rows`` set, a random subset of that many rows is used first, which
bounds the cost of the step on a large table (20,000 rows unless told otherwise).

:func:`permutation_scores` equals scikit-learn's ``permutation_importance`` (same shuffles from
the same seed, same scores) for estimators scored by accuracy or R², but predicts each
column's repeats in one call on the stacked shuffled copies: one call per column instead of
one per column and repeat, which is most of the step's time for a fast model. Other
estimators go through ``permutation_importance`` itself.

The model sees numeric columns as floats with NaN for missing values and categorical columns
as their integer codes (NaN for missing). The default model is scikit-learn's histogram
gradient boosting, which reads both natively (the codes as categories, not as numbers) and
fits and predicts a hundred thousand rows in seconds where a random forest of full-depth
trees takes minutes, which matters because permutation importance predicts the held-out rows
``n_repeats`` times per column. A random forest (the usual choice for this step) or any other
scikit-learn estimator can be passed instead; one that refuses NaN needs its own imputer (a
``Pipeline``). Text columns are not given to the model and stay.

>>> import numpy as np, pandas as pd
>>> from opsloop.data.selection.columns import prepare_columns
>>> from opsloop.data.selection.target import prepare_target
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=600)
>>> y = (x > 0).astype(int)
>>> frame = pd.DataFrame({"x": x, "noise": rng.normal(size=600)})
>>> step = ModelImportance()
>>> result = step.run(prepare_columns(frame), ["x", "noise"], prepare_target(y, 600), 0)
>>> [d.column for d in result.drops], result.measured["importance"]["x"] > 0.3
(['noise'], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, clone, is_classifier, is_regressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

from opsloop.data.selection.columns import CATEGORICAL, NUMERIC, FeatureColumns
from opsloop.data.selection.report import Drop
from opsloop.data.selection.steps import Step, StepResult, check_count, check_number
from opsloop.data.selection.target import Target

METHODS = ("permutation", "model")
#: Categorical columns with more levels than this are given to the default model as numbers.
MAX_CATEGORY_LEVELS = 255


def model_matrix(columns: FeatureColumns, names: list[str], rows: np.ndarray) -> np.ndarray:
    """The model's input: ``rows`` of ``names``, numbers as floats and categories as codes,
    NaN where missing.

    >>> import pandas as pd
    >>> from opsloop.data.selection.columns import prepare_columns
    >>> c = prepare_columns(pd.DataFrame({"x": [0.5, None], "c": pd.Categorical(["b", None])}))
    >>> model_matrix(c, ["x", "c"], np.arange(2)).tolist()
    [[0.5, 0.0], [nan, nan]]
    """
    matrix = np.empty((rows.size, len(names)), order="F")
    for j, name in enumerate(names):
        if columns.kinds[name] == NUMERIC:
            matrix[:, j] = columns.values[name][rows]
        else:
            codes = columns.codes[name][rows]
            matrix[:, j] = np.where(codes >= 0, codes, np.nan)
    return matrix


@dataclass(frozen=True)
class ModelImportance(Step):
    """Keep the columns a model needs: the ``k`` most important, those whose importance
    exceeds ``threshold``, or both (the top ``k`` of those above the threshold).

    * ``estimator``: any scikit-learn classifier or regressor (cloned, never changed), e.g.
      ``RandomForestClassifier(n_jobs=-1)``; the default is
      ``HistGradientBoostingClassifier`` (or ``Regressor``) with the categorical columns
      declared categorical and the funnel's random state.
    * ``method``: ``"permutation"`` (default): the mean drop of the estimator's score over
      ``n_repeats`` shuffles of each column on the held-out ``test_size`` of the rows;
      ``"model"``: the fitted estimator's ``feature_importances_`` (or ``|coef_|``).
    * ``threshold`` (default 0) and ``n_std`` (default 2): a column stays when its mean
      importance minus ``n_std`` standard deviations over the repeats is above
      ``threshold``, i.e. when shuffling it hurts the model by more than chance would;
      ``threshold=None`` turns the cut off. For ``method="model"`` the standard deviation is
      0.
    * ``max_rows`` (default 20,000): fit and score on at most this many rows, drawn at random
      (``None`` for all). Importance ranks settle long before that, and the step's cost
      grows with rows x columns x repeats; raise it when a class is rare.
    * ``n_jobs``: workers for the permutations (scikit-learn's meaning).

    >>> ModelImportance(k=20).describe()
    'keep the 20 most important columns of those with importance above 0 (permutation)'
    """

    estimator: Any = None
    method: str = "permutation"
    k: int | None = None
    threshold: float | None = 0.0
    n_std: float = 2.0
    n_repeats: int = 5
    test_size: float = 0.25
    max_rows: int | None = 20_000
    n_jobs: int | None = None
    name: ClassVar[str] = "model_importance"
    needs_target: ClassVar[bool] = True

    def check(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"{self.name}: method must be one of {METHODS}, got {self.method!r}")
        if self.estimator is not None and not _is_supervised(self.estimator):
            raise TypeError(
                f"{self.name}: estimator must be a scikit-learn classifier or regressor, "
                f"got {type(self.estimator).__name__}"
            )
        if self.k is not None:
            check_count(self.name, "k", self.k)
        if self.threshold is not None:
            check_number(self.name, "threshold", self.threshold, -np.inf)
        check_number(self.name, "n_std", self.n_std, 0.0)
        check_count(self.name, "n_repeats", self.n_repeats)
        check_number(
            self.name, "test_size", self.test_size, 0.0, 1.0, low_open=True, high_open=True
        )
        if self.max_rows is not None:
            check_count(self.name, "max_rows", self.max_rows, 10)
        if self.k is None and self.threshold is None:
            raise ValueError(f"{self.name}: give k, threshold or both")

    def describe(self) -> str:
        parts = []
        if self.k is not None:
            parts.append(f"keep the {self.k} most important columns")
        if self.threshold is not None:
            cut = f"importance above {self.threshold:g}"
            parts.append(f"of those with {cut}" if parts else f"keep columns with {cut}")
        return " ".join(parts) + f" ({self.method})"

    def _estimator(self, task: str, categorical: list[bool], random_state: int | None) -> Any:
        if self.estimator is not None:
            model = clone(self.estimator)
            if (task == "classification") != is_classifier(model):
                kind = "classifier" if task == "classification" else "regressor"
                raise ValueError(
                    f"{self.name}: the target calls for a {kind}, got "
                    f"{type(self.estimator).__name__}"
                )
            return model
        boosting = (
            HistGradientBoostingClassifier
            if task == "classification"
            else HistGradientBoostingRegressor
        )
        return boosting(
            categorical_features=np.asarray(categorical, dtype=bool) if any(categorical) else None,
            random_state=random_state,
        )

    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        if target is None:
            raise ValueError(f"{self.name} needs a target: pass y to fit")
        names = [n for n in active if columns.kinds[n] in (NUMERIC, CATEGORICAL)]
        if not names:
            return StepResult()
        y = target.codes if target.task == "classification" else target.numbers
        rows = np.arange(columns.n_rows)
        rng = np.random.default_rng(random_state)
        if self.max_rows is not None and rows.size > self.max_rows:
            rows = np.sort(rng.choice(rows, self.max_rows, replace=False))
        stratify = y[rows] if target.task == "classification" else None
        if stratify is not None and np.bincount(stratify).min(initial=rows.size) < 2:
            stratify = None  # a class with one row cannot be split in two
        try:
            train, test = train_test_split(
                rows, test_size=self.test_size, random_state=random_state, stratify=stratify
            )
        except ValueError as error:
            raise ValueError(
                f"{self.name}: cannot hold out {self.test_size:g} of {rows.size} rows: {error}"
            ) from error
        # Histogram boosting bins a category per level, up to 255 of them.
        categorical = [
            columns.kinds[n] == CATEGORICAL and columns.levels[n] <= MAX_CATEGORY_LEVELS
            for n in names
        ]
        model = self._estimator(target.task, categorical, random_state)
        model.fit(model_matrix(columns, names, train), y[train])
        if self.method == "permutation":
            importances = permutation_scores(
                model,
                model_matrix(columns, names, test),
                y[test],
                n_repeats=self.n_repeats,
                random_state=random_state,
                n_jobs=self.n_jobs,
            )
            mean, std = importances.mean(axis=1), importances.std(axis=1)
        else:
            mean = _model_importances(model, len(names))
            std = np.zeros_like(mean)
        mask = np.ones(len(names), dtype=bool)
        if self.threshold is not None:
            mask &= mean - self.n_std * std > self.threshold
        if self.k is not None and mask.sum() > self.k:
            ranked = np.flatnonzero(mask)[np.argsort(-mean[mask], kind="mergesort")]
            mask[ranked[self.k :]] = False
        statistic = f"{self.method}_importance"
        kept = mean[mask]
        bar = float(kept.min()) if kept.size else None
        drops = []
        for index in np.flatnonzero(~mask):
            value = float(mean[index])
            below = self.threshold is not None and value - self.n_std * std[index] <= self.threshold
            if below:
                decided = float(self.threshold)
                reason = (
                    f"{statistic} {value:.4g} (sd {std[index]:.2g}) is not above "
                    f"{self.threshold:g} by {self.n_std:g} sd"
                )
            else:
                decided = bar
                reason = f"{statistic} {value:.4g} is outside the top {self.k}"
            drops.append(Drop(names[index], self.name, statistic, value, decided, reason=reason))
        measured = {name: float(m) for name, m in zip(names, mean, strict=True)}
        return StepResult(tuple(drops), {"importance": measured})


def _is_supervised(estimator: Any) -> bool:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        return False
    try:
        return is_classifier(estimator) or is_regressor(estimator)
    except AttributeError:  # not a scikit-learn estimator: no tags to read
        return False


def permutation_scores(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    n_repeats: int = 5,
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Drop of the model's score when each column is shuffled: ``(n_columns, n_repeats)``,
    equal to ``permutation_importance(model, X, y, ...).importances``.

    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> model = LinearRegression().fit(X, 3 * X[:, 0])
    >>> permutation_scores(model, X, 3 * X[:, 0], n_repeats=3, random_state=0).shape
    (2, 3)
    """
    score = type(model).score
    if score is ClassifierMixin.score:
        metric = accuracy_score
    elif score is RegressorMixin.score:
        metric = r2_score
    else:
        result = permutation_importance(
            model, X, y, n_repeats=n_repeats, random_state=random_state, n_jobs=n_jobs
        )
        return result.importances
    baseline = metric(y, model.predict(X))
    # The seed stream of scikit-learn's permutation_importance: one draw for all columns,
    # then one RandomState per column whose shuffles compound over the repeats.
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    n = X.shape[0]
    out = np.empty((X.shape[1], n_repeats))
    stacked = np.tile(X, (n_repeats, 1))
    for j in range(X.shape[1]):
        generator = np.random.RandomState(seed)
        order = np.arange(n)
        column = X[:, j].copy()
        for r in range(n_repeats):
            generator.shuffle(order)
            column = column[order]
            stacked[r * n : (r + 1) * n, j] = column
        predicted = model.predict(stacked)
        for r in range(n_repeats):
            out[j, r] = baseline - metric(y, predicted[r * n : (r + 1) * n])
        stacked[:, j] = np.tile(X[:, j], n_repeats)
    return out


def _model_importances(model: Any, n_features: int) -> np.ndarray:
    """The fitted model's own importances: ``feature_importances_`` or ``|coef_|``."""
    fitted = model[-1] if hasattr(model, "steps") else model
    if hasattr(fitted, "feature_importances_"):
        values = np.asarray(fitted.feature_importances_, dtype=np.float64)
    elif hasattr(fitted, "coef_"):
        coef = np.abs(np.asarray(fitted.coef_, dtype=np.float64))
        values = coef.reshape(-1, n_features).mean(axis=0) if coef.ndim > 1 else coef
    else:
        raise ValueError(
            f"model_importance: {type(fitted).__name__} has neither feature_importances_ nor "
            "coef_; use method='permutation'"
        )
    if values.shape != (n_features,):
        raise ValueError(
            f"model_importance: the model reported {values.size} importances for "
            f"{n_features} columns"
        )
    return values
