"""Do we need more data? Learning curves with an extrapolated gain, and whether a sample
represents its population.

The curve itself is scikit-learn's ``learning_curve`` (cross-validated scores at growing
training sizes). What it lacks is the answer to the article's question, so the mean
validation score is fitted with the inverse power law that learning curves follow,
``score(n) = plateau - scale · n^(-rate)`` (Mukherjee et al. 2003; Hestness et al. 2017), by
scipy's bounded least squares; the fit gives the score expected at any size, the plateau
more data approaches, and the gain from doubling the data.

Whether a sample represents the population is a two-sample question: the sample against the
rest of the population, column by column, with :func:`opsloop.data.drift.compare` (its tests
assume the two sides do not share rows, hence "the rest").

>>> import numpy as np
>>> sizes = np.array([100, 200, 400, 800, 1600])
>>> fit = fit_power_law(sizes, 0.9 - 2.0 * sizes ** -0.5)
>>> round(fit.plateau, 6), round(fit.scale, 6), round(fit.rate, 6)
(0.9, 2.0, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit
from sklearn.model_selection import learning_curve as sklearn_learning_curve

from opsloop.data.drift import DriftResult, compare


@dataclass(frozen=True)
class PowerLawFit:
    """``score(n) = plateau - scale · n^(-rate)`` fitted to a learning curve."""

    plateau: float
    scale: float
    rate: float

    def predict(self, n) -> np.ndarray:
        """Expected score at training size(s) ``n``.

        >>> PowerLawFit(0.9, 2.0, 0.5).predict([400]).round(3).tolist()
        [0.8]
        """
        n = np.asarray(n, dtype=float)
        return self.plateau - self.scale * n ** (-self.rate)


def _law(n, plateau, scale, rate):
    return plateau - scale * n ** (-rate)


def fit_power_law(sizes, scores) -> PowerLawFit:
    """Fit the inverse power law to ``scores`` observed at training ``sizes``.

    Needs at least three distinct sizes (three parameters).

    >>> fit_power_law([10, 20], [0.5, 0.6])
    Traceback (most recent call last):
    ...
    ValueError: fit_power_law needs scores at 3 or more distinct sizes, got 2
    """
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(scores, dtype=float)
    if n.shape != y.shape or n.ndim != 1:
        raise ValueError("sizes and scores must be one-dimensional and of equal length")
    if np.unique(n).size < 3:
        raise ValueError(
            f"fit_power_law needs scores at 3 or more distinct sizes, got {np.unique(n).size}"
        )
    if np.any(n <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("sizes must be positive and scores finite")
    spread = float(np.ptp(y)) or 1.0
    start = (float(y.max()) + 0.1 * spread, spread * float(n.min()) ** 0.5, 0.5)
    params, _ = curve_fit(
        _law,
        n,
        y,
        p0=start,
        bounds=([-np.inf, 0.0, 1e-6], [np.inf, np.inf, 5.0]),
        maxfev=20_000,
    )
    return PowerLawFit(*(float(p) for p in params))


@dataclass(frozen=True)
class LearningCurve:
    """Scores at growing training sizes, the fitted law, and what more data would bring."""

    sizes: np.ndarray
    train_mean: np.ndarray
    train_std: np.ndarray
    valid_mean: np.ndarray
    valid_std: np.ndarray
    fit: PowerLawFit | None

    @property
    def gain_if_doubled(self) -> float | None:
        """Validation score expected with twice the largest size, minus the one measured."""
        if self.fit is None:
            return None
        largest = float(self.sizes[-1])
        return float(self.fit.predict([2 * largest])[0] - self.fit.predict([largest])[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per training size."""
        return pd.DataFrame(
            {
                "train_size": self.sizes,
                "train_mean": self.train_mean,
                "train_std": self.train_std,
                "valid_mean": self.valid_mean,
                "valid_std": self.valid_std,
            }
        )

    def to_dict(self) -> dict:
        """JSON-safe dictionary."""
        fit = None
        if self.fit is not None:
            fit = {"plateau": self.fit.plateau, "scale": self.fit.scale, "rate": self.fit.rate}
        return {
            "points": self.to_frame().to_dict(orient="records"),
            "fit": fit,
            "gain_if_doubled": self.gain_if_doubled,
        }


def learning_curve(
    estimator,
    X,
    y,
    *,
    train_sizes=(0.1, 0.2, 0.35, 0.55, 0.775, 1.0),
    cv=5,
    scoring=None,
    random_state: int = 0,
) -> LearningCurve:
    """Cross-validated learning curve (scikit-learn's) with the power law fitted to it.

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_digits(return_X_y=True)
    >>> curve = learning_curve(LogisticRegression(max_iter=2000), X, y, cv=3)
    >>> bool(curve.valid_mean[-1] > curve.valid_mean[0]), curve.gain_if_doubled > 0
    (True, True)
    """
    sizes, train, valid = sklearn_learning_curve(
        estimator,
        X,
        y,
        train_sizes=np.asarray(train_sizes),
        cv=cv,
        scoring=scoring,
        shuffle=True,
        random_state=random_state,
    )
    valid_mean = valid.mean(axis=1)
    fit = fit_power_law(sizes, valid_mean) if np.unique(sizes).size >= 3 else None
    return LearningCurve(
        sizes=sizes,
        train_mean=train.mean(axis=1),
        train_std=train.std(axis=1),
        valid_mean=valid_mean,
        valid_std=valid.std(axis=1),
        fit=fit,
    )


def represents_population(
    sample: pd.DataFrame, rest: pd.DataFrame, **compare_options
) -> DriftResult:
    """Compare a sample with the rest of its population; ``drifted`` False means no column
    shows the sample to differ (options go to :func:`opsloop.data.drift.compare`).

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> population = pd.DataFrame({"x": rng.normal(size=4000)})
    >>> represents_population(population.iloc[:1000], population.iloc[1000:]).drifted
    False
    >>> biased = population[population["x"] > -1]
    >>> represents_population(biased.iloc[:1000], population.iloc[1000:]).drifted
    True
    """
    return compare(rest, sample, **compare_options)
