"""The feature selection funnel: a scikit-learn transformer that runs configurable steps in
order, each looking only at the columns the previous ones kept, and records why every
dropped column was dropped (:class:`~opsloop.data.selection.report.SelectionReport`).

The default funnel is the one teams run by hand on a wide table: mostly-missing columns,
near-constant ones, one of each highly correlated numeric pair, one of each strongly
associated categorical pair, a univariate screen, then what a model does not need. Any step
can be left out, reconfigured or reordered.

Documented behaviour on awkward input: a frame with no rows or no columns, a target with
missing values or a single value, and a column mixing kinds of values are refused with an
error naming the problem; a frame with fewer rows than columns is fine (every statistic here
is defined column by column or pair by pair), though the model step still needs rows to
hold out. Statistics that are undefined for a column (the correlation of a constant column)
are NaN, never a reason to drop, and raise no numpy warnings.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=500)
>>> frame = pd.DataFrame({
...     "x": x,
...     "x_copy": x * 10,
...     "constant": 1.0,
...     "empty": np.where(rng.random(500) < 0.9, np.nan, 1.0),
...     "noise": rng.normal(size=500),
... })
>>> y = (x + 0.3 * rng.normal(size=500) > 0).astype(int)
>>> funnel = FeatureFunnel(steps=[NullFraction(), NearZeroVariance(), NumericRedundancy()])
>>> funnel.fit_transform(frame, y).columns.tolist()
['x', 'noise']
>>> funnel.report_.counts
[5, 4, 3, 2]
>>> funnel.report_["x_copy"].redundant_with
'x'
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from opsloop.data.distributed.frames import is_dask_frame
from opsloop.data.selection.columns import FeatureColumns, prepare_columns
from opsloop.data.selection.importance import ModelImportance
from opsloop.data.selection.nulls import NullFraction
from opsloop.data.selection.redundancy import CategoricalRedundancy, NumericRedundancy
from opsloop.data.selection.relevance import Relevance
from opsloop.data.selection.report import ColumnDecision, Drop, SelectionReport, StepSummary
from opsloop.data.selection.steps import Step, StepResult
from opsloop.data.selection.target import TASKS, Target, prepare_target
from opsloop.data.selection.variance import NearZeroVariance

_MEASURES = ("null_fraction", "top_share", "relevance", "importance")


def default_steps() -> list[Step]:
    """The funnel's steps when none are given, in order.

    >>> [step.name for step in default_steps()]  # doctest: +NORMALIZE_WHITESPACE
    ['null_fraction', 'near_zero_variance', 'numeric_redundancy',
     'categorical_redundancy', 'relevance', 'model_importance']

    The univariate screen (the 50 best columns by the F test) comes before the model because
    permutation importance costs one pass over the held-out rows per column and repeat.
    """
    return [
        NullFraction(),
        NearZeroVariance(),
        NumericRedundancy(),
        CategoricalRedundancy(),
        Relevance(k=50),
        ModelImportance(),
    ]


def as_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame with text column names: a DataFrame as it is (names made text),
    a 2-D array with scikit-learn's names ``x0, x1, ...``.

    >>> as_frame(np.zeros((2, 3))).columns.tolist()
    ['x0', 'x1', 'x2']
    """
    if isinstance(X, pd.DataFrame):
        if all(isinstance(c, str) for c in X.columns):
            return X
        return X.set_axis([str(c) for c in X.columns], axis=1)
    if isinstance(X, pd.Series):
        raise TypeError("X must be a table (DataFrame or 2-D array), got a Series")
    refuse_sparse(X)
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"X must be two-dimensional, got shape {array.shape}")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


def refuse_sparse(X: Any) -> None:
    """Refuse a sparse matrix: every step reads whole dense columns.

    >>> refuse_sparse(scipy.sparse.csr_matrix(np.eye(2)))
    Traceback (most recent call last):
    ...
    TypeError: FeatureFunnel does not accept sparse input (got csr_matrix); pass X.toarray() ...
    """
    if scipy.sparse.issparse(X):
        raise TypeError(
            f"FeatureFunnel does not accept sparse input (got {type(X).__name__}); "
            "pass X.toarray() or a DataFrame"
        )


def check_frame(frame: pd.DataFrame) -> None:
    """Refuse a frame the funnel cannot select from, saying why.

    The messages for no rows and no columns carry scikit-learn's wording too.

    >>> check_frame(pd.DataFrame({"a": []}))
    Traceback (most recent call last):
    ...
    ValueError: X has no rows: found 0 sample(s) (shape=(0, 1)) while a minimum of 1 is required.
    """
    if frame.shape[1] == 0:
        raise ValueError(
            f"X has no columns: found 0 feature(s) (shape={frame.shape}) while a minimum of 1 "
            "is required."
        )
    if frame.shape[0] == 0:
        raise ValueError(
            f"X has no rows: found 0 sample(s) (shape={frame.shape}) while a minimum of 1 "
            "is required."
        )
    names = pd.Index([str(c) for c in frame.columns])
    if names.has_duplicates:
        repeated = sorted(set(names[names.duplicated()]))
        raise ValueError(f"X has duplicate column names {repeated}; rename them first")


class FeatureFunnel(SelectorMixin, BaseEstimator):
    """Select columns by running ``steps`` in order (see :func:`default_steps`).

    Parameters:

    * ``steps``: a list of step objects (:class:`NullFraction`, :class:`NearZeroVariance`,
      :class:`NumericRedundancy`, :class:`CategoricalRedundancy`, :class:`Relevance`,
      :class:`ModelImportance`), each configured by its own arguments; ``None`` for the
      default funnel. A step name may appear once.
    * ``task``: ``"auto"`` (from the target's values), ``"classification"`` or
      ``"regression"``.
    * ``random_state``: seed of the random parts (mutual information, the model's split,
      the forest, the permutations).

    After ``fit``: ``report_`` (every column's decision and the counts per step),
    ``support_`` (bool per input column), ``n_features_in_``, and ``feature_names_in_``
    when ``X`` was a DataFrame (its column names as text; an array's columns are called
    ``x0, x1, ...`` in the report, as scikit-learn calls them).
    ``transform`` returns the kept columns: a DataFrame for a DataFrame (picked by name), an
    array for an array. ``y`` is needed when a step reads the target (relevance, model
    importance). Built on scikit-learn's ``SelectorMixin`` (``get_support``,
    ``get_feature_names_out``, ``inverse_transform``) and checked with its
    ``check_estimator``. Sparse input is refused: every step reads dense columns. A Dask
    frame ``X`` (with ``y`` a Dask Series partitioned like it) runs the steps whose
    statistics merge across partitions (:mod:`opsloop.data.distributed.selection`); the
    default funnel runs its :class:`ModelImportance` step in memory on the rows of the
    columns the other steps keep when they fit here, and otherwise lists it in its report as
    not run, with the reason.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [None, None, None, 1.0]})
    >>> FeatureFunnel(steps=[NullFraction(threshold=0.5)]).fit(frame).get_feature_names_out()
    array(['a'], dtype=object)
    """

    def __init__(
        self,
        steps: Sequence[Step] | None = None,
        task: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.steps = steps
        self.task = task
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.sparse = False
        tags.target_tags.required = False
        return tags

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def _checked_steps(self) -> list[Step]:
        steps = default_steps() if self.steps is None else list(self.steps)
        seen: set[str] = set()
        for index, step in enumerate(steps):
            if not isinstance(step, Step):
                raise TypeError(
                    f"steps[{index}] must be a selection step (NullFraction, ...), "
                    f"got {type(step).__name__}"
                )
            if step.name in seen:
                raise ValueError(f"steps: {step.name!r} appears twice; give each step once")
            seen.add(step.name)
            step.check()
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        return steps

    def _target(self, steps: list[Step], y: Any, n_rows: int) -> Target | None:
        if y is None:
            needing = [s.name for s in steps if s.needs_target]
            if needing:
                raise ValueError(f"steps {needing} need a target: pass y to fit")
            return None
        return prepare_target(y, n_rows, self.task)

    def fit(self, X: Any, y: Any = None) -> FeatureFunnel:
        """Run the steps on ``X`` (and target ``y``) and record the decisions.

        >>> import numpy as np, pandas as pd
        >>> frame = pd.DataFrame({"a": np.arange(6.0), "b": np.arange(6.0) * 2})
        >>> FeatureFunnel(steps=[NumericRedundancy()]).fit(frame).report_.dropped
        ['b']
        """
        steps = self._checked_steps()
        if is_dask_frame(X):
            return self._fit_dask(steps, X, y)
        refuse_sparse(X)
        if not isinstance(X, pd.DataFrame | pd.Series):
            # Arrays get scikit-learn's checks and messages (no rows, no columns, 1-D input).
            X = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True)
        self._from_frame = isinstance(X, pd.DataFrame)
        frame = as_frame(X)
        check_frame(frame)
        if len(frame) == 1 and any(step.needs_target for step in steps):
            raise ValueError("X has 1 sample: the steps that read the target need at least 2 rows")
        target = self._target(steps, y, len(frame))
        started = time.perf_counter()
        columns = prepare_columns(frame)
        prepare_seconds = time.perf_counter() - started
        self._run(steps, columns, target, list(columns.names), {}, prepare_seconds)
        return self

    def _fit_dask(self, steps: list[Step], X: Any, y: Any) -> FeatureFunnel:
        # The steps whose statistics merge, on sums merged across partitions
        # (opsloop.data.distributed.selection); the others are refused there.
        from opsloop.data.distributed.selection import (
            gather_fits,
            gather_size,
            model_step_in_memory,
            selection_statistics,
        )

        if y is None:
            needing = [s.name for s in steps if s.needs_target]
            if needing:
                raise ValueError(f"steps {needing} need a target: pass y to fit")
        self._from_frame = True
        mergeable = steps
        if self.steps is None:
            # The default funnel's model step fits a model on the rows: it runs in memory on
            # the rows of the columns the other steps keep when they fit here, so that the
            # funnel keeps what it keeps in memory; asked for by name, the step is refused
            # (check_mergeable).
            mergeable = [s for s in steps if not isinstance(s, ModelImportance)]
        started = time.perf_counter()
        selection = selection_statistics(X, y, mergeable, self.task)
        if len(selection.names) != len(set(selection.names)):
            check_frame(pd.DataFrame(columns=selection.names, index=[0]))
        prepare_seconds = time.perf_counter() - started
        not_run: dict[str, str] = {}

        def run_step(step: Step, active: list[str], random_state: int | None) -> StepResult:
            if not isinstance(step, ModelImportance):
                return selection.run_step(step, active, random_state)
            # Only the columns the step reads travel (text, for one, does not).
            readable = [c for c in active if selection.kinds[c] in step.kinds]
            if not readable:
                return StepResult()
            fits, sizes = gather_fits(gather_size(X, y, readable))
            if not fits:
                not_run[step.name] = sizes
                return StepResult()
            assert selection.target is not None  # the funnel refuses a model step without y
            return model_step_in_memory(step, X, y, readable, selection.target.task, random_state)

        self._run(
            steps,
            selection,
            selection.target,
            list(selection.names),
            {},
            prepare_seconds,
            run_step=run_step,
        )
        summaries = tuple(
            StepSummary(
                summary.step,
                summary.n_in,
                0,
                0.0,
                f"not run on a Dask frame: {summary.step} fits a model on the rows, and "
                f"{not_run[summary.step]} do not fit; run it in memory on a sample of the "
                "kept columns: funnel.transform(ddf).sample(frac=...).compute()",
            )
            if summary.step in not_run
            else summary
            for summary in self.report_.steps
        )
        self.report_ = dataclasses.replace(self.report_, steps=summaries)
        return self

    def fit_table(
        self,
        source: Any,
        table: str,
        target: str,
        *,
        schema: str | None = None,
        group_size: int | None = None,
    ) -> FeatureFunnel:
        """Run the funnel on a database table, loading only the columns that can pass.

        ``source`` is a SQLAlchemy URL or engine/connection (SQLite, PostgreSQL), a
        ``duckdb:///path`` URL or a duckdb connection. When the funnel starts with
        :class:`NullFraction`, every column's null fraction is computed inside the database
        (:func:`~opsloop.data.selection.database.null_fractions`) and the columns over the
        threshold are never read; when :class:`NearZeroVariance` follows, columns with a
        single distinct value are not read either. The rest, and ``target``, are read and
        the remaining steps run as in :meth:`fit`. ``feature_names_in_`` are all the
        table's columns but ``target``.

        >>> import duckdb
        >>> db = duckdb.connect()
        >>> _ = db.execute("CREATE TABLE t AS SELECT i::DOUBLE AS a, NULL::DOUBLE AS b, "
        ...                "i % 2 AS y FROM range(10) r(i)")
        >>> FeatureFunnel(steps=[NullFraction()]).fit_table(db, "t", target="y").report_.kept
        ['a']
        """
        from opsloop.data.selection.database import null_fractions, read_columns

        steps = self._checked_steps()
        self._from_frame = True
        started = time.perf_counter()
        stats = null_fractions(source, table, schema=schema, group_size=group_size)
        if target not in stats.columns:
            raise ValueError(f"table {table!r} has no column {target!r} (the target)")
        names = [c for c in stats.columns if c != target]
        if not names:
            raise ValueError(f"table {table!r} has no columns besides the target {target!r}")
        early: dict[int, tuple[list[Drop], dict]] = {}
        unread: set[str] = set()
        fractions = {c: stats.null_fraction[c] for c in names}
        position = 0
        if steps and isinstance(steps[0], NullFraction):
            limit = steps[0].threshold
            drops = [
                Drop(
                    c,
                    steps[0].name,
                    "null_fraction",
                    f,
                    float(limit),
                    reason=f"{f:.1%} of rows missing (limit {limit:.0%}), measured in the database",
                )
                for c, f in fractions.items()
                if f > limit
            ]
            early[0] = (drops, {"null_fraction": fractions})
            unread |= {d.column for d in drops}
            position = 1
        if len(steps) > position and isinstance(steps[position], NearZeroVariance):
            limit = steps[position].top_share
            drops = [
                Drop(
                    c,
                    steps[position].name,
                    "top_share",
                    None if stats.n_distinct[c] == 0 else 1.0,
                    float(limit),
                    reason="no non-missing values"
                    if stats.n_distinct[c] == 0
                    else "a single value in every non-missing row (counted in the database)",
                )
                for c in names
                if c not in unread and stats.n_distinct[c] <= 1
            ]
            early[position] = (drops, {})
            unread |= {d.column for d in drops}
        loaded = [c for c in names if c not in unread]
        frame = read_columns(source, table, [*loaded, target], schema=schema)
        y = frame.pop(target)
        target_info = self._target(steps, y, len(frame))
        if len(frame) == 0:
            raise ValueError(f"table {table!r} has no rows")
        columns = prepare_columns(frame)
        kinds = {c: stats.types[c] for c in names}
        prepare_seconds = time.perf_counter() - started
        self._run(steps, columns, target_info, names, early, prepare_seconds, kinds, fractions)
        return self

    def _run(
        self,
        steps: list[Step],
        columns: FeatureColumns,
        target: Target | None,
        names_in: list[str],
        early: dict[int, tuple[list[Drop], dict]],
        prepare_seconds: float,
        unread_kinds: dict[str, str] | None = None,
        fractions: dict[str, float] | None = None,
        run_step: Callable[[Step, list[str], int | None], StepResult] | None = None,
    ) -> None:
        decided: dict[str, Drop] = {}
        measures: dict[str, dict[str, float | None]] = {m: {} for m in _MEASURES}
        if fractions is None:
            fractions = {c: columns.n_null[c] / columns.n_rows for c in names_in}
        measures["null_fraction"].update(fractions)
        active = [c for c in names_in if c in columns.kinds]
        summaries = []
        for index, step in enumerate(steps):
            started = time.perf_counter()
            pre_drops, pre_measured = early.get(index, ([], {}))
            n_in = len(names_in) - len(decided)
            if index in early and isinstance(step, NullFraction):
                result = StepResult(tuple(pre_drops), pre_measured)
            else:
                run = (
                    step.run(columns, active, target, self.random_state)
                    if run_step is None
                    else run_step(step, active, self.random_state)
                )
                result = StepResult((*pre_drops, *run.drops), run.measured)
            for measure, values in result.measured.items():
                measures[measure].update(values)
            for drop in result.drops:
                decided[drop.column] = drop
            gone = {d.column for d in result.drops}
            active = [c for c in active if c not in gone]
            seconds = time.perf_counter() - started + (prepare_seconds if index == 0 else 0.0)
            summaries.append(
                StepSummary(step.name, n_in, len(result.drops), seconds, step.describe())
            )
        unjudged = {}
        for name in active:
            blind = [s.name for s in steps if s.needs_target and columns.kinds[name] not in s.kinds]
            if blind:
                unjudged[name] = (
                    f"{columns.kinds[name]} column: {', '.join(blind)} cannot measure it against "
                    "the target, so it is not judged and not kept (encode it as numbers or "
                    "categories to have it judged)"
                )
        decisions = []
        for name in names_in:
            kind = columns.kinds.get(name) or (unread_kinds or {}).get(name, "unknown")
            drop = decided.get(name)
            values = {m: measures[m].get(name) for m in _MEASURES}
            if name in unjudged:
                decisions.append(
                    ColumnDecision(name, kind, False, reason=unjudged[name], judged=False, **values)
                )
            elif drop is None:
                decisions.append(ColumnDecision(name, kind, True, **values))
            else:
                decisions.append(
                    ColumnDecision(
                        name,
                        kind,
                        False,
                        step=drop.step,
                        statistic=drop.statistic,
                        value=drop.value,
                        threshold=drop.threshold,
                        redundant_with=drop.redundant_with,
                        reason=drop.reason,
                        **values,
                    )
                )
        self.report_ = SelectionReport(
            columns=tuple(decisions),
            steps=tuple(summaries),
            n_rows=columns.n_rows,
            target=None if target is None else target.name,
            task=None if target is None else target.task,
        )
        self.n_features_in_ = len(names_in)
        self._names = np.asarray(names_in, dtype=object)
        if self._from_frame:
            self.feature_names_in_ = self._names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.support_ = np.array(
            [name not in decided and name not in unjudged for name in names_in], dtype=bool
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The kept columns' names, in input order (``x0, x1, ...`` for an array).

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"a": [1.0, 2.0], "b": [None, None]})
        >>> FeatureFunnel(steps=[NullFraction()]).fit(frame).get_feature_names_out().tolist()
        ['a']
        """
        check_is_fitted(self, "support_")
        if input_features is None:
            return self._names[self.support_]
        return super().get_feature_names_out(input_features)

    def transform(self, X: Any) -> Any:
        """The kept columns of ``X``: by name for a DataFrame, by position for an array.

        >>> import numpy as np
        >>> X = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 1.0]])
        >>> FeatureFunnel(steps=[NullFraction(0.5)]).fit(X).transform(X).shape
        (3, 1)
        """
        check_is_fitted(self, "support_")
        if is_dask_frame(X) and self._from_frame:
            names = [str(c) for c in X.columns]
            missing = [c for c in self._names if c not in set(names)]
            if missing:
                raise ValueError(f"X lacks columns seen in fit: {missing[:5]}")
            lookup = dict(zip(names, X.columns, strict=True))
            return X[[lookup[c] for c in self.get_feature_names_out()]]
        if isinstance(X, pd.DataFrame) and self._from_frame:
            names = [str(c) for c in X.columns]
            present = set(names)
            missing = [c for c in self._names if c not in present]
            if missing:
                shown = ", ".join(repr(c) for c in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise ValueError(f"X lacks columns seen in fit: {shown}{more}")
            kept = self.get_feature_names_out()
            lookup = dict(zip(names, X.columns, strict=True))
            return X[[lookup[c] for c in kept]]
        refuse_sparse(X)
        array = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False)
        return array[:, self.support_]
