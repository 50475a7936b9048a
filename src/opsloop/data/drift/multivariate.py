"""Multivariate drift: a classifier two-sample test (C2ST).

Univariate tests miss a change in how columns move together (the correlation of two features
flips while each marginal stays put). A classifier that learns to tell reference rows from
current rows sees the joint distribution: if the two samples come from the same distribution
no classifier beats chance, so its cross-validated AUC stays near 0.5.

Method: up to ``max_rows`` rows are drawn from each side, a gradient-boosted tree ensemble
(scikit-learn's ``HistGradientBoostingClassifier``, which takes missing values and pandas
categoricals natively) is fitted with stratified k-fold cross-validation, and every row gets
an out-of-fold score. The AUC of those scores is the statistic; its p-value is the one-sided
Mann-Whitney U test that current rows score higher than reference rows (the AUC equals
``U / (n_ref · n_cur)``). Out-of-fold scores from different folds are not exactly
exchangeable, so the p-value is approximate; the AUC itself is the effect size.

The fits run on one thread by default (``n_jobs``; see :mod:`opsloop.data.threads`):
the result is the same with any thread count, and idle OpenMP threads on a busy machine cost
many times the CPU of the fits themselves.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=2000)
>>> ref = pd.DataFrame({"a": x[:1000], "b": x[:1000] + rng.normal(0, 0.1, 1000)})
>>> cur = pd.DataFrame({"a": x[1000:], "b": -x[1000:] + rng.normal(0, 0.1, 1000)})
>>> r = classifier_two_sample_test(ref, cur, seed=0)
>>> r.auc > 0.9, r.drifted
(True, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from opsloop.data.threads import fit_threads
from opsloop.data.types import infer_column_type


@dataclass(frozen=True)
class ClassifierTestResult:
    """AUC of a reference-vs-current classifier, its p-value and the columns it used most."""

    auc: float
    p_value: float
    alpha: float
    drifted: bool
    n_reference: int
    n_current: int
    columns: tuple[str, ...]
    importances: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict:
        """JSON-safe dictionary."""
        out = asdict(self)
        out["columns"] = list(self.columns)
        out["importances"] = [{"column": c, "importance": v} for c, v in self.importances]
        return out


def feature_frame(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns as a tree ensemble takes them: numbers as floats, dates as epoch seconds,
    categories as pandas categoricals, free text as its length.

    >>> import pandas as pd
    >>> feature_frame(pd.DataFrame({"t": ["ab", "abcd", "x", "yz"]}), ["t"])["t"].tolist()
    [2.0, 4.0, 1.0, 2.0]
    """
    out = {}
    for name in columns:
        series = frame[name]
        kind = infer_column_type(series)
        if kind in ("int", "float", "bool"):
            out[name] = pd.to_numeric(series, errors="coerce").astype("float64")
        elif kind == "datetime":
            stamps = pd.to_datetime(series, errors="coerce", utc=True)
            out[name] = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        elif kind == "category":
            out[name] = series.astype("string").astype("category")
        else:  # free text: its length is what a tree can use
            out[name] = series.astype("string").str.len().astype("float64")
    return pd.DataFrame(out)


def classifier_two_sample_test(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    max_rows: int = 20_000,
    folds: int = 5,
    alpha: float = 0.05,
    seed: int = 0,
    n_jobs: int | None = 1,
) -> ClassifierTestResult:
    """Test whether a classifier can tell ``current`` rows from ``reference`` rows.

    ``n_jobs`` caps the OpenMP threads of each fit (``None``: the library's default, all
    cores); it changes the time taken, never the result.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> same = classifier_two_sample_test(
    ...     pd.DataFrame({"a": rng.normal(size=800)}), pd.DataFrame({"a": rng.normal(size=800)})
    ... )
    >>> same.drifted
    False
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if max_rows < folds:
        raise ValueError(f"max_rows must be at least folds ({folds}), got {max_rows}")
    names = [c for c in reference.columns if c in current.columns] if columns is None else columns
    missing = [c for c in names if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"columns missing from one side: {missing}")
    if not names:
        raise ValueError("no common columns to compare")
    rng = np.random.default_rng(seed)
    parts = []
    for frame in (reference, current):
        if len(frame) < folds:
            raise ValueError(f"each side needs at least {folds} rows, got {len(frame)}")
        take = min(len(frame), max_rows)
        rows = np.sort(rng.choice(len(frame), size=take, replace=False))
        parts.append(frame.iloc[rows][names])
    pooled = pd.concat(parts, ignore_index=True)
    x = feature_frame(pooled, names)
    y = np.r_[np.zeros(len(parts[0]), dtype=int), np.ones(len(parts[1]), dtype=int)]
    scores = np.empty(len(y))
    importance: np.ndarray | None = None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with fit_threads(n_jobs):
        for train, test in splitter.split(x, y):
            model = HistGradientBoostingClassifier(
                max_iter=100, categorical_features="from_dtype", random_state=seed
            )
            model.fit(x.iloc[train], y[train])
            scores[test] = model.predict_proba(x.iloc[test])[:, 1]
            if importance is None:
                # Which columns give the change away: AUC lost when each is shuffled, on one
                # held-out fold (enough to rank them; every fold would multiply the cost).
                found = auc_permutation_importance(model, x.iloc[test], y[test], seed=seed)
                importance = np.maximum(found, 0.0)
    auc = float(roc_auc_score(y, scores))
    p_value = float(mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)
    total = importance.sum()
    shares = importance / total if total > 0 else importance
    order = np.argsort(-shares, kind="stable")
    return ClassifierTestResult(
        auc=auc,
        p_value=p_value,
        alpha=alpha,
        drifted=bool(p_value < alpha),
        n_reference=len(parts[0]),
        n_current=len(parts[1]),
        columns=tuple(names),
        importances=tuple((names[i], float(shares[i])) for i in order),
    )


def auc_permutation_importance(
    model: Any, x: pd.DataFrame, y: np.ndarray, *, n_repeats: int = 3, seed: int = 0
) -> np.ndarray:
    """Mean AUC lost when each column of ``x`` is shuffled: scikit-learn's
    ``permutation_importance(model, x, y, scoring="roc_auc", n_repeats=n_repeats,
    random_state=seed).importances_mean``, the same shuffles and the same numbers, with one
    ``decision_function`` call per column for all its repeats instead of one per repeat
    (each call re-encodes the categorical columns, which dominates on small folds).

    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.inspection import permutation_importance
    >>> rng = np.random.default_rng(0)
    >>> x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    >>> y = (x["a"] + rng.normal(0, 0.5, 300) > 0).astype(int).to_numpy()
    >>> model = HistGradientBoostingClassifier(max_iter=10).fit(x, y)
    >>> ours = auc_permutation_importance(model, x, y, seed=3)
    >>> theirs = permutation_importance(model, x, y, scoring="roc_auc", n_repeats=3,
    ...                                 random_state=3).importances_mean
    >>> bool(np.array_equal(ours, theirs)), bool(ours[0] > ours[1])
    (True, True)
    """
    # scikit-learn draws one seed, then shuffles every column with a fresh generator on it;
    # each repeat shuffles the already shuffled column again.
    column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    baseline = roc_auc_score(y, model.decision_function(x))
    n = len(x)
    out = np.empty(x.shape[1])
    for j, name in enumerate(x.columns):
        generator = np.random.RandomState(column_seed)
        order = np.arange(n)
        values = x[name].to_numpy()
        copies = []
        for _ in range(n_repeats):
            generator.shuffle(order)
            values = values[order]
            copy = x.copy()
            copy[name] = pd.Series(values, index=x.index, dtype=x[name].dtype)
            copies.append(copy)
        scores = model.decision_function(pd.concat(copies, ignore_index=True))
        lost = [baseline - roc_auc_score(y, part) for part in np.split(scores, n_repeats)]
        out[j] = np.mean(lost)
    return out
