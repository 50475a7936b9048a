"""Model-based importance: keep the columns a model needs, judged on held-out folds, with
correlated columns judged together.

How a column is judged:

* **On every row, held out once.** The rows are split into ``cv`` folds (stratified for
  classification). On each fold a model fitted on the other folds is scored on it, then
  scored again with a column shuffled ``n_repeats`` times; the drop of the score is the
  column's importance on that fold. Its importance is the mean over the folds and its
  standard error the spread of the fold means over ``sqrt(cv)``. A column stays when its
  importance is above ``threshold`` by ``n_std`` standard errors. One split of a quarter of
  the rows (what this step did before) leaves a few hundred rows to decide on, where one
  row more or less right moves accuracy by more than most columns are worth.
* **By a score that sees probabilities.** Classifiers with ``predict_proba`` are scored by
  the Brier score (mean squared error of the predicted probabilities), which moves with
  every row's probability; accuracy moves only when a row crosses the decision boundary.
  Regressors are scored by R².
* **Correlated columns as a group.** Shuffling one of several columns that say the same
  thing costs the model little, because the others still say it: permutation importance
  spreads the credit across the group and each member looks unneeded. Numeric columns are
  grouped by average-linkage clustering on ``|Pearson r|`` (``group_threshold``), and each
  group is also shuffled as a whole (the same row order for every member). When the group
  matters, its member most related to the target (the relevance step's score) stays, and
  so does any member that matters on its own; when it does not, its members are dropped
  with the group's figures in the reason.
* **Worth keeping.** A column (or group) must also be worth ``min_share`` of the most
  important one, and a second member of a group ``member_share``: small, real effects
  flip in and out with the folds, and a funnel that keeps a different set for every seed
  tells its users nothing.
* **Never silently against relevance.** A dropped column that scores higher on relevance
  than every kept column says so in its reason, next to the evidence that the model does
  not need it.

The model sees numeric columns as floats with NaN for missing values and categorical columns
as their integer codes (NaN for missing). The default model is scikit-learn's histogram
gradient boosting, which reads both natively (the codes as categories, not as numbers) and
fits a hundred thousand rows in seconds. Any scikit-learn classifier or regressor can be
passed instead; one that refuses NaN needs its own imputer (a ``Pipeline``). The model's
threads are limited to ``n_jobs`` (one unless told otherwise): the step fits ``cv`` models
and predicts hundreds of times, and idle OpenMP threads spinning between those calls cost
more than they give on a shared machine. Text columns are not given to the model; the
funnel reports them as not judged.

>>> import numpy as np, pandas as pd
>>> from opsloop.data.selection.columns import prepare_columns
>>> from opsloop.data.selection.target import prepare_target
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=600)
>>> y = (x > 0).astype(int)
>>> frame = pd.DataFrame({"x": x, "noise": rng.normal(size=600)})
>>> step = ModelImportance()
>>> result = step.run(prepare_columns(frame), ["x", "noise"], prepare_target(y, 600), 0)
>>> [d.column for d in result.drops], result.measured["importance"]["x"] > 0.1
(['noise'], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import stats
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.base import ClassifierMixin, RegressorMixin, clone, is_classifier, is_regressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from opsloop.data.selection.columns import CATEGORICAL, NUMERIC, FeatureColumns
from opsloop.data.selection.correlation import pearson_matrix
from opsloop.data.selection.relevance import SCORE_FUNCTIONS, Relevance
from opsloop.data.selection.report import Drop
from opsloop.data.selection.steps import Step, StepResult, check_count, check_number
from opsloop.data.selection.target import Target

METHODS = ("permutation", "model")
SCORINGS = ("auto", "brier", "accuracy", "r2")
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


def correlated_groups(columns: FeatureColumns, names: list[str], threshold: float) -> np.ndarray:
    """A group label per name: numeric columns clustered by average linkage on
    ``1 - |Pearson r|`` (pairwise-complete rows) and cut at ``1 - threshold``, so that the
    members of a group correlate by ``threshold`` on average; other columns alone.

    >>> import pandas as pd
    >>> from opsloop.data.selection.columns import prepare_columns
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=200)
    >>> frame = pd.DataFrame({"a": a, "b": a + 0.3 * rng.normal(size=200),
    ...                       "c": rng.normal(size=200)})
    >>> correlated_groups(prepare_columns(frame), ["a", "b", "c"], 0.7).tolist()
    [0, 0, 1]
    """
    labels = np.arange(len(names))
    numeric = [i for i, n in enumerate(names) if columns.kinds[n] == NUMERIC]
    if len(numeric) >= 2:
        r = pearson_matrix([columns.values[names[i]] for i in numeric])
        distance = 1.0 - np.nan_to_num(np.abs(r), nan=0.0)
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(np.clip(distance, 0.0, 1.0), checks=False), "average")
        clusters = fcluster(tree, t=1.0 - threshold, criterion="distance")
        labels[numeric] = [numeric[np.flatnonzero(clusters == c)[0]] for c in clusters]
    _, dense = np.unique(labels, return_inverse=True)
    return dense


@dataclass(frozen=True)
class ModelImportance(Step):
    """Keep the columns a model needs: those whose importance exceeds ``threshold`` by
    ``n_std`` standard errors over ``cv`` held-out folds, the ``k`` most important, or both
    (the top ``k`` of those above the threshold).

    * ``estimator``: any scikit-learn classifier or regressor (cloned, never changed), e.g.
      ``RandomForestClassifier()``; the default is ``HistGradientBoostingClassifier`` (or
      ``Regressor``) with the categorical columns declared categorical and the funnel's
      random state.
    * ``method``: ``"permutation"`` (default): the mean drop of the score over ``n_repeats``
      shuffles of the column on each held-out fold; ``"model"``: the fitted estimator's
      ``feature_importances_`` (or ``|coef_|``), averaged over the folds.
    * ``scoring``: ``"auto"`` (the Brier score for a classifier with ``predict_proba``,
      accuracy for one without, R² for a regressor), or one of those by name.
    * ``threshold`` (default 0) and ``n_std`` (default 2): a column stays when its mean
      importance minus ``n_std`` standard errors is above ``threshold``, i.e. when shuffling
      it hurts the model on held-out rows by more than chance would; ``threshold=None``
      turns the cut off.
    * ``min_share`` (default 0.015): a column (or group) must also be worth at least this
      share of the most important one. The relevance step chose the columns on every row,
      held-out folds included, so a noise column it let through carries its chance
      correlation with the target into those folds and looks slightly useful there: up to
      about 1% of a real signal's importance in the tests' 200-column data.
    * ``member_share`` (default 0.1): a member of a correlated group other than its most
      relevant one is kept when it is worth this share on its own (it then says something
      its group's representative does not).
    * ``fdr`` (default 0.2): of the columns (and groups) that pass, keep those the
      Benjamini-Hochberg rule keeps at this false discovery rate, on one-sided t-test
      p-values over the fold means: with hundreds of noise columns some pass 2 standard
      errors by chance. ``None`` turns it off.
    * ``cv`` (default 5) and ``cv_repeats`` (default 1): folds, and how many times to
      shuffle them anew; fewer folds when a class has fewer rows than ``cv``.
    * ``group_threshold`` (default 0.7): numeric columns correlating by more than this on
      average are judged as a group (see the module's notes); ``None`` judges each alone.
    * ``max_rows`` (default 20,000): fit and score on at most this many rows, drawn at random
      (``None`` for all). Importance ranks settle long before that, and the step's cost
      grows with rows x columns x repeats; raise it when a class is rare.
    * ``n_jobs``: threads the model may use (``None``: one; ``-1``: all).

    >>> ModelImportance(k=20).describe()
    'keep the 20 most important columns of those with importance above 0 by 2 se over 5 folds (permutation)'
    """  # noqa: E501 - a doctest's expected output is one line

    estimator: Any = None
    method: str = "permutation"
    k: int | None = None
    threshold: float | None = 0.0
    n_std: float = 2.0
    n_repeats: int = 5
    cv: int = 5
    group_threshold: float | None = 0.7
    min_share: float = 0.015
    member_share: float = 0.1
    fdr: float | None = 0.2
    cv_repeats: int = 1
    scoring: str = "auto"
    max_rows: int | None = 20_000
    n_jobs: int | None = None
    name: ClassVar[str] = "model_importance"
    needs_target: ClassVar[bool] = True
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC, CATEGORICAL)

    def check(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"{self.name}: method must be one of {METHODS}, got {self.method!r}")
        if self.scoring not in SCORINGS:
            raise ValueError(
                f"{self.name}: scoring must be one of {SCORINGS}, got {self.scoring!r}"
            )
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
        check_count(self.name, "cv", self.cv, 2)
        check_count(self.name, "cv_repeats", self.cv_repeats)
        check_number(self.name, "min_share", self.min_share, 0.0, 1.0)
        check_number(self.name, "member_share", self.member_share, 0.0, 1.0)
        if self.fdr is not None:
            check_number(self.name, "fdr", self.fdr, 0.0, 1.0, low_open=True)
        if self.group_threshold is not None:
            check_number(
                self.name, "group_threshold", self.group_threshold, 0.0, 1.0, low_open=True
            )
        if self.max_rows is not None:
            check_count(self.name, "max_rows", self.max_rows, 10)
        if self.n_jobs is not None and (
            isinstance(self.n_jobs, bool)
            or not isinstance(self.n_jobs, int)
            or not (self.n_jobs >= 1 or self.n_jobs == -1)
        ):
            raise ValueError(
                f"{self.name}: n_jobs must be -1 or an integer >= 1, got {self.n_jobs!r}"
            )
        if self.k is None and self.threshold is None:
            raise ValueError(f"{self.name}: give k, threshold or both")

    def describe(self) -> str:
        parts = []
        if self.k is not None:
            parts.append(f"keep the {self.k} most important columns")
        if self.threshold is not None:
            cut = f"importance above {self.threshold:g} by {self.n_std:g} se over {self.cv} folds"
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

    def _folds(self, y: np.ndarray, task: str, random_state: int | None) -> list:
        """``cv`` folds (stratified when every class has that many rows), ``cv_repeats``
        times with different shuffles; fewer folds when a class has fewer rows."""
        n = y.size
        seeds = np.random.RandomState(random_state).randint(2**31 - 1, size=self.cv_repeats)
        if task == "classification":
            counts = np.bincount(y)
            n_splits = min(self.cv, int(counts[counts > 0].min()))
            if n_splits >= 2:
                return [
                    fold
                    for seed in seeds
                    for fold in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(
                        np.zeros(n), y
                    )
                ]
        n_splits = min(self.cv, n)
        if n_splits < 2:
            raise ValueError(f"{self.name}: needs at least 2 rows to hold out, got {n}")
        folds = [
            (train, test)
            for seed in seeds
            for train, test in KFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(n))
            if task != "classification" or np.unique(y[train]).size > 1
        ]
        if not folds:
            raise ValueError(
                f"{self.name}: every fold's training rows hold a single class; "
                "give more rows of each class"
            )
        return folds

    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        if target is None:
            raise ValueError(f"{self.name} needs a target: pass y to fit")
        names = [n for n in active if columns.kinds[n] in self.kinds]
        if not names:
            return StepResult()
        y = target.codes if target.task == "classification" else target.numbers
        rows = np.arange(columns.n_rows)
        rng = np.random.default_rng(random_state)
        if self.max_rows is not None and rows.size > self.max_rows:
            rows = np.sort(rng.choice(rows, self.max_rows, replace=False))
        y = y[rows]
        folds = self._folds(y, target.task, random_state)
        # Histogram boosting bins a category per level, up to 255 of them.
        categorical = [
            columns.kinds[n] == CATEGORICAL and columns.levels[n] <= MAX_CATEGORY_LEVELS
            for n in names
        ]
        if self.group_threshold is None:
            group_of = np.arange(len(names))
        else:
            group_of = correlated_groups(columns, names, self.group_threshold)
        groups = [np.flatnonzero(group_of == g) for g in range(group_of.max() + 1)]
        # Every column alone (for the report), then each group of two or more as a whole.
        units = [np.array([j]) for j in range(len(names))] + [g for g in groups if g.size > 1]
        X = model_matrix(columns, names, rows)
        fold_scores = np.empty((len(units), len(folds)))
        limit = None if self.n_jobs == -1 else (self.n_jobs or 1)
        with threadpool_limits(limits=limit):
            for f, (train, test) in enumerate(folds):
                model = self._estimator(target.task, categorical, random_state)
                model.fit(X[train], y[train])
                if self.method == "permutation":
                    scores = permutation_scores(
                        model,
                        X[test],
                        y[test],
                        n_repeats=self.n_repeats,
                        random_state=random_state,
                        scoring=self.scoring,
                        groups=units,
                    )
                    fold_scores[:, f] = scores.mean(axis=1)
                else:
                    own = _model_importances(model, len(names))
                    fold_scores[:, f] = [own[unit].sum() for unit in units]
        evidence = Evidence(
            names, groups, group_of, fold_scores, *self._relevance(columns, names, target)
        )
        return self._decide(evidence)

    def _relevance(
        self, columns: FeatureColumns, names: list[str], target: Target
    ) -> tuple[str, np.ndarray]:
        """The F test of the relevance step (same encoding), to pick a group's member."""
        scorer = Relevance(k="all")
        function_name = scorer._function_name(target.task)
        y = target.codes if target.task == "classification" else target.numbers
        function = SCORE_FUNCTIONS[function_name]
        return function_name, scorer._scores(columns, names, y, function, function_name, None)

    def _discoveries(self, e: Evidence, stands_for: dict[int, int]) -> dict[int, bool]:
        """Benjamini-Hochberg at ``fdr`` over the one-sided t-test p-values of the columns
        (and groups) judged, each tested against ``threshold`` on its fold means."""
        if self.fdr is None or self.threshold is None or not stands_for:
            return {}
        columns = list(stands_for)
        p_values = e.p_values([stands_for[j] for j in columns], self.threshold)
        adjusted = stats.false_discovery_control(p_values)
        return {j: bool(a <= self.fdr) for j, a in zip(columns, adjusted, strict=True)}

    def _passes(self, mean: float, se: float, floor: float) -> bool:
        significant = self.threshold is None or mean - self.n_std * se > self.threshold
        return bool(significant and mean >= floor)

    def _decide(self, e: Evidence) -> StepResult:
        p = len(e.names)
        mean, se = e.mean, e.se
        # A column stands for itself when it is alone, for its group when it is the group's
        # most relevant member; other members are judged through their group only.
        stands_for: dict[int, int] = {}
        for g, members in enumerate(e.groups):
            if members.size == 1:
                stands_for[int(members[0])] = int(members[0])
            else:
                best = int(members[np.argmax(e.ranked_relevance[members])])
                stands_for[best] = e.unit_of_group[g]
        top = max(mean[stands_for[j]] for j in stands_for) if stands_for else 0.0
        # The share is part of the cut: with threshold=None only k decides.
        if self.threshold is None:
            floor = -np.inf
        else:
            floor = self.min_share * top if top > 0 else np.inf
        mask = np.zeros(p, dtype=bool)
        credit = np.full(p, -np.inf)
        for j, u in stands_for.items():
            credit[j] = mean[u]
            mask[j] = self._passes(mean[u], se[u], floor)
        discovered = self._discoveries(e, stands_for)
        for j in stands_for:
            mask[j] &= discovered.get(j, True)
        # A member that matters on its own, by a larger share, says more than its group.
        member_floor = floor if self.threshold is None else self.member_share * top
        alone = [
            j
            for j in range(p)
            if j not in stands_for and self._passes(mean[j], se[j], member_floor)
        ]
        for j in alone:
            credit[j] = mean[j]
            mask[j] = True
        if self.k is not None and mask.sum() > self.k:
            order = np.flatnonzero(mask)[np.argsort(-credit[mask], kind="mergesort")]
            mask[order[self.k :]] = False
        statistic = f"{self.method}_importance"
        bar = float(credit[mask].min()) if mask.any() else None
        best_kept = e.ranked_relevance[mask].max(initial=-np.inf)
        cut = "" if self.threshold is None else f"above {self.threshold:g} by {self.n_std:g} se"
        share = f"at least {self.min_share * 100:g}% of the most important one's ({top:.4g})"
        drops = []
        for j in np.flatnonzero(~mask):
            g = int(e.group_of[j])
            members = e.groups[g]
            own = e.figures(j)
            if j in alone:
                reason, decided = f"{statistic} {own} is outside the top {self.k}", bar
            elif j not in stands_for:
                u = e.unit_of_group[g]
                chosen = int(next(m for m in members if m in stands_for))
                fate = "stays for it" if mask[chosen] else "was dropped too"
                reason = (
                    f"{statistic} {own} alone, not {self.member_share * 100:g}% of the most "
                    f"important one's ({top:.4g}); it correlates with "
                    f"{e.listing(members, j)} (|r| above {self.group_threshold:g} on average), "
                    f"judged as a group: {e.figures(u)} shuffled together; the group's most "
                    f"relevant member, {e.names[chosen]!r}, {fate}"
                )
                decided = None if self.threshold is None else float(self.threshold)
            else:
                u = stands_for[j]
                subject = (
                    f"{statistic} {own}"
                    if members.size == 1
                    else f"{statistic} of its correlated group ({e.listing(members, -1)}) "
                    f"shuffled together {e.figures(u)}"
                )
                significant = (
                    self.threshold is None or mean[u] - self.n_std * se[u] > self.threshold
                )
                if not significant:
                    reason, decided = f"{subject} is not {cut}", float(self.threshold)
                elif not discovered.get(j, True):
                    p_value = e.p_values([u], self.threshold)[0]
                    reason, decided = (
                        f"{subject} has p = {p_value:.2g} (t test over the folds), not among "
                        f"those Benjamini-Hochberg keeps at a false discovery rate of "
                        f"{self.fdr:g} over the {len(stands_for)} judged",
                        float(self.threshold),
                    )
                elif mean[u] < floor:
                    reason, decided = f"{subject} is not {share}", float(floor)
                else:
                    reason, decided = f"{subject} is outside the top {self.k}", bar
            if e.ranked_relevance[j] > best_kept:
                reason = (
                    f"it scores higher on {e.relevance_name} ({e.relevance[j]:.4g}) than every "
                    f"kept column (best kept {best_kept:.4g}), but the model did not need it: "
                    + reason
                )
            drops.append(
                Drop(e.names[j], self.name, statistic, float(mean[j]), decided, reason=reason)
            )
        measured = {name: float(m) for name, m in zip(e.names, mean[:p], strict=True)}
        return StepResult(tuple(drops), {"importance": measured})


@dataclass
class Evidence:
    """What :meth:`ModelImportance.run` measured: per unit (each column, then each group of
    two or more) its importance on every fold, and each column's relevance."""

    names: list[str]
    groups: list[np.ndarray]
    group_of: np.ndarray
    fold_scores: np.ndarray
    relevance_name: str
    relevance: np.ndarray

    def __post_init__(self) -> None:
        n_folds = self.fold_scores.shape[1]
        self.mean = self.fold_scores.mean(axis=1)
        spread = self.fold_scores.std(axis=1, ddof=1) if n_folds > 1 else 0 * self.mean
        self.se = spread / np.sqrt(n_folds)
        self.ranked_relevance = np.where(np.isnan(self.relevance), -np.inf, self.relevance)
        shared = [g for g, members in enumerate(self.groups) if members.size > 1]
        self.unit_of_group = {g: len(self.names) + i for i, g in enumerate(shared)}

    def p_values(self, units: list[int], threshold: float) -> np.ndarray:
        """One-sided p-values of ``mean > threshold`` from a t test on the fold means (a
        unit with no spread: 0 above the threshold, 1 otherwise)."""
        units = np.asarray(units, dtype=np.intp)
        mean, se = self.mean[units], self.se[units]
        flat = se <= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (mean - threshold) / np.where(flat, 1.0, se)
        t = np.where(flat, np.where(mean > threshold, np.inf, -np.inf), t)
        return stats.t.sf(t, df=max(self.fold_scores.shape[1] - 1, 1))

    def figures(self, unit: int) -> str:
        n_folds = self.fold_scores.shape[1]
        return f"{self.mean[unit]:.4g} (se {self.se[unit]:.2g} over {n_folds} folds)"

    def listing(self, members: np.ndarray, leave_out: int) -> str:
        others = [repr(self.names[m]) for m in members if m != leave_out]
        more = f" and {len(others) - 4} more" if len(others) > 4 else ""
        return ", ".join(others[:4]) + more


def _is_supervised(estimator: Any) -> bool:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        return False
    try:
        return is_classifier(estimator) or is_regressor(estimator)
    except AttributeError:  # not a scikit-learn estimator: no tags to read
        return False


def _brier(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """scikit-learn's ``brier_score_loss``: for two classes the squared error of the second
    class's probability, for more the squared error summed over the classes."""
    if classes.size == 2:
        return float(np.mean((proba[:, 1] - (y == classes[1])) ** 2))
    truth = y[:, None] == classes[None, :]
    return float(np.mean(np.sum((proba - truth) ** 2, axis=1)))


def permutation_scores(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    n_repeats: int = 5,
    random_state: int | None = None,
    scoring: str | None = None,
    groups: list[np.ndarray] | None = None,
    max_cells: int = 4_000_000,
) -> np.ndarray:
    """Drop of the model's score when each column (or each of ``groups``, a list of column
    index arrays shuffled together) is shuffled: ``(n_columns or n_groups, n_repeats)``.

    With single columns it equals ``permutation_importance(model, X, y, ...).importances``
    (same shuffles from the same seed) for ``scoring`` ``"accuracy"`` or ``"r2"`` (the
    default scores of classifiers and regressors; a model with its own ``score`` is scored
    by it, as there) and ``"brier"`` (scikit-learn's ``"neg_brier_score"``); ``"auto"``
    picks Brier for a classifier with ``predict_proba``. The shuffled copies are stacked
    and predicted together, up to ``max_cells`` values per call: a few calls instead of one
    per column and repeat, which is most of the cost for a fast model.

    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> model = LinearRegression().fit(X, 3 * X[:, 0])
    >>> permutation_scores(model, X, 3 * X[:, 0], n_repeats=3, random_state=0).round(2)
    array([[1.87, 1.78, 2.  ],
           [0.  , 0.  , 0.  ]])
    """
    classifier = is_classifier(model)
    if scoring is None:
        scoring = "accuracy" if classifier else "r2"
    elif scoring == "auto":
        if not classifier:
            scoring = "r2"
        else:
            scoring = "brier" if hasattr(model, "predict_proba") else "accuracy"
    n = X.shape[0]
    if scoring == "brier":
        classes = np.asarray(model.classes_)

        def score(rows: np.ndarray) -> np.ndarray:
            proba = model.predict_proba(rows)
            return np.array([-_brier(y, part, classes) for part in np.split(proba, len(rows) // n)])
    elif type(model).score is not (ClassifierMixin.score if classifier else RegressorMixin.score):
        # The model's own score, as permutation_importance's default scorer calls it.
        def score(rows: np.ndarray) -> np.ndarray:
            return np.array([model.score(part, y) for part in np.split(rows, len(rows) // n)])
    else:
        metric = accuracy_score if scoring == "accuracy" else r2_score

        def score(rows: np.ndarray) -> np.ndarray:
            predicted = model.predict(rows)
            return np.array([metric(y, part) for part in np.split(predicted, len(rows) // n)])

    if groups is None:
        groups = [np.array([j]) for j in range(X.shape[1])]
    baseline = score(X)[0]
    # The seed stream of scikit-learn's permutation_importance: one draw for all columns,
    # then one RandomState per column whose shuffles compound over the repeats.
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    orders = np.empty((n_repeats, n), dtype=np.intp)
    generator = np.random.RandomState(seed)
    order = np.arange(n)
    for r in range(n_repeats):
        generator.shuffle(order)
        # Shuffles compound: repeat r applies every shuffle so far.
        orders[r] = order if r == 0 else orders[r - 1][order]
    per_batch = max(1, max_cells // max(1, n * n_repeats * X.shape[1]))
    out = np.empty((len(groups), n_repeats))
    for start in range(0, len(groups), per_batch):
        batch = groups[start : start + per_batch]
        stacked = np.tile(X, (len(batch) * n_repeats, 1))
        for b, members in enumerate(batch):
            for r in range(n_repeats):
                first = (b * n_repeats + r) * n
                stacked[first : first + n, members] = X[orders[r]][:, members]
        out[start : start + len(batch)] = baseline - score(stacked).reshape(len(batch), n_repeats)
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
