"""A classifier's task metric estimated before its labels arrive, from its calibrated
confidence: confidence-based performance estimation (CBPE, the method NannyML names so).

If a model's probabilities are calibrated, a row scored ``p`` is positive with probability
``p``, so the confusion matrix of a window of rows has an expected value that needs no label:

    E[TP] = sum of p over rows predicted 1        E[FP] = sum of (1 - p) over rows predicted 1
    E[FN] = sum of p over rows predicted 0        E[TN] = sum of (1 - p) over rows predicted 0

and accuracy, precision, recall and F1 are computed from those expected counts. The ROC AUC
is the area under the expected ROC curve: the rows are ordered by the model's score, each
prefix's expected true and false positives are cumulative sums of ``p`` and ``1 - p``, and
the curve through (E[FP] / sum(1 - p), E[TP] / sum(p)) is integrated by trapezoids. For
more than two classes each class is scored one-vs-rest on the rows predicted as it (macro
F1), and accuracy is the mean calibrated probability of the predicted class.

Model scores are rarely calibrated, so :class:`PerformanceEstimator` first fits a calibrator
(isotonic regression, per class one-vs-rest for several classes, rows renormalised to sum to
one) on a labelled reference window and applies it to the unlabelled one. Its ``estimate``
says whether the estimate can be trusted (see :class:`PerformanceEstimate`).

What it assumes, and what breaks it:

* no concept drift: P(label | inputs) is the reference's. Covariate shift alone (the inputs'
  distribution moves within the region the reference covered) is what the method handles;
  a change of the relationship cannot be seen without labels, and the estimate is then wrong
  with no warning;
* P(label | score) is the reference's. A covariate shift the score does not absorb (the
  inputs move along a direction the model underweights) breaks it: given the reference's and
  the window's inputs, :meth:`PerformanceEstimator.estimate` reweights the reference by the
  density ratio ``p_window(x) / p_reference(x)``
  (:func:`~opsloop.analysis.density_ratio.estimate_density_ratio`) and refits the calibrator
  on it, so that the calibration is the window's; it warns when the window's inputs leave
  the reference's support or range, or the weighted reference is worth too few rows. The
  calibrator bootstrap keeps the weights fixed, so the intervals leave out the ratio's own
  estimation error;
* the scores on the window lie where the reference had scores: isotonic regression is
  constant outside the reference's range, so a window with many scores outside it is flagged;
* the reference is large enough for the calibrator: its held-out calibration error is
  measured by cross-fitting and a window is flagged when it exceeds ``max_ece``; a rate that
  is not monotone in the score (which isotonic regression cannot follow) shows there too.

Uncertainty. Each estimate comes with a standard error and an interval for the metric that
will be *realised* on this window once its labels arrive, if the calibrated probabilities
are right: the labels are then independent Bernoulli draws. For accuracy the count of
correct rows is Poisson-binomial, so its standard error is exact:
``sqrt(sum q (1 - q)) / n`` with ``q`` the probability that each row's prediction is right.
For precision, recall, F1, ROC AUC and macro F1 the labels are drawn ``draws`` times from the
calibrated probabilities, the metric is computed on each draw, and the standard error is the
draws' standard deviation. :class:`PerformanceEstimator` adds the calibrator's own error
(a finite reference): it refits the calibrator on ``calibration_draws`` bootstrap resamples
of the reference, re-estimates the window with each, and adds the variance of those
estimates to the labels' (the two are independent). The interval is ``estimate ± z · se``
(``z`` of the two-sided ``confidence``), clipped to [0, 1]. The 95% interval's measured
coverage (``benchmarks/RESULTS.md``) is about 90% for accuracy and 84-92% for the ROC AUC,
short of 95%: the estimate carries a small bias (isotonic regression fitted in-sample spreads
the probabilities, which lifts the expected AUC), and a shift that moves P(label | score)
adds more.

Reference: NannyML, *How it works: performance estimation*; Guo et al., *On calibration of
modern neural networks*, ICML 2017 (why scores need calibrating).

>>> est = estimate_performance([0.9, 0.6, 0.3, 0.2])
>>> est.confusion
ExpectedConfusion(tp=1.5, fp=0.5, tn=1.5, fn=0.5)
>>> round(est["accuracy"].value, 6), round(est["roc_auc"].value, 6)
(0.75, 0.8)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from opsloop.analysis.density_ratio import estimate_density_ratio, inputs_matrix
from opsloop.analysis.labels import as_labels

#: The calibrators :class:`PerformanceEstimator` can fit on the reference.
CALIBRATIONS = ("isotonic", "interpolated-isotonic", "none")

#: When :class:`PerformanceEstimator` reweights its calibration by the density ratio.
WEIGHTINGS = ("auto", "always", "never")

#: Rows × draws simulated at once, so that a large window never holds all draws in memory.
_CELLS_PER_BATCH = 4_000_000


@dataclass(frozen=True)
class ExpectedConfusion:
    """The expected confusion-matrix counts of a binary window under calibration.

    >>> ExpectedConfusion(tp=1.5, fp=0.5, tn=1.5, fn=0.5).to_dict()["tp"]
    1.5
    """

    tp: float
    fp: float
    tn: float
    fn: float

    def to_dict(self) -> dict[str, float]:
        """Plain JSON-safe values.

        >>> expected_confusion([0.8, 0.1]).to_dict()
        {'tp': 0.8, 'fp': 0.2, 'tn': 0.9, 'fn': 0.1}
        """
        return asdict(self)


@dataclass(frozen=True)
class MetricEstimate:
    """One estimated metric with its standard error and interval for the realised value.

    >>> m = estimate_performance([0.9, 0.6, 0.4, 0.2])["accuracy"]
    >>> round(m.value, 3), round(m.standard_error, 4)
    (0.725, 0.2136)
    """

    metric: str
    value: float
    standard_error: float
    low: float
    high: float

    def covers(self, realised: float) -> bool:
        """Whether ``realised`` lies in the interval.

        >>> MetricEstimate("accuracy", 0.9, 0.01, 0.88, 0.92).covers(0.95)
        False
        """
        return bool(self.low <= realised <= self.high)


@dataclass(frozen=True)
class PerformanceEstimate:
    """The estimated metrics of one unlabelled window and whether they can be trusted.

    ``trusted`` is false when any reason is listed in ``warnings``: the reference's held-out
    calibration error is above ``max_ece``, or more than ``max_outside`` of the window's
    scores lie outside the range of the reference's scores.

    >>> est = estimate_performance([0.9, 0.1, 0.8])
    >>> est.trusted, sorted(est.metrics)
    (True, ['accuracy', 'f1', 'precision', 'recall', 'roc_auc'])
    """

    metrics: dict[str, MetricEstimate]
    rows: int
    confusion: ExpectedConfusion | None
    confidence: float
    trusted: bool
    warnings: tuple[str, ...] = field(default=())
    reference_ece: float | None = None
    share_outside_reference: float | None = None
    weighting: str = "none"
    unweighted: dict[str, float] | None = None
    density_ratio: dict[str, float] | None = None

    def __getitem__(self, metric: str) -> MetricEstimate:
        return self.metrics[metric]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> estimate_performance([0.9, 0.1]).to_dict()["metrics"]["accuracy"]["value"]
        0.9
        """
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: value, standard error, interval.

        >>> estimate_performance([0.9, 0.1]).to_frame().loc["accuracy", "value"]
        np.float64(0.9)
        """
        rows = [asdict(m) for m in self.metrics.values()]
        return pd.DataFrame(rows).set_index("metric")


def expected_confusion(y_prob: Any, *, threshold: float = 0.5) -> ExpectedConfusion:
    """The expected TP, FP, TN and FN of a window whose calibrated probabilities of the
    positive class are ``y_prob``, for the decision ``y_prob >= threshold``.

    >>> expected_confusion([0.9, 0.6, 0.3, 0.2])
    ExpectedConfusion(tp=1.5, fp=0.5, tn=1.5, fn=0.5)
    """
    probability = _probabilities(y_prob, "y_prob")
    _check_threshold(threshold)
    return _confusion(probability, probability >= threshold)


def estimate_performance(
    y_prob: Any,
    *,
    y_pred: Any = None,
    threshold: float = 0.5,
    confidence: float = 0.95,
    draws: int = 1000,
    random_state: int = 0,
) -> PerformanceEstimate:
    """Estimated metrics of a window whose probabilities are taken as calibrated already.

    ``y_prob`` is a 1-d array (the positive class's probability; binary: accuracy,
    precision, recall, F1, ROC AUC) or a 2-d array with one column per class (accuracy and
    macro F1). The predictions are ``y_prob >= threshold`` (binary) or the most probable
    class, unless ``y_pred`` gives them (0/1, or column indices). Use
    :class:`PerformanceEstimator` to calibrate raw scores on a labelled reference first.

    >>> est = estimate_performance([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    >>> round(est["accuracy"].value, 4), round(est["macro_f1"].value, 4)
    (0.7, 0.698)
    """
    _check_settings(confidence, draws)
    probability = _probabilities(y_prob, "y_prob")
    if probability.ndim == 1:
        _check_threshold(threshold)
        return _estimate_binary(
            probability, probability, y_pred, threshold, confidence, draws, random_state
        )
    return _estimate_multiclass(probability, probability, y_pred, confidence, draws, random_state)


def _defined_variance(values: Any) -> float:
    """The sample variance of the values that are not nan (``np.nanvar``, ddof 1); nan
    without numpy's warning when fewer than two are defined, as for a metric a window
    leaves undefined in (almost) every draw: precision when nothing is predicted positive.

    >>> _defined_variance([1.0, float("nan"), 3.0]), _defined_variance([float("nan"), 2.0])
    (2.0, nan)
    """
    values = np.asarray(values, dtype=np.float64)
    if np.count_nonzero(~np.isnan(values)) < 2:
        return float("nan")
    return float(np.nanvar(values, ddof=1))


class PerformanceEstimator:
    """Estimates a classifier's metrics on unlabelled windows after calibrating its scores on
    a labelled reference (confidence-based performance estimation).

    Parameters
    ----------
    threshold : float, default 0.5
        Binary decision threshold on the *raw* score: the model predicts 1 when its score is
        at least this. The calibrated probability only weighs whether that prediction is right.
    calibration : {"isotonic", "interpolated-isotonic", "none"}, default "isotonic"
        ``"isotonic"`` fits scikit-learn's ``IsotonicRegression`` (clipped to [0, 1], constant
        outside the reference's score range) from score to label on the reference, one-vs-rest
        per class when there are several, as NannyML's CBPE does; ``"interpolated-isotonic"``
        joins the isotonic steps by straight lines through each step's mean score, which
        keeps rows the model ranks apart distinct and helps the ROC AUC on a small reference;
        ``"none"`` takes the scores as calibrated.
    confidence : float, default 0.95
        Two-sided level of each metric's interval.
    draws : int, default 1000
        Simulated label draws for the standard errors of the metrics other than accuracy.
    calibration_draws : int, default 100
        Bootstrap resamples of the reference whose refitted calibrators measure the
        calibrator's error; 0 leaves it out of the intervals.
    max_ece : float, default 0.05
        Largest held-out calibration error for which an estimate is trusted: the reference's
        rows are calibrated by a calibrator fitted on the other folds (5-fold cross-fitting),
        cut into 10 bins of equal count by their *raw* score (the top class's for several
        classes), and the bins' gaps between the share of positives and the mean calibrated
        probability are averaged, weighted by rows. Binning by the raw score rather than the
        calibrated one catches a rate that no monotone map follows (calibrated on average,
        wrong where the model decides).
    max_outside : float, default 0.05
        Largest share of a window's scores outside the reference's score range (per class)
        for which an estimate is trusted.
    random_state : int, default 0
        Seed of the cross-fitting folds and the label draws.

    >>> rng = np.random.default_rng(0)
    >>> score = rng.random(2000)
    >>> label = (rng.random(2000) < score**2).astype(int)  # scores overstate the positives
    >>> est = PerformanceEstimator().fit(label, score).estimate(rng.random(1000))
    >>> est.trusted, round(est["accuracy"].value, 2)
    (True, 0.7)
    """

    def __init__(
        self,
        threshold: float = 0.5,
        calibration: str = "isotonic",
        confidence: float = 0.95,
        draws: int = 1000,
        calibration_draws: int = 100,
        max_ece: float = 0.05,
        max_outside: float = 0.05,
        random_state: int = 0,
        weighting: str = "auto",
        min_shift_z: float = 3.0,
        max_weight: float = 20.0,
        min_effective_share: float = 0.1,
    ) -> None:
        self.weighting = weighting
        self.min_shift_z = min_shift_z
        self.max_weight = max_weight
        self.min_effective_share = min_effective_share
        self.calibration_draws = calibration_draws
        self.threshold = threshold
        self.calibration = calibration
        self.confidence = confidence
        self.draws = draws
        self.max_ece = max_ece
        self.max_outside = max_outside
        self.random_state = random_state

    def fit(self, y_true: Any, y_prob: Any, *, inputs: Any = None) -> PerformanceEstimator:
        """Fit the calibrator on a labelled reference window and measure its held-out error.

        ``y_true`` holds 0/1 labels (binary, ``y_prob`` 1-d) or class indices 0..k-1 (``y_prob``
        with k columns). ``inputs`` (rows × numeric input columns, optional) are the
        reference's model inputs, kept so that :meth:`estimate` can reweight the calibration
        to a window whose inputs moved.

        >>> est = PerformanceEstimator(calibration="none").fit([0, 1, 1, 0], [0.2, 0.7, 0.9, 0.4])
        >>> round(est.reference_ece_, 3), est.score_range_.tolist()
        (0.3, [[0.2, 0.9]])
        """
        if self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"calibration must be one of {', '.join(CALIBRATIONS)}, got {self.calibration!r}"
            )
        _check_threshold(self.threshold)
        _check_settings(self.confidence, self.draws)
        draws = self.calibration_draws
        if isinstance(draws, bool) or not isinstance(draws, int | np.integer) or draws < 0:
            raise ValueError(f"calibration_draws must be an integer >= 0, got {draws!r}")
        if draws == 1:
            raise ValueError("calibration_draws must be 0 (no calibration error) or >= 2")
        for name in ("max_ece", "max_outside", "min_effective_share"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}"
            )
        if isinstance(self.min_shift_z, bool) or not isinstance(self.min_shift_z, int | float):
            raise ValueError(f"min_shift_z must be a number, got {self.min_shift_z!r}")
        weight_limit = self.max_weight
        if (
            isinstance(weight_limit, bool)
            or not isinstance(weight_limit, int | float)
            or weight_limit <= 1
        ):
            raise ValueError(f"max_weight must be a number > 1, got {weight_limit!r}")
        probability = _probabilities(y_prob, "y_prob")
        truth = as_labels(y_true, "y_true", len(probability))
        columns = _columns(probability)
        if not np.isin(truth, np.arange(columns.shape[1] if probability.ndim == 2 else 2)).all():
            allowed = "0 and 1" if probability.ndim == 1 else f"0..{columns.shape[1] - 1}"
            raise ValueError(f"y_true must hold class indices {allowed}")
        truth = truth.astype(np.int64)
        self.reference_inputs_ = None
        if inputs is not None:
            self.reference_inputs_ = inputs_matrix(inputs, "inputs")
            if len(self.reference_inputs_) != len(truth):
                raise ValueError(
                    f"inputs must have one row per reference row ({len(truth)}),"
                    f" got {len(self.reference_inputs_)}"
                )
        self.n_classes_ = 2 if probability.ndim == 1 else columns.shape[1]
        self.score_range_ = np.column_stack([columns.min(axis=0), columns.max(axis=0)])
        self.calibrators_ = self._fit_calibrators(truth, columns)
        self.reference_truth_, self.reference_scores_ = truth, columns
        self.reference_ece_ = self._held_out_ece(truth, probability)
        return self

    def calibrate(self, y_prob: Any) -> np.ndarray:
        """The calibrated probabilities of raw scores ``y_prob`` (same shape).

        >>> est = PerformanceEstimator().fit([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8])
        >>> est.calibrate([0.05, 0.7]).tolist()
        [0.0, 1.0]
        """
        self._check_fitted()
        probability = self._window(y_prob)
        return self._apply(self.calibrators_, probability)

    def estimate(
        self, y_prob: Any, *, y_pred: Any = None, inputs: Any = None
    ) -> PerformanceEstimate:
        """The estimated metrics of an unlabelled window of raw scores ``y_prob``.

        With the window's ``inputs`` (and the reference's given to :meth:`fit`), the density
        ratio of the window's inputs against the reference's is estimated
        (:func:`~opsloop.analysis.density_ratio.estimate_density_ratio`) and, when
        ``weighting`` is ``"always"``, or ``"auto"`` and the inputs moved (the ratio's domain
        classifier's ``shift_z`` at least ``min_shift_z``), the calibrator is refitted on the
        reference weighted by it: the calibration then stands for the window's inputs, not
        the reference's. The estimate says which was used (``weighting``), keeps the
        unweighted point estimates (``unweighted``) and the ratio's summary
        (``density_ratio``), and warns when the window's inputs leave the reference's
        support or range (share above ``max_outside``) or when the weighted reference is
        worth fewer than ``min_effective_share`` of its rows.

        >>> est = PerformanceEstimator(calibration="none", max_ece=1.0).fit([0, 1], [0.1, 0.9])
        >>> est.estimate([0.95, 0.5]).warnings
        ('0.500 of the scores lie outside the reference range (max_outside 0.05)',)
        """
        self._check_fitted()
        raw = self._window(y_prob)
        ratio, weight = self._density_ratio(inputs, len(raw))
        unweighted = None
        if weight is None:
            calibrated = self._apply(self.calibrators_, raw)
        else:
            unweighted = self._points(raw, self._apply(self.calibrators_, raw), y_pred)
            calibrated = self._apply(
                self._fit_calibrators(self.reference_truth_, self.reference_scores_, weight), raw
            )
        spread = self._calibration_variance(raw, y_pred, weight)
        if raw.ndim == 1:
            result = _estimate_binary(
                raw,
                calibrated,
                y_pred,
                self.threshold,
                self.confidence,
                self.draws,
                self.random_state,
                spread,
            )
        else:
            result = _estimate_multiclass(
                raw, calibrated, y_pred, self.confidence, self.draws, self.random_state, spread
            )
        columns = _columns(raw)
        outside = (columns < self.score_range_[:, 0]) | (columns > self.score_range_[:, 1])
        share_outside = float(outside.any(axis=1).mean())
        warnings = []
        if self.reference_ece_ > self.max_ece:
            warnings.append(
                f"the reference's held-out calibration error {self.reference_ece_:.3f} is above"
                f" max_ece {self.max_ece}"
            )
        if share_outside > self.max_outside:
            warnings.append(
                f"{share_outside:.3f} of the scores lie outside the reference range"
                f" (max_outside {self.max_outside})"
            )
        if ratio is not None:
            warnings += self._ratio_warnings(ratio, weight is not None)
        return PerformanceEstimate(
            metrics=result.metrics,
            rows=result.rows,
            confusion=result.confusion,
            confidence=self.confidence,
            trusted=not warnings,
            warnings=tuple(warnings),
            reference_ece=self.reference_ece_,
            share_outside_reference=share_outside,
            weighting="none" if weight is None else "density-ratio",
            unweighted=unweighted,
            density_ratio=None if ratio is None else ratio.to_dict(),
        )

    def _density_ratio(self, inputs: Any, rows: int):
        """The window's density ratio (or ``None``) and the calibration weights to use (or
        ``None`` for the unweighted calibration)."""
        if inputs is None:
            return None, None
        if self.reference_inputs_ is None:
            raise ValueError("inputs needs the reference's inputs: pass inputs= to fit() too")
        window = inputs_matrix(inputs, "inputs")
        if len(window) != rows:
            raise ValueError(f"inputs must have one row per score ({rows}), got {len(window)}")
        if window.shape[1] != self.reference_inputs_.shape[1]:
            raise ValueError(
                f"inputs must have the reference's {self.reference_inputs_.shape[1]} columns,"
                f" got {window.shape[1]}"
            )
        if self.weighting == "never" or self.calibration == "none":
            return None, None
        ratio = estimate_density_ratio(
            self.reference_inputs_,
            window,
            max_weight=self.max_weight,
            random_state=self.random_state,
        )
        moved = ratio.shift_z >= self.min_shift_z
        use = self.weighting == "always" or moved
        return ratio, ratio.weights if use else None

    def _ratio_warnings(self, ratio: Any, weighted: bool) -> list[str]:
        warnings = []
        if ratio.share_outside_support > self.max_outside:
            warnings.append(
                f"{ratio.share_outside_support:.3f} of the window's inputs lie outside the"
                f" reference's support (density ratio above max_weight {self.max_weight};"
                f" max_outside {self.max_outside})"
            )
        if ratio.share_outside_range > self.max_outside:
            warnings.append(
                f"{ratio.share_outside_range:.3f} of the window's inputs lie outside the"
                f" reference's range (max_outside {self.max_outside})"
            )
        share = ratio.effective_sample_size / len(self.reference_truth_)
        if weighted and share < self.min_effective_share:
            warnings.append(
                f"the weighted reference's effective sample size"
                f" {ratio.effective_sample_size:.0f} is below min_effective_share"
                f" {self.min_effective_share} of its {len(self.reference_truth_)} rows"
            )
        return warnings

    def _points(self, raw: np.ndarray, calibrated: np.ndarray, y_pred: Any) -> dict[str, float]:
        if raw.ndim == 1:
            predicted = _binary_predicted(raw, y_pred, self.threshold)
            return _binary_points(raw, calibrated, predicted)
        return _multiclass_points(calibrated, _multiclass_predicted(raw, y_pred))

    def _calibration_variance(
        self, raw: np.ndarray, y_pred: Any, weight: np.ndarray | None = None
    ) -> dict[str, float] | None:
        # refit the calibrator on bootstrap resamples of the reference: the spread of the
        # window's estimates is the part of their error that a finite reference causes
        if self.calibration == "none" or self.calibration_draws == 0:
            return None
        if raw.ndim == 1:
            predicted = _binary_predicted(raw, y_pred, self.threshold)
        else:
            predicted = _multiclass_predicted(raw, y_pred)
        rng = np.random.default_rng(self.random_state)
        truth, scores = self.reference_truth_, self.reference_scores_
        estimates: dict[str, list[float]] = {}
        for _ in range(self.calibration_draws):
            rows = rng.integers(0, len(truth), len(truth))
            resampled = None if weight is None else weight[rows]
            calibrated = self._apply(
                self._fit_calibrators(truth[rows], scores[rows], resampled), raw
            )
            if raw.ndim == 1:
                points = _binary_points(raw, calibrated, predicted)
            else:
                points = _multiclass_points(calibrated, predicted)
            for name, value in points.items():
                estimates.setdefault(name, []).append(value)
        return {name: _defined_variance(values) for name, values in estimates.items()}

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrators_"):
            raise RuntimeError("PerformanceEstimator is not fitted: call fit() first")

    def _window(self, y_prob: Any) -> np.ndarray:
        probability = _probabilities(y_prob, "y_prob")
        binary = self.score_range_.shape[0] == 1
        if binary and probability.ndim != 1:
            raise ValueError("y_prob must be one-dimensional: the estimator was fitted binary")
        if not binary and (
            probability.ndim != 2 or probability.shape[1] != self.score_range_.shape[0]
        ):
            raise ValueError(
                f"y_prob must have {self.score_range_.shape[0]} columns, as in fit,"
                f" got shape {probability.shape}"
            )
        return probability

    def _fit_calibrators(
        self, truth: np.ndarray, columns: np.ndarray, weight: np.ndarray | None = None
    ) -> list[Any]:
        if self.calibration == "none":
            return []
        if columns.shape[1] == 1:
            targets = [truth]
        else:
            targets = [(truth == k).astype(np.int64) for k in range(columns.shape[1])]
        interpolate = self.calibration == "interpolated-isotonic"
        return [
            _IsotonicCalibrator(interpolate).fit(column, target, weight)
            for column, target in zip(columns.T, targets, strict=True)
        ]

    @staticmethod
    def _apply(calibrators: list[Any], probability: np.ndarray) -> np.ndarray:
        if not calibrators:
            return probability
        columns = _columns(probability)
        out = np.column_stack(
            [c.predict(col) for c, col in zip(calibrators, columns.T, strict=True)]
        )
        if probability.ndim == 1:
            return out[:, 0]
        totals = out.sum(axis=1, keepdims=True)
        # a row every one-vs-rest calibrator sends to 0 keeps its raw scores
        return np.where(totals > 0, out / np.where(totals > 0, totals, 1.0), probability)

    def _held_out_ece(self, truth: np.ndarray, probability: np.ndarray) -> float:
        if self.calibration == "none":
            held_out = probability
        else:
            counts = np.bincount(truth)
            folds = int(min(5, counts[counts > 0].min()))
            if folds < 2:
                raise ValueError("y_true needs at least two rows of each class to calibrate")
            held_out = np.empty_like(probability)
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            columns = _columns(probability)
            for train, test in splitter.split(columns, truth):
                calibrators = self._fit_calibrators(truth[train], columns[train])
                held_out[test] = self._apply(calibrators, probability[test])
        if probability.ndim == 1:
            return _binned_gap(probability, truth.astype(np.float64), held_out)
        # top-label calibration: the predicted class's probability against being right
        rows = np.arange(len(truth))
        top = probability.argmax(axis=1)
        right = (truth == top).astype(np.float64)
        return _binned_gap(probability[rows, top], right, held_out[rows, top])


def _binned_gap(score: np.ndarray, outcome: np.ndarray, probability: np.ndarray) -> float:
    """Expected calibration error with the rows binned by the *raw* score (10 bins of equal
    count): a calibrator that merges rows whose rates differ (a rate that is not monotone in
    the score) is calibrated on average, and only bins of the score the model ranks by show
    it."""
    edges = np.quantile(score, np.linspace(0.0, 1.0, 11)[1:-1])
    ids = np.searchsorted(edges, score, side="right")
    gaps = np.bincount(ids, weights=outcome - probability, minlength=10)
    return float(np.sum(np.abs(gaps)) / len(score))


class _IsotonicCalibrator:
    """Isotonic regression from score to label; ``interpolate`` joins its steps by straight
    lines through each step's mean score, so that rows the model ranks apart keep distinct
    probabilities (a flat step makes the expected ROC AUC count them as ties)."""

    def __init__(self, interpolate: bool) -> None:
        self.interpolate = interpolate

    def fit(
        self, score: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None
    ) -> _IsotonicCalibrator:
        self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        fitted = self.isotonic_.fit_transform(score, target, sample_weight=weight)
        if self.interpolate:
            values, block = np.unique(fitted, return_inverse=True)
            mass = np.ones(len(score)) if weight is None else weight
            self.knots_x_ = np.bincount(block, weights=score * mass) / np.bincount(
                block, weights=mass
            )
            self.knots_y_ = values
        return self

    def predict(self, score: np.ndarray) -> np.ndarray:
        if not self.interpolate:
            return self.isotonic_.predict(score)
        return np.interp(score, self.knots_x_, self.knots_y_)


def _probabilities(values: Any, name: str) -> np.ndarray:
    if isinstance(values, pd.DataFrame | pd.Series):
        array = values.to_numpy(dtype=np.float64)
    else:
        array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-d (binary) or 2-d (one column per class)")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if array.ndim == 2 and array.shape[1] < 2:
        raise ValueError(f"{name} needs at least two columns, got {array.shape[1]}")
    if np.isnan(array).any():
        raise ValueError(f"{name} holds missing values")
    if ((array < 0.0) | (array > 1.0)).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    return array


def _columns(probability: np.ndarray) -> np.ndarray:
    return probability[:, None] if probability.ndim == 1 else probability


def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")


def _check_settings(confidence: float, draws: int) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if isinstance(draws, bool) or not isinstance(draws, int | np.integer) or draws < 2:
        raise ValueError(f"draws must be an integer >= 2, got {draws!r}")


def _confusion(probability: np.ndarray, predicted: np.ndarray) -> ExpectedConfusion:
    tp = float(probability[predicted].sum())
    fp = float((1.0 - probability[predicted]).sum())
    fn = float(probability[~predicted].sum())
    tn = float((1.0 - probability[~predicted]).sum())
    return ExpectedConfusion(tp=tp, fp=fp, tn=tn, fn=fn)


def _ratio(numerator: np.ndarray | float, denominator: np.ndarray | float) -> Any:
    # an empty denominator makes the metric undefined, as scikit-learn's zero_division=nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(denominator) > 0, numerator, np.nan) / np.where(
            np.asarray(denominator) > 0, denominator, 1.0
        )


def _expected_auc(score: np.ndarray, probability: np.ndarray) -> float:
    order = np.argsort(-score, kind="stable")
    ordered_score = score[order]
    # one ROC point per distinct score: a tie group moves the curve in one straight step
    last_of_group = np.r_[ordered_score[1:] != ordered_score[:-1], True]
    tp = np.r_[0.0, np.cumsum(probability[order])[last_of_group]]
    fp = np.r_[0.0, np.cumsum(1.0 - probability[order])[last_of_group]]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return float("nan")
    area = np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2.0)
    return float(area / (tp[-1] * fp[-1]))


def _label_draws(probability: np.ndarray, draws: int, random_state: int):
    """Yield batches of simulated 0/1 label rows (draws × rows) from ``probability``."""
    rng = np.random.default_rng(random_state)
    per_batch = max(1, _CELLS_PER_BATCH // len(probability))
    done = 0
    while done < draws:
        size = min(per_batch, draws - done)
        yield rng.random((size, len(probability))) < probability
        done += size


def _interval(metric: str, value: float, se: float, confidence: float) -> MetricEstimate:
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    low, high = value - z * se, value + z * se
    return MetricEstimate(
        metric=metric,
        value=float(value),
        standard_error=float(se),
        low=float(np.clip(low, 0.0, 1.0)),
        high=float(np.clip(high, 0.0, 1.0)),
    )


def _predictions(y_pred: Any, rows: int, allowed: int) -> np.ndarray:
    predicted = as_labels(y_pred, "y_pred", rows, reference="y_prob")
    if not np.isin(predicted, np.arange(allowed)).all():
        raise ValueError(f"y_pred must hold class indices 0..{allowed - 1}")
    return predicted.astype(np.int64)


def _binary_predicted(score: np.ndarray, y_pred: Any, threshold: float) -> np.ndarray:
    if y_pred is None:
        return score >= threshold
    return _predictions(y_pred, len(score), 2).astype(bool)


def _binary_points(
    score: np.ndarray, probability: np.ndarray, predicted: np.ndarray
) -> dict[str, float]:
    confusion = _confusion(probability, predicted)
    return {
        "accuracy": (confusion.tp + confusion.tn) / len(probability),
        "precision": float(_ratio(confusion.tp, confusion.tp + confusion.fp)),
        "recall": float(_ratio(confusion.tp, confusion.tp + confusion.fn)),
        "f1": float(_ratio(2 * confusion.tp, 2 * confusion.tp + confusion.fp + confusion.fn)),
        "roc_auc": _expected_auc(score, probability),
    }


def _estimate_binary(
    score: np.ndarray,
    probability: np.ndarray,
    y_pred: Any,
    threshold: float,
    confidence: float,
    draws: int,
    random_state: int,
    calibration_variance: dict[str, float] | None = None,
) -> PerformanceEstimate:
    rows = len(probability)
    predicted = _binary_predicted(score, y_pred, threshold)
    points = _binary_points(score, probability, predicted)
    right = np.where(predicted, probability, 1.0 - probability)
    variance = {"accuracy": float(np.sum(right * (1.0 - right))) / rows**2}

    # the realised metrics of each simulated label draw; ranks give the AUC of a draw as
    # the Mann-Whitney statistic, ties counted half
    ranks = stats.rankdata(score)
    predicted_f = predicted.astype(np.float64)
    predicted_positive = predicted_f.sum()
    simulated: dict[str, list[np.ndarray]] = {
        "precision": [],
        "recall": [],
        "f1": [],
        "roc_auc": [],
    }
    for labels in _label_draws(probability, draws, random_state):
        labels_f = labels.astype(np.float64)
        tp = labels_f @ predicted_f
        positives = labels_f.sum(axis=1)
        fp = predicted_positive - tp
        fn = positives - tp
        negatives = rows - positives
        simulated["precision"].append(_ratio(tp, tp + fp) * np.ones_like(tp))
        simulated["recall"].append(_ratio(tp, positives))
        simulated["f1"].append(_ratio(2 * tp, 2 * tp + fp + fn))
        rank_sum = labels_f @ ranks
        simulated["roc_auc"].append(
            _ratio(rank_sum - positives * (positives + 1) / 2.0, positives * negatives)
        )
    for name, values in simulated.items():
        variance[name] = _defined_variance(np.concatenate(values))
    metrics = _with_intervals(points, variance, calibration_variance, confidence)
    return PerformanceEstimate(
        metrics=metrics,
        rows=rows,
        confusion=_confusion(probability, predicted),
        confidence=confidence,
        trusted=True,
    )


def _with_intervals(
    points: dict[str, float],
    variance: dict[str, float],
    calibration_variance: dict[str, float] | None,
    confidence: float,
) -> dict[str, MetricEstimate]:
    # the labels' randomness and the calibrator's error are independent: variances add
    extra = calibration_variance or {}
    return {
        name: _interval(
            name, value, float(np.sqrt(variance[name] + extra.get(name, 0.0))), confidence
        )
        for name, value in points.items()
    }


def _macro_f1(tp: np.ndarray, predicted_counts: np.ndarray, true_counts: np.ndarray) -> Any:
    # F1_k = 2 TP_k / (predicted as k + truly k); classes never predicted nor present drop out
    denominator = predicted_counts + true_counts
    per_class = _ratio(2 * tp, denominator)
    return np.nanmean(per_class, axis=-1)


def _multiclass_predicted(score: np.ndarray, y_pred: Any) -> np.ndarray:
    if y_pred is None:
        return score.argmax(axis=1)
    return _predictions(y_pred, score.shape[0], score.shape[1])


def _multiclass_points(probability: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    rows, classes = probability.shape
    one_hot = np.zeros((rows, classes))
    one_hot[np.arange(rows), predicted] = 1.0
    expected_tp = (probability * one_hot).sum(axis=0)
    return {
        "accuracy": float(probability[np.arange(rows), predicted].mean()),
        "macro_f1": float(_macro_f1(expected_tp, one_hot.sum(axis=0), probability.sum(axis=0))),
    }


def _estimate_multiclass(
    score: np.ndarray,
    probability: np.ndarray,
    y_pred: Any,
    confidence: float,
    draws: int,
    random_state: int,
    calibration_variance: dict[str, float] | None = None,
) -> PerformanceEstimate:
    rows, classes = probability.shape
    predicted = _multiclass_predicted(score, y_pred)
    points = _multiclass_points(probability, predicted)
    right = probability[np.arange(rows), predicted]
    variance = {"accuracy": float(np.sum(right * (1.0 - right))) / rows**2}
    predicted_counts = np.bincount(predicted, minlength=classes)

    rng = np.random.default_rng(random_state)
    cumulative = np.cumsum(probability, axis=1)
    cumulative[:, -1] = np.inf  # rounding never leaves a draw without a class
    per_batch = max(1, _CELLS_PER_BATCH // (rows * classes))
    simulated = []
    done = 0
    while done < draws:
        size = min(per_batch, draws - done)
        u = rng.random((size, rows, 1))
        drawn = (u >= cumulative[None, :, :]).sum(axis=2)  # the class each row draws
        hit = drawn == predicted[None, :]
        tp = np.stack([(hit & (predicted == k)[None, :]).sum(axis=1) for k in range(classes)], 1)
        true_counts = np.stack([(drawn == k).sum(axis=1) for k in range(classes)], axis=1)
        simulated.append(_macro_f1(tp, predicted_counts[None, :], true_counts))
        done += size
    variance["macro_f1"] = _defined_variance(np.concatenate(simulated))
    metrics = _with_intervals(points, variance, calibration_variance, confidence)
    return PerformanceEstimate(
        metrics=metrics, rows=rows, confusion=None, confidence=confidence, trusted=True
    )
