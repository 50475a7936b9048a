"""Prior shift (the label distribution moved) and concept shift (P(y | x) changed).

* :func:`prior_shift` compares observed labels: chi-square test of homogeneity for class
  labels, two-sample KS for a continuous target.
* :func:`estimate_prior_shift` works before labels arrive (black-box shift estimation,
  Lipton, Wang & Smola 2018): under pure prior shift the model's confusion matrix on the
  reference, ``C[i, j] = P(pred = i, y = j)``, links the current prediction shares ``mu`` to
  the current class shares ``q`` by ``C @ (q / p) = mu``. Solving gives the class weights;
  the test is the chi-square test of the predicted-label counts.
* :func:`concept_shift` asks whether knowing *which sample* a row came from helps predict its
  label once its features are known. Two gradient-boosted models are cross-fitted on the
  pooled rows: one on ``x`` only, one on ``x`` plus a sample indicator. Under no concept
  shift the label is independent of the sample given ``x`` and the second model cannot do
  better out of fold; the p-value is the one-sided paired t-test of the per-row loss
  difference (log-loss for classes, squared error for a continuous target). Extra capacity
  can only hurt the second model under the null, so the test errs on the conservative side.
  The fits run on one thread by default (``n_jobs``, see :mod:`opsloop.data.threads`).

>>> import numpy as np
>>> r = prior_shift(np.array([0] * 90 + [1] * 10), np.array([0] * 60 + [1] * 40))
>>> r.test, r.drifted, r.current_shares
('chi2', True, {'0': 0.6, '1': 0.4})
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold

from opsloop.data.drift.distances import chi_square
from opsloop.data.drift.multivariate import feature_frame
from opsloop.data.drift.numeric import ks_test
from opsloop.data.label_task import infer_task
from opsloop.data.threads import fit_threads


@dataclass(frozen=True)
class LabelShiftResult:
    """A label-distribution comparison: test, statistic, p-value, verdict and class shares."""

    test: str
    statistic: float
    p_value: float
    alpha: float
    drifted: bool
    reference_shares: dict | None = None
    current_shares: dict | None = None
    class_weights: dict | None = None

    def to_dict(self) -> dict:
        """JSON-safe dictionary."""
        return asdict(self)


def _is_classes(y: np.ndarray) -> bool:
    # The project's one rule for labels (opsloop.data.label_task).
    return infer_task(y) == "classification"


def _shares(labels: np.ndarray, classes: list) -> dict:
    counts = pd.Series(labels).astype(str).value_counts()
    total = counts.sum()
    return {c: float(counts.get(c, 0) / total) for c in classes}


def _class_counts(reference: np.ndarray, current: np.ndarray):
    ref = pd.Series(reference).dropna().astype(str)
    cur = pd.Series(current).dropna().astype(str)
    classes = sorted(set(ref.unique()) | set(cur.unique()))
    rc = ref.value_counts().reindex(classes, fill_value=0).to_numpy()
    cc = cur.value_counts().reindex(classes, fill_value=0).to_numpy()
    return classes, rc, cc


def prior_shift(y_reference, y_current, *, alpha: float = 0.05) -> LabelShiftResult:
    """Test whether the label distribution differs between two labelled samples.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> prior_shift(rng.normal(size=500), rng.normal(size=500)).drifted
    False
    """
    ref, cur = np.asarray(y_reference), np.asarray(y_current)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("y_reference and y_current must not be empty")
    if _is_classes(ref) and _is_classes(cur):
        classes, rc, cc = _class_counts(ref, cur)
        statistic, p = chi_square(rc, cc)
        return LabelShiftResult(
            "chi2",
            statistic,
            p,
            alpha,
            bool(p < alpha),
            {c: float(v / rc.sum()) for c, v in zip(classes, rc, strict=True)},
            {c: float(v / cc.sum()) for c, v in zip(classes, cc, strict=True)},
        )
    statistic, p = ks_test(ref.astype(float), cur.astype(float))
    return LabelShiftResult("ks", statistic, p, alpha, bool(p < alpha))


def estimate_prior_shift(
    y_reference, predicted_reference, predicted_current, *, alpha: float = 0.05
) -> LabelShiftResult:
    """Estimate the current class shares from predictions alone (BBSE, see module).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y_ref = rng.binomial(1, 0.2, 20_000)
    >>> pred_ref = np.where(rng.random(20_000) < 0.9, y_ref, 1 - y_ref)
    >>> y_cur = rng.binomial(1, 0.5, 20_000)
    >>> pred_cur = np.where(rng.random(20_000) < 0.9, y_cur, 1 - y_cur)
    >>> r = estimate_prior_shift(y_ref, pred_ref, pred_cur)
    >>> r.drifted, round(r.current_shares["1"], 2)
    (True, 0.5)
    """
    y_ref = pd.Series(np.asarray(y_reference)).astype(str).to_numpy()
    p_ref = pd.Series(np.asarray(predicted_reference)).astype(str).to_numpy()
    p_cur = pd.Series(np.asarray(predicted_current)).astype(str).to_numpy()
    if y_ref.size != p_ref.size:
        raise ValueError("y_reference and predicted_reference must have the same length")
    if y_ref.size == 0 or p_cur.size == 0:
        raise ValueError("samples must not be empty")
    classes = sorted(set(y_ref) | set(p_ref) | set(p_cur))
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    joint = np.zeros((k, k))
    np.add.at(joint, ([index[c] for c in p_ref], [index[c] for c in y_ref]), 1.0)
    joint /= y_ref.size
    mu = np.bincount([index[c] for c in p_cur], minlength=k) / p_cur.size
    prior = joint.sum(axis=0)
    weights, *_ = np.linalg.lstsq(joint, mu, rcond=None)
    weights = np.where(prior > 0, np.maximum(weights, 0.0), 0.0)
    current = weights * prior
    current = current / current.sum() if current.sum() > 0 else current
    _, rc, cc = _class_counts(p_ref, p_cur)
    statistic, p = chi_square(rc, cc)
    return LabelShiftResult(
        "bbse-chi2",
        statistic,
        p,
        alpha,
        bool(p < alpha),
        {c: float(prior[i]) for c, i in index.items()},
        {c: float(current[i]) for c, i in index.items()},
        {c: float(weights[i]) for c, i in index.items()},
    )


def concept_shift(
    x_reference: pd.DataFrame,
    y_reference,
    x_current: pd.DataFrame,
    y_current,
    *,
    max_rows: int = 20_000,
    folds: int = 5,
    alpha: float = 0.05,
    seed: int = 0,
    n_jobs: int | None = 1,
) -> LabelShiftResult:
    """Test whether P(y | x) differs between two labelled samples (see the module).

    ``statistic`` is the mean per-row loss saved by knowing the sample. ``n_jobs`` caps the
    OpenMP threads of each of the ``2 * folds`` fits (``None``: the library's default, all
    cores); it changes the time taken, never the result.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x1, x2 = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))
    >>> y1, y2 = (x1[:, 0] > 0).astype(int), (x2[:, 1] > 0).astype(int)
    >>> f = lambda a: pd.DataFrame(a, columns=["a", "b"])
    >>> concept_shift(f(x1), y1, f(x2), y2).drifted
    True
    """
    y_ref, y_cur = np.asarray(y_reference), np.asarray(y_current)
    if len(x_reference) != y_ref.size or len(x_current) != y_cur.size:
        raise ValueError("each sample's features and labels must have the same length")
    rng = np.random.default_rng(seed)
    parts_x, parts_y = [], []
    for x, y in ((x_reference, y_ref), (x_current, y_cur)):
        if len(x) < 2 * folds:
            raise ValueError(f"each side needs at least {2 * folds} rows, got {len(x)}")
        rows = np.sort(rng.choice(len(x), size=min(len(x), max_rows), replace=False))
        parts_x.append(x.iloc[rows])
        parts_y.append(y[rows])
    names = [c for c in x_reference.columns if c in x_current.columns]
    pooled = feature_frame(pd.concat(parts_x, ignore_index=True)[names], names)
    y = np.concatenate(parts_y)
    sample = np.r_[np.zeros(len(parts_x[0])), np.ones(len(parts_x[1]))]
    classes = _is_classes(y)
    with_sample = pooled.assign(__sample__=sample)
    losses = np.zeros((2, y.size))
    if classes:
        _, y_codes = np.unique(y.astype(str), return_inverse=True)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        splits = splitter.split(pooled, y_codes * 2 + sample.astype(int))
    else:
        y_codes = y.astype(float)
        splits = KFold(folds, shuffle=True, random_state=seed).split(pooled)
    with fit_threads(n_jobs):
        for train, test in splits:
            for j, x in enumerate((pooled, with_sample)):
                if classes:
                    model = HistGradientBoostingClassifier(
                        max_iter=100, categorical_features="from_dtype", random_state=seed
                    )
                    model.fit(x.iloc[train], y_codes[train])
                    proba = model.predict_proba(x.iloc[test])
                    column = np.searchsorted(model.classes_, y_codes[test])
                    picked = proba[np.arange(test.size), column]
                    losses[j, test] = -np.log(np.clip(picked, 1e-15, 1.0))
                else:
                    model = HistGradientBoostingRegressor(
                        max_iter=100, categorical_features="from_dtype", random_state=seed
                    )
                    model.fit(x.iloc[train], y_codes[train])
                    losses[j, test] = (model.predict(x.iloc[test]) - y_codes[test]) ** 2
    saved = losses[0] - losses[1]
    if np.all(saved == saved[0]):
        p = 1.0
    else:
        p = float(ttest_1samp(saved, 0.0, alternative="greater").pvalue)
    return LabelShiftResult("concept-cv-loss", float(saved.mean()), p, alpha, bool(p < alpha))
