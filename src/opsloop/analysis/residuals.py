"""Residual analysis of a regression: what the residuals still correlate with, and whether
they are autocorrelated in time order.

* Left-out features: Pearson and Spearman correlation (scipy, with p-values) and mutual
  information (scikit-learn's ``mutual_info_regression``, which also catches non-monotone
  dependence) of the residuals with each column the model did not use. A feature that still
  explains the residuals should go into the model.
* Autocorrelation: the Durbin-Watson statistic (statsmodels' ``durbin_watson``) and the
  Ljung-Box test (statsmodels' ``acorr_ljungbox``) on residuals in an explicit time order.
  statsmodels gives Durbin-Watson no p-value, and its exact distribution depends on the
  regressors, which a model-agnostic analysis does not have. So the p-value here is a
  permutation test: under the null the residuals in time order are exchangeable, so
  ``n_permutations`` shuffles (seeded) give the statistic's null distribution, and the
  two-sided p-value is ``min(1, 2 · min(P(DW* <= DW), P(DW* >= DW)))`` with the usual
  ``(1 + count) / (1 + n_permutations)`` estimates, which never give 0.
* Plots' data: the result keeps the fitted values and residuals (row order), and gives what
  a residual-vs-fitted plot, a histogram with its fitted normal and a normal Q-Q plot draw
  (:meth:`ResidualAnalysis.sample`, :meth:`~ResidualAnalysis.binned_means`,
  :meth:`~ResidualAnalysis.histogram`, :meth:`~ResidualAnalysis.normal_qq`), so that a report
  draws them without recomputing anything from the model.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> result = residual_analysis(rng.normal(size=200), np.zeros(200), n_permutations=99)
>>> round(result.durbin_watson, 3), result.durbin_watson_p_value > 0.05
(1.92, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.feature_selection import mutual_info_regression
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson as statsmodels_durbin_watson

from opsloop.analysis.labels import as_labels
from opsloop.data.types import infer_column_type

#: Rows × permutations drawn at once by the Durbin-Watson permutation test (memory bound).
PERMUTATION_BLOCK = 4_000_000


def _empty() -> np.ndarray:
    return _read_only(np.empty(0))


def _read_only(values: np.ndarray) -> np.ndarray:
    values = np.array(values, dtype=np.float64)
    values.setflags(write=False)
    return values


@dataclass(frozen=True)
class ResidualCorrelation:
    """How strongly the residuals depend on one left-out feature.

    Pearson and Spearman are ``None`` for categorical features (mutual information covers
    them, on the category codes as discrete values).

    >>> ResidualCorrelation("x", 10, 0.5, 0.1, 0.4, 0.2, 0.3).to_dict()["feature"]
    'x'
    """

    feature: str
    n: int
    pearson: float | None
    pearson_p_value: float | None
    spearman: float | None
    spearman_p_value: float | None
    mutual_information: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> ResidualCorrelation("c", 4, None, None, None, None, 0.0).to_dict()["pearson"]
        """
        return asdict(self)


@dataclass(frozen=True)
class ResidualAnalysis:
    """Residual summary, correlations with left-out features (highest mutual information
    first), Durbin-Watson with its permutation p-value, and Ljung-Box per lag.

    ``fitted`` and ``residuals`` (``y_true - y_pred``) are read-only float arrays in the
    rows' given order (not the time order); ``seed`` is the analysis' seed, which also picks
    :meth:`sample`'s rows. :meth:`to_dict` leaves the two arrays out.

    >>> result = residual_analysis([1.0, 2.0, 3.0, 4.0], [1.5, 1.5, 3.5, 3.5], lags=1)
    >>> result.residual_mean, result.durbin_watson
    (0.0, 3.0)
    >>> result.residuals.tolist(), result.fitted.tolist()
    ([-0.5, 0.5, -0.5, 0.5], [1.5, 1.5, 3.5, 3.5])
    """

    n: int
    residual_mean: float
    residual_std: float
    durbin_watson: float
    durbin_watson_p_value: float | None
    n_permutations: int
    ljung_box: tuple[tuple[int, float, float], ...]
    correlations: tuple[ResidualCorrelation, ...]
    fitted: np.ndarray = field(default_factory=_empty, repr=False, compare=False)
    residuals: np.ndarray = field(default_factory=_empty, repr=False, compare=False)
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.fitted) != len(self.residuals):
            raise ValueError(
                f"fitted has {len(self.fitted)} values but residuals has {len(self.residuals)}"
            )
        object.__setattr__(self, "fitted", _read_only(self.fitted))
        object.__setattr__(self, "residuals", _read_only(self.residuals))

    def sample(self, max_points: int) -> np.ndarray:
        """Indices of at most ``max_points`` rows, ascending: every row when there are no more
        than that, else a uniform sample without replacement drawn with :attr:`seed`, so that
        the same analysis always shows the same points.

        >>> result = residual_analysis(np.arange(10.0), np.zeros(10), lags=1, n_permutations=0)
        >>> result.sample(20).tolist() == list(range(10)), len(result.sample(4))
        (True, 4)
        """
        _check_count("max_points", max_points, 1)
        if len(self.residuals) <= max_points:
            return np.arange(len(self.residuals))
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(len(self.residuals), size=int(max_points), replace=False))

    def binned_means(self, bins: int = 20) -> pd.DataFrame:
        """Mean fitted value and mean residual in (up to) ``bins`` groups of about equal size,
        cut at quantiles of the fitted values (ties merged): the trend line of a
        residual-vs-fitted plot, computed on every row. Columns ``fitted``, ``residual``,
        ``n``, one row per non-empty bin in the order of the fitted values.

        >>> result = residual_analysis([1.0, 2.0, 5.0, 7.0], [1.0, 1.0, 4.0, 4.0], lags=1)
        >>> result.binned_means(2).to_dict("list")
        {'fitted': [1.0, 4.0], 'residual': [0.5, 2.0], 'n': [2, 2]}
        """
        _check_count("bins", bins, 1)
        if len(self.fitted) == 0:
            return pd.DataFrame({"fitted": [], "residual": [], "n": []})
        edges = np.unique(np.quantile(self.fitted, np.linspace(0.0, 1.0, int(bins) + 1)))
        position = np.clip(np.searchsorted(edges, self.fitted, side="right") - 1, 0, None)
        position = np.minimum(position, max(len(edges) - 2, 0))
        counts = np.bincount(position)
        present = counts > 0
        fitted_sum = np.bincount(position, weights=self.fitted)
        residual_sum = np.bincount(position, weights=self.residuals)
        return pd.DataFrame(
            {
                "fitted": fitted_sum[present] / counts[present],
                "residual": residual_sum[present] / counts[present],
                "n": counts[present],
            }
        )

    def histogram(self, bins: int | str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)`` of the residuals, from :func:`numpy.histogram` with ``bins``
        (a count or one of numpy's rules; ``"auto"`` is capped at 100 bins).

        >>> counts, edges = residual_analysis([0.0, 0.5, 3.0], [0.0, 0.0, 0.0]).histogram(3)
        >>> counts.tolist(), edges.tolist()
        ([2, 0, 1], [0.0, 1.0, 2.0, 3.0])
        """
        if isinstance(bins, str):
            edges = np.histogram_bin_edges(self.residuals, bins=bins)
            if len(edges) > 101:
                edges = np.histogram_bin_edges(self.residuals, bins=100)
        else:
            _check_count("bins", bins, 1)
            edges = np.histogram_bin_edges(self.residuals, bins=int(bins))
        counts, edges = np.histogram(self.residuals, bins=edges)
        return counts, edges

    def normal_qq(self) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        """Normal Q-Q plot data from :func:`scipy.stats.probplot`: ``(theoretical, ordered,
        slope, intercept, r)``, the standard normal quantiles at Filliben's plotting
        positions, the sorted residuals and their least-squares line (``slope``,
        ``intercept``, correlation ``r``; NaN when the residuals are constant).

        >>> theoretical, ordered, slope, intercept, r = residual_analysis(
        ...     [0.0, 1.0, 2.0], [0.0, 0.0, 0.0]).normal_qq()
        >>> np.round(theoretical, 4).tolist(), ordered.tolist(), round(intercept, 6)
        ([-0.8193, 0.0, 0.8193], [0.0, 1.0, 2.0], 1.0)
        """
        if len(self.residuals) == 0:
            return np.empty(0), np.empty(0), np.nan, np.nan, np.nan
        if len(self.residuals) < 2 or np.ptp(self.residuals) == 0:
            (theoretical, ordered) = stats.probplot(self.residuals, dist="norm", fit=False)
            return theoretical, ordered, np.nan, np.nan, np.nan
        (theoretical, ordered), (slope, intercept, r) = stats.probplot(
            self.residuals, dist="norm", fit=True
        )
        return theoretical, ordered, float(slope), float(intercept), float(r)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values; Ljung-Box as ``{"lag", "statistic", "p_value"}`` dicts.

        >>> residual_analysis([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], lags=1).to_dict()["n"]
        3
        """
        return {
            "n": int(self.n),
            "residual_mean": float(self.residual_mean),
            "residual_std": float(self.residual_std),
            "durbin_watson": float(self.durbin_watson),
            "durbin_watson_p_value": self.durbin_watson_p_value,
            "n_permutations": int(self.n_permutations),
            "ljung_box": [
                {"lag": lag, "statistic": statistic, "p_value": p}
                for lag, statistic, p in self.ljung_box
            ],
            "correlations": [c.to_dict() for c in self.correlations],
        }

    def to_frame(self) -> pd.DataFrame:
        """The correlations with left-out features, one row per feature.

        >>> residual_analysis([1.0, 2.0], [1.0, 1.0], lags=1).to_frame().empty
        True
        """
        columns = list(ResidualCorrelation.__dataclass_fields__)
        return pd.DataFrame([c.to_dict() for c in self.correlations], columns=columns)


def durbin_watson_test(
    residuals: Any, *, n_permutations: int = 999, seed: int = 0
) -> tuple[float, float | None]:
    """Durbin-Watson statistic (statsmodels) and its two-sided permutation p-value.

    ``n_permutations = 0`` skips the p-value (``None``).

    >>> statistic, p = durbin_watson_test(np.arange(50.0), n_permutations=199)
    >>> round(statistic, 5), p
    (0.00121, 0.01)
    """
    r = np.asarray(residuals, dtype=np.float64)
    if r.ndim != 1 or len(r) < 2:
        raise ValueError(f"residuals must be one-dimensional with at least 2 values, got {r.shape}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int | np.integer):
        raise ValueError(f"n_permutations must be an integer >= 0, got {n_permutations!r}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be an integer >= 0, got {n_permutations!r}")
    statistic = float(statsmodels_durbin_watson(r))
    if n_permutations == 0:
        return statistic, None
    sum_squares = float(r @ r)
    if sum_squares == 0.0:
        return statistic, None
    rng = np.random.default_rng(seed)
    block = max(1, PERMUTATION_BLOCK // len(r))
    null: list[np.ndarray] = []
    for start in range(0, n_permutations, block):
        shuffled = rng.permuted(
            np.broadcast_to(r, (min(block, n_permutations - start), len(r))), axis=1
        )
        null.append(np.sum(np.diff(shuffled, axis=1) ** 2, axis=1) / sum_squares)
    draws = np.concatenate(null)
    below = (1 + np.count_nonzero(draws <= statistic)) / (n_permutations + 1)
    above = (1 + np.count_nonzero(draws >= statistic)) / (n_permutations + 1)
    return statistic, float(min(1.0, 2.0 * min(below, above)))


def residual_analysis(
    y_true: Any,
    y_pred: Any,
    left_out: pd.DataFrame | None = None,
    *,
    order: Any = None,
    lags: int = 10,
    n_permutations: int = 999,
    seed: int = 0,
) -> ResidualAnalysis:
    """Residuals ``y_true - y_pred`` against ``left_out`` features and in time order.

    ``order`` (optional) gives each row's time (any sortable values); rows are sorted by it,
    stably, before the autocorrelation tests. Without it the rows' order is taken as time.
    ``lags`` is the largest Ljung-Box lag (capped at ``n - 1``).

    >>> result = residual_analysis([3.0, 1.0, 2.0], [2.0, 2.0, 2.0], order=[2, 0, 1], lags=1)
    >>> result.durbin_watson
    1.0
    """
    truth = as_labels(y_true, "y_true").astype(np.float64)
    predicted = as_labels(y_pred, "y_pred", len(truth)).astype(np.float64)
    if isinstance(lags, bool) or not isinstance(lags, int | np.integer) or lags < 1:
        raise ValueError(f"lags must be an integer >= 1, got {lags!r}")
    residuals = truth - predicted
    in_time = residuals
    if order is not None:
        time = as_labels(order, "order", len(truth))
        in_time = residuals[np.argsort(time, kind="stable")]
    statistic, p_value = durbin_watson_test(in_time, n_permutations=n_permutations, seed=seed)
    ljung_box: tuple[tuple[int, float, float], ...] = ()
    max_lag = min(int(lags), len(in_time) - 1)
    if np.var(in_time) > 0 and max_lag >= 1:
        table = acorr_ljungbox(in_time, lags=max_lag)
        ljung_box = tuple(
            (int(lag), float(s), float(p))
            for lag, s, p in zip(table.index, table["lb_stat"], table["lb_pvalue"], strict=True)
        )
    correlations: list[ResidualCorrelation] = []
    if left_out is not None:
        if not isinstance(left_out, pd.DataFrame):
            raise TypeError(f"left_out must be a pandas DataFrame, got {type(left_out).__name__}")
        if len(left_out) != len(residuals):
            raise ValueError(f"left_out has {len(left_out)} rows but y_true has {len(residuals)}")
        correlations = [
            _correlation(str(column), left_out[column].reset_index(drop=True), residuals, seed)
            for column in left_out.columns
        ]
        correlations.sort(key=lambda c: (-c.mutual_information, c.feature))
    return ResidualAnalysis(
        n=len(residuals),
        residual_mean=float(residuals.mean()),
        residual_std=float(residuals.std(ddof=1)) if len(residuals) > 1 else 0.0,
        durbin_watson=statistic,
        durbin_watson_p_value=p_value,
        n_permutations=int(n_permutations),
        ljung_box=ljung_box,
        correlations=tuple(correlations),
        fitted=predicted,
        residuals=residuals,
        seed=int(seed),
    )


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _correlation(
    name: str, values: pd.Series, residuals: np.ndarray, seed: int
) -> ResidualCorrelation:
    kind = infer_column_type(values)
    present = values.notna().to_numpy()
    r = residuals[present]
    if kind == "datetime":
        raise TypeError(f"left-out column {name!r} holds datetimes; derive numeric features first")
    if kind in ("int", "float", "bool"):
        x = values[present].to_numpy(dtype=np.float64)
        constant = len(x) < 3 or np.ptp(x) == 0 or np.ptp(r) == 0
        pearson = None if constant else stats.pearsonr(x, r)
        spearman = None if constant else stats.spearmanr(x, r)
        mi = (
            0.0
            if len(x) < 4
            else float(mutual_info_regression(x[:, None], r, random_state=seed)[0])
        )
        return ResidualCorrelation(
            name,
            len(x),
            None if pearson is None else float(pearson.statistic),
            None if pearson is None else float(pearson.pvalue),
            None if spearman is None else float(spearman.statistic),
            None if spearman is None else float(spearman.pvalue),
            mi,
        )
    codes, _ = pd.factorize(values[present].astype(object))
    mi = (
        0.0
        if len(codes) < 4
        else float(
            mutual_info_regression(codes[:, None], r, discrete_features=True, random_state=seed)[0]
        )
    )
    return ResidualCorrelation(name, len(codes), None, None, None, None, mi)
