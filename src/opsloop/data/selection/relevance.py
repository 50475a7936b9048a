"""Relevance: keep the columns most related to the target by a univariate test, with
scikit-learn's scoring functions and its ``SelectKBest`` / ``SelectPercentile`` rules.

Each column is scored alone, so the step works on blocks of columns and never holds the
encoded frame. Encoding, the same for every scoring function:

* a numeric column is its float values, missing values filled with the column's mean (what
  ``SimpleImputer`` does; the scoring functions refuse NaN);
* a categorical column is one indicator per level (a missing value indicates none), each
  scored, and the column's score is its best level's: a column is as relevant as the level
  that tells most about the target. The indicators are discrete for mutual information. The
  best of many levels is the best of many tries, so with no signal at all a column of twenty
  levels outscores a numeric column; a column whose signal is weak and non-linear can rank
  below such noise, which is why ``k`` should leave room before the model step.

Text columns are not scored; the funnel reports them as not judged. ``scores`` equal the
scoring function's output on that encoding, and the kept columns equal ``SelectKBest`` /
``SelectPercentile`` fitted on the column scores (NaN scores rank last, as there). Mutual
information draws its noise per block of columns, so its scores match one scikit-learn call
on a block, not on the whole frame.

>>> import numpy as np, pandas as pd
>>> from opsloop.data.selection.columns import prepare_columns
>>> from opsloop.data.selection.target import prepare_target
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 400)
>>> frame = pd.DataFrame({"signal": y + rng.normal(size=400), "noise": rng.normal(size=400)})
>>> step = Relevance(k=1)
>>> result = step.run(prepare_columns(frame), ["signal", "noise"], prepare_target(y, 400), 0)
>>> [d.column for d in result.drops], result.measured["relevance"]["signal"] > 50
(['noise'], True)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn import feature_selection

from opsloop.data.selection.columns import CATEGORICAL, NUMERIC, FeatureColumns
from opsloop.data.selection.report import Drop
from opsloop.data.selection.steps import Step, StepResult, check_count, check_number
from opsloop.data.selection.target import Target

#: The scikit-learn scoring functions accepted by name.
SCORE_FUNCTIONS: dict[str, Callable] = {
    "chi2": feature_selection.chi2,
    "f_classif": feature_selection.f_classif,
    "f_regression": feature_selection.f_regression,
    "mutual_info_classif": feature_selection.mutual_info_classif,
    "mutual_info_regression": feature_selection.mutual_info_regression,
}
_MUTUAL_INFO = {"mutual_info_classif", "mutual_info_regression"}
_FOR_TASK = {
    "chi2": "classification",
    "f_classif": "classification",
    "mutual_info_classif": "classification",
    "f_regression": "regression",
    "mutual_info_regression": "regression",
}
#: Numeric columns scored per call.
BLOCK_COLUMNS = 64


def filled(values: np.ndarray) -> np.ndarray:
    """A copy of ``values`` with NaN replaced by the mean of the rest (0 when all missing).

    >>> filled(np.array([1.0, np.nan, 3.0])).tolist()
    [1.0, 2.0, 3.0]
    """
    missing = np.isnan(values)
    if not missing.any():
        return values
    out = values.copy()
    out[missing] = values[~missing].mean() if (~missing).any() else 0.0
    return out


def indicators(codes: np.ndarray, levels: int) -> np.ndarray:
    """One float column per level: 1 where the row has that level.

    >>> indicators(np.array([0, 2, -1]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    out = np.zeros((codes.size, max(levels, 1)))
    present = codes >= 0
    out[np.flatnonzero(present), codes[present]] = 1.0
    return out


def _clean(scores: np.ndarray) -> np.ndarray:
    """NaN scores rank last, as scikit-learn's selectors rank them."""
    return np.where(np.isnan(scores), np.finfo(np.float64).min, scores)


def k_best_mask(scores: np.ndarray, k: int | str) -> np.ndarray:
    """``SelectKBest``'s mask: the ``k`` highest scores (``"all"`` keeps everything).

    >>> k_best_mask(np.array([3.0, np.nan, 5.0, 1.0]), 2).tolist()
    [True, False, True, False]
    """
    if k == "all" or k >= scores.size:
        return np.ones(scores.size, dtype=bool)
    mask = np.zeros(scores.size, dtype=bool)
    if k > 0:
        mask[np.argsort(_clean(scores), kind="mergesort")[-k:]] = True
    return mask


def percentile_mask(scores: np.ndarray, percentile: float) -> np.ndarray:
    """``SelectPercentile``'s mask: scores above the ``100 - percentile`` percentile, ties
    taken in order until ``percentile`` percent of the columns are kept.

    >>> percentile_mask(np.array([1.0, 2.0, 3.0, 4.0]), 50).tolist()
    [False, False, True, True]
    """
    if percentile == 100:
        return np.ones(scores.size, dtype=bool)
    if percentile == 0 or scores.size == 0:
        return np.zeros(scores.size, dtype=bool)
    clean = _clean(scores)
    threshold = np.percentile(clean, 100 - percentile)
    mask = clean > threshold
    ties = np.flatnonzero(clean == threshold)
    if ties.size:
        max_kept = int(scores.size * percentile / 100)
        mask[ties[: max_kept - mask.sum()]] = True
    return mask


@dataclass(frozen=True)
class Relevance(Step):
    """Keep the ``k`` columns (or ``percentile`` percent) that score highest against the
    target with ``score_func``, dropping the rest.

    ``score_func`` is one of :data:`SCORE_FUNCTIONS` by name, ``"auto"`` (``f_classif`` for
    classification, ``f_regression`` for regression), or any function of ``(X, y)`` that
    returns scores (or ``(scores, p-values)``), as scikit-learn's selectors take. Give ``k``
    or ``percentile``, not both; with neither, ``k=10`` (``SelectKBest``'s default).
    ``chi2`` needs non-negative numeric columns (counts, frequencies).

    >>> Relevance(score_func="mutual_info_classif", percentile=25).describe()
    'keep the top 25% of columns by mutual_info_classif'
    """

    score_func: str | Callable = "auto"
    k: int | str | None = None
    percentile: float | None = None
    name: ClassVar[str] = "relevance"
    needs_target: ClassVar[bool] = True
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC, CATEGORICAL)

    def check(self) -> None:
        if isinstance(self.score_func, str):
            if self.score_func != "auto" and self.score_func not in SCORE_FUNCTIONS:
                known = ", ".join(["auto", *SCORE_FUNCTIONS])
                raise ValueError(
                    f"{self.name}: score_func must be one of {known} or a function, "
                    f"got {self.score_func!r}"
                )
        elif not callable(self.score_func):
            raise TypeError(
                f"{self.name}: score_func must be a name or a function, "
                f"got {type(self.score_func).__name__}"
            )
        if self.k is not None and self.percentile is not None:
            raise ValueError(f"{self.name}: give k or percentile, not both")
        if self.k is not None and self.k != "all":
            check_count(self.name, "k", self.k, 0)
        if self.percentile is not None:
            check_number(self.name, "percentile", self.percentile, 0.0, 100.0)

    def describe(self) -> str:
        by = self._function_name()
        if self.percentile is not None:
            return f"keep the top {self.percentile:g}% of columns by {by}"
        k = 10 if self.k is None else self.k
        return f"keep the {k} best columns by {by}" if k != "all" else f"score columns by {by}"

    def _function_name(self, task: str | None = None) -> str:
        if callable(self.score_func):
            return getattr(self.score_func, "__name__", "score_func")
        if self.score_func == "auto":
            if task is None:
                return "f_classif or f_regression"
            return "f_classif" if task == "classification" else "f_regression"
        return self.score_func

    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        if target is None:
            raise ValueError(f"{self.name} needs a target: pass y to fit")
        function_name = self.function_for(target.task)
        function = self.score_func if callable(self.score_func) else SCORE_FUNCTIONS[function_name]
        y = target.codes if target.task == "classification" else target.numbers
        names = [n for n in active if columns.kinds[n] in (NUMERIC, CATEGORICAL)]
        scores = self._scores(columns, names, y, function, function_name, random_state)
        return self.decide(names, scores, function_name)

    def function_for(self, task: str) -> str:
        """The scoring function's name for a target of ``task``; an error when the function
        is for the other task.

        >>> Relevance(score_func="f_regression").function_for("classification")
        Traceback (most recent call last):
        ...
        ValueError: relevance: f_regression is for regression but the target is classification; use score_func='auto' or one for classification
        """  # noqa: E501
        function_name = self._function_name(task)
        expected = _FOR_TASK.get(function_name)
        if expected is not None and expected != task:
            raise ValueError(
                f"{self.name}: {function_name} is for {expected} but the target is "
                f"{task}; use score_func='auto' or one for {task}"
            )
        return function_name

    def decide(self, names: list[str], scores: np.ndarray, function_name: str) -> StepResult:
        """Keep the best ``names`` by ``scores`` (NaN last) under ``k`` or ``percentile``;
        a drop for each other one, saying its rank and the lowest kept score.

        >>> result = Relevance(k=1).decide(["a", "b"], np.array([2.0, 9.0]), "f_classif")
        >>> [d.reason for d in result.drops]
        ['f_classif score 2 ranks 2 of 2, outside the top 1; the lowest kept score is 9']
        """
        if self.percentile is not None:
            mask = percentile_mask(scores, self.percentile)
        else:
            mask = k_best_mask(scores, 10 if self.k is None else self.k)
        kept_scores = scores[mask & ~np.isnan(scores)]
        bar = float(kept_scores.min()) if kept_scores.size else None
        rank = np.empty(len(names), dtype=np.intp)
        rank[np.argsort(-_clean(scores), kind="mergesort")] = np.arange(1, len(names) + 1)
        rule = (
            f"top {self.percentile:g}%"
            if self.percentile is not None
            else f"top {10 if self.k is None else self.k}"
        )
        drops = []
        for index in np.flatnonzero(~mask):
            value = None if np.isnan(scores[index]) else float(scores[index])
            shown = "undefined (constant column)" if value is None else f"{value:.4g}"
            lowest = "" if bar is None else f"; the lowest kept score is {bar:.4g}"
            drops.append(
                Drop(
                    names[index],
                    self.name,
                    function_name,
                    value,
                    bar,
                    reason=f"{function_name} score {shown} ranks {rank[index]} of "
                    f"{len(names)}, outside the {rule}{lowest}",
                )
            )
        measured = {
            name: (None if np.isnan(s) else float(s)) for name, s in zip(names, scores, strict=True)
        }
        return StepResult(tuple(drops), {"relevance": measured})

    def _scores(
        self,
        columns: FeatureColumns,
        names: list[str],
        y: np.ndarray,
        function: Callable,
        function_name: str,
        random_state: int | None,
    ) -> np.ndarray:
        scores = np.full(len(names), np.nan)
        numeric = [i for i, n in enumerate(names) if columns.kinds[n] == NUMERIC]
        categorical = [i for i, n in enumerate(names) if columns.kinds[n] == CATEGORICAL]
        mutual = function_name in _MUTUAL_INFO
        for start in range(0, len(numeric), BLOCK_COLUMNS):
            block = numeric[start : start + BLOCK_COLUMNS]
            matrix = np.column_stack([filled(columns.values[names[i]]) for i in block])
            if function_name == "chi2":
                negative = [names[i] for j, i in enumerate(block) if (matrix[:, j] < 0).any()]
                if negative:
                    raise ValueError(
                        f"{self.name}: chi2 needs non-negative values; columns {negative} "
                        "have negative ones (use f_classif or mutual_info_classif)"
                    )
            scores[block] = self._call(function, matrix, y, mutual, False, random_state)
        for i in categorical:
            matrix = indicators(columns.codes[names[i]], columns.levels[names[i]])
            level_scores = self._call(function, matrix, y, mutual, True, random_state)
            if not np.isnan(level_scores).all():
                scores[i] = np.nanmax(level_scores)
        return scores

    @staticmethod
    def _call(
        function: Callable,
        matrix: np.ndarray,
        y: np.ndarray,
        mutual: bool,
        discrete: bool,
        random_state: int | None,
    ) -> np.ndarray:
        # Constant columns make the F tests divide by zero; they score NaN and rank last.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            if mutual:
                out = function(matrix, y, discrete_features=discrete, random_state=random_state)
            else:
                out = function(matrix, y)
        scores = out[0] if isinstance(out, tuple) else out
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (matrix.shape[1],):
            raise ValueError(
                f"score_func returned {scores.shape} scores for {matrix.shape[1]} columns"
            )
        return scores
