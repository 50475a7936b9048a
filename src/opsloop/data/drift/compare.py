"""Column-by-column drift between a reference and a current data set, with one verdict.

Defaults, by the column's drift kind (see :mod:`opsloop.data.drift.summary`):

============  ==============================  ==============================
kind          deciding statistic (default)    effect size reported beside it
============  ==============================  ==============================
numeric       Kolmogorov-Smirnov test         Wasserstein / reference std
datetime      KS test on epoch seconds        Wasserstein / reference std
text          KS test on length (characters)  Wasserstein / reference std
discrete      chi-square test on the values   Wasserstein / reference std
categorical   chi-square test                 Jensen-Shannon distance
bool          chi-square test                 Jensen-Shannon distance
============  ==============================  ==============================

Every column also reports the other cheap statistics of its kind (numeric: Wasserstein, PSI,
Jensen-Shannon, Hellinger on reference-decile bins; counts: PSI, Jensen-Shannon, Hellinger,
L-infinity). Any of them, or ``anderson`` for numeric columns, can decide instead
(``tests={"salary": "psi"}``). ``thresholds`` sets cut-offs by column name (for that column's
deciding statistic) or by test name (for that statistic in every column, the default deciding
test included: ``thresholds={"ks": 0.01}``); a column's own entry wins. Distances decide by
``statistic >= threshold`` with defaults from :data:`DEFAULT_THRESHOLDS`; tests decide by their
p-value, adjusted for the number of columns tested (``correction``, Holm by default) and
compared with ``alpha``. Very large samples make tiny changes significant: ``min_effect`` (a
number, or per column) additionally requires the effect size to reach it before a column counts
as drifted.

The dataset drifts when any column drifts (with a family-wise or false-discovery correction
that is what keeps the dataset's error rate at ``alpha``), or, with ``drift_share``, when at
least that share of the columns drift.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], 5000)})
>>> cur = pd.DataFrame({"x": rng.normal(0.2, size=5000), "c": rng.choice(["a", "b"], 5000)})
>>> result = compare(ref, cur)
>>> [(c.column, c.test, c.drifted) for c in result.columns]
[('x', 'ks', True), ('c', 'chi2', False)]
>>> result.drifted, result.share_drifted
(True, 0.5)
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opsloop.data.drift.binning import DEFAULT_BINS, bin_counts, quantile_edges, sorted_quantiles
from opsloop.data.drift.correction import adjust_p_values
from opsloop.data.drift.distances import chi_square, hellinger, jensen_shannon, l_infinity, psi
from opsloop.data.drift.numeric import SortedSample, anderson_darling, ks_and_wasserstein
from opsloop.data.drift.result import StatResult, verdict
from opsloop.data.drift.sketched import (
    DEFAULT_SKETCH_K,
    SKETCH_CONFIDENCE,
    SketchedSample,
    cdf_steps,
    sketch_ks,
    sketch_wasserstein,
)
from opsloop.data.drift.smirnov import METHODS as KS_P_VALUE_METHODS
from opsloop.data.drift.summary import COUNT_KINDS, ColumnSummary, ReferenceProfile, summarize
from opsloop.data.period_columns import COMPLEX_REASON, holds_complex

#: Thresholds of the distances when they decide (tests use ``alpha``).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "wasserstein": 0.1,  # normalised: a tenth of the reference's standard deviation
    "psi": 0.2,  # the usual "significant shift" line of credit-risk practice
    "js": 0.1,
    "hellinger": 0.1,
    "linf": 0.1,
}
SAMPLE_TESTS = ("ks", "anderson", "wasserstein", "psi", "js", "hellinger")
COUNT_TESTS = ("chi2", "psi", "js", "hellinger", "linf")
#: What the sketch mode computes on a numeric-like column (each with its bound).
SKETCH_TESTS = ("ks", "wasserstein")
MODES = ("auto", "exact", "sketch")
PLOT_BINS = 40
PLOT_TOP = 20


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column, with the statistic that decided it and the others.

    ``p_value`` is the deciding test's own p-value; ``p_adjusted`` is that p-value after the
    multiple-testing correction, and it is ``p_adjusted`` that is compared with
    ``threshold``. :attr:`reason` says so in words. ``nonfinite_reference`` and
    ``nonfinite_current`` count the ±inf values the tests left out, as the missing
    fractions and ``invalid_current`` account for the other rows not compared.
    """

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    p_adjusted: float | None
    threshold: float
    drifted: bool
    effect_name: str
    effect: float
    min_effect: float | None
    n_reference: int
    n_current: int
    missing_reference: float
    missing_current: float
    invalid_current: int
    statistics: tuple[StatResult, ...] = ()
    plot: Mapping = field(default_factory=dict, repr=False)
    statistic_bounds: tuple[float, float] | None = None
    p_value_bounds: tuple[float, float] | None = None
    p_adjusted_bounds: tuple[float, float] | None = None
    rank_errors: tuple[float, float] | None = None
    nonfinite_reference: int = 0
    nonfinite_current: int = 0

    @property
    def sketched(self) -> bool:
        """Whether the deciding statistic came from quantile sketches (with bounds)."""
        return self.statistic_bounds is not None

    @property
    def verdict_certain(self) -> bool:
        """Whether the verdict holds anywhere within the bounds: for a test in the sketch
        mode, when the whole adjusted p-value interval lies on one side of the threshold
        (an exact test's adjusted p-value has an interval too there, from the sketched
        columns' p-values it is adjusted with); for a sketched distance, when the
        statistic's interval does; always in the exact mode."""
        if self.p_adjusted_bounds is not None:
            low, high = self.p_adjusted_bounds
            return high < self.threshold or low >= self.threshold
        if not self.sketched:
            return True
        low, high = self.statistic_bounds
        return low >= self.threshold or high < self.threshold

    def to_dict(self) -> dict:
        """JSON-safe dictionary (non-finite numbers become ``None``); a sketched column
        adds its bounds, the sketches' rank errors and confidence, and ``verdict_certain``."""
        out = {
            "column": self.column,
            "kind": self.kind,
            "test": self.test,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "p_adjusted": _finite(self.p_adjusted),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "effect_name": self.effect_name,
            "effect": _finite(self.effect),
            "min_effect": self.min_effect,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "missing_reference": self.missing_reference,
            "missing_current": self.missing_current,
            "invalid_current": self.invalid_current,
            "nonfinite_reference": self.nonfinite_reference,
            "nonfinite_current": self.nonfinite_current,
            "reason": self.reason,
            "statistics": [s.to_dict() for s in self.statistics],
        }
        if self.sketched:
            out["sketch"] = {
                "statistic_bounds": [_finite(v) for v in self.statistic_bounds],
                "p_value_bounds": None
                if self.p_value_bounds is None
                else [_finite(v) for v in self.p_value_bounds],
                "p_adjusted_bounds": None
                if self.p_adjusted_bounds is None
                else [_finite(v) for v in self.p_adjusted_bounds],
                "rank_error_reference": self.rank_errors[0],
                "rank_error_current": self.rank_errors[1],
                "confidence": SKETCH_CONFIDENCE,
                "verdict_certain": self.verdict_certain,
            }
        elif self.p_adjusted_bounds is not None:
            out["p_adjusted_bounds"] = [_finite(v) for v in self.p_adjusted_bounds]
            out["verdict_certain"] = self.verdict_certain
        return out

    @property
    def reason(self) -> str:
        """Why the column drifted or not, naming the number that decided.

        >>> import pandas as pd
        >>> ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50, "d": ["a", "b"] * 50})
        >>> cur = pd.DataFrame({"c": ["a"] * 80 + ["b"] * 20, "d": ["a", "b"] * 50})
        >>> print(compare(ref, cur)["c"].reason)
        chi2 p-value 1.71e-05, adjusted 3.43e-05 < alpha 0.05: drifted
        >>> print(compare(ref, cur)["d"].reason)
        chi2 p-value 1, adjusted 1 >= alpha 0.05: stable
        """
        if self.p_adjusted is not None:
            below = self.p_adjusted < self.threshold
            text = (
                f"{self.test} p-value {self.p_value:.3g}, adjusted {self.p_adjusted:.3g} "
                f"{'<' if below else '>='} alpha {self.threshold:g}"
            )
        else:
            below = self.statistic >= self.threshold
            text = (
                f"{self.test} {self.statistic:.3g} {'>=' if below else '<'} "
                f"threshold {self.threshold:g}"
            )
        if self.sketched:
            low, high = self.p_adjusted_bounds or self.statistic_bounds
            what = "adjusted p-value" if self.p_adjusted_bounds else self.test
            uncertain = ", verdict uncertain within it, so not drifted"
            text += (
                f" (sketched: {what} within [{low:.3g}, {high:.3g}]"
                f"{'' if self.verdict_certain else uncertain})"
            )
        if below and self.min_effect is not None and not self.drifted:
            return (
                f"{text}, but {self.effect_name} {self.effect:.3g} < min_effect "
                f"{self.min_effect:g}: stable"
            )
        return f"{text}: {'drifted' if self.drifted else 'stable'}"


@dataclass(frozen=True)
class DriftResult:
    """Drift of every compared column and the dataset's verdict."""

    columns: tuple[ColumnDrift, ...]
    alpha: float
    correction: str
    drift_share: float | None
    drifted: bool
    skipped: tuple[tuple[str, str], ...] = ()
    ks_p_value: str = "scipy"
    mode: str = "exact"
    mode_reason: str = "in-memory data"

    @property
    def compared(self) -> bool:
        """Whether any column was compared (when none was, ``drifted`` says nothing).

        >>> import pandas as pd
        >>> compare(pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": [None, None]})).compared
        False
        """
        return bool(self.columns)

    @property
    def n_drifted(self) -> int:
        """Number of drifted columns."""
        return sum(c.drifted for c in self.columns)

    @property
    def share_drifted(self) -> float:
        """Share of compared columns that drifted."""
        return self.n_drifted / len(self.columns) if self.columns else 0.0

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise KeyError(column)

    def to_dict(self) -> dict:
        """JSON-safe dictionary: the dataset verdict and one entry per column."""
        return {
            "dataset": {
                "drifted": self.drifted,
                "compared": self.compared,
                "n_columns": len(self.columns),
                "n_drifted": self.n_drifted,
                "n_skipped": len(self.skipped),
                "share_drifted": self.share_drifted,
                "alpha": self.alpha,
                "correction": self.correction,
                "drift_share": self.drift_share,
                "ks_p_value": self.ks_p_value,
                "mode": self.mode,
                "mode_reason": self.mode_reason,
            },
            "columns": [c.to_dict() for c in self.columns],
            "skipped": [{"column": c, "reason": r} for c, r in self.skipped],
        }

    def to_json(self, **kwargs) -> str:
        """The :meth:`to_dict` document as JSON text."""
        return json.dumps(self.to_dict(), **kwargs)

    def to_frame(self) -> pd.DataFrame:
        """One row per column: test, statistic, p-values, threshold, effect, verdict."""
        keys = [
            "column",
            "kind",
            "test",
            "statistic",
            "p_value",
            "p_adjusted",
            "threshold",
            "effect_name",
            "effect",
            "drifted",
            "n_reference",
            "n_current",
        ]
        return pd.DataFrame([{k: getattr(c, k) for k in keys} for c in self.columns], columns=keys)


@dataclass(frozen=True)
class _Sizes:
    """What the verdict keeps of a column summary (not its values)."""

    name: str
    kind: str
    n_rows: int
    n_missing: int
    n_invalid: int
    n_valid: int
    n_nonfinite: int

    @classmethod
    def of(cls, summary: ColumnSummary) -> _Sizes:
        # The tests leave ±inf out like missing values; counted here so that a result
        # never loses rows without saying so. A column summarised as counts kept only the
        # finite levels: its infinities are the rows neither missing, invalid nor counted.
        if summary.sample is not None:
            n_nonfinite = summary.sample.n_nonfinite
        else:
            n_nonfinite = max(
                summary.n_rows - summary.n_missing - summary.n_invalid - summary.n_valid, 0
            )
        return cls(
            summary.name,
            summary.kind,
            summary.n_rows,
            summary.n_missing,
            summary.n_invalid,
            summary.n_valid,
            n_nonfinite,
        )


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _lookup(mapping: Mapping | float | None, column: str, test: str | None = None):
    if mapping is None or isinstance(mapping, int | float):
        return mapping
    if column in mapping:
        return mapping[column]
    return mapping.get(test) if test is not None else None


def _sample_statistics(
    ref: ColumnSummary, cur: ColumnSummary, bins: int, test: str, ks_p_value: str
):
    d, p, w = ks_and_wasserstein(ref.sample, cur.sample, ks_p_value=ks_p_value)
    scale = ref.sample.std()
    w_norm = w / scale if scale > 0 else (0.0 if w == 0 else math.inf)
    edges = quantile_edges(ref.sample.values, bins)
    rc, cc = bin_counts(ref.sample.values, edges), bin_counts(cur.sample.values, edges)
    values = {
        "ks": (d, p),
        "wasserstein": (w_norm, None),
        "psi": (psi(rc, cc), None),
        "js": (jensen_shannon(rc, cc), None),
        "hellinger": (hellinger(rc, cc), None),
    }
    if test == "anderson":
        values["anderson"] = anderson_darling(ref.sample, cur.sample)
    return values, ("wasserstein", w_norm)


def _count_statistics(ref: ColumnSummary, cur: ColumnSummary):
    labels = list(ref.counts) + [k for k in cur.counts if k not in ref.counts]
    if ref.kind == "discrete":
        labels.sort()  # numeric levels in value order: the CDF distance and plots need it
    rc = np.array([ref.counts.get(k, 0) for k in labels], dtype=np.int64)
    cc = np.array([cur.counts.get(k, 0) for k in labels], dtype=np.int64)
    js = jensen_shannon(rc, cc)
    values = {
        "chi2": chi_square(rc, cc),
        "psi": (psi(rc, cc), None),
        "js": (js, None),
        "hellinger": (hellinger(rc, cc), None),
        "linf": (l_infinity(rc, cc), None),
    }
    effect = ("js", js)
    if ref.kind == "discrete":
        w = discrete_wasserstein(np.asarray(labels, dtype=float), rc, cc, normalize=True)
        values["wasserstein"] = (w, None)
        effect = ("wasserstein", w)
    return values, effect, labels, rc, cc


def discrete_wasserstein(levels, reference, current, *, normalize: bool = False) -> float:
    """Wasserstein-1 distance between two samples given as counts on sorted numeric
    ``levels`` (equal to scipy's ``wasserstein_distance`` on the expanded values);
    ``normalize`` divides by the reference's population standard deviation.

    >>> import numpy as np
    >>> discrete_wasserstein(np.array([0.0, 1.0, 2.0]), np.array([1, 1, 0]), np.array([0, 1, 1]))
    1.0
    """
    levels = np.asarray(levels, dtype=float)
    p = reference / reference.sum()
    q = current / current.sum()
    gaps = np.diff(levels)
    distance = float(np.sum(np.abs(np.cumsum(p) - np.cumsum(q))[:-1] * gaps))
    if not normalize:
        return distance
    mean = float(np.sum(p * levels))
    scale = float(np.sqrt(np.sum(p * (levels - mean) ** 2)))
    if scale == 0.0:
        return 0.0 if distance == 0.0 else math.inf
    return distance / scale


def _sample_plot(ref: ColumnSummary, cur: ColumnSummary) -> dict:
    a, b = ref.sample.values, cur.sample.values
    qa, qb = sorted_quantiles(a, [0.005, 0.995]), sorted_quantiles(b, [0.005, 0.995])
    lo, hi = float(min(qa[0], qb[0])), float(max(qa[1], qb[1]))
    if _integral(a) and _integral(b):
        # Whole numbers (ages, counts): bins centred on integers, or equal-width bins would
        # alias into alternating tall and short bars.
        step = max(1.0, math.ceil((math.floor(hi) - math.ceil(lo) + 1) / PLOT_BINS))
        edges = np.arange(math.ceil(lo) - 0.5, math.floor(hi) + 0.5 + step, step)
    else:
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, PLOT_BINS + 1)
    inner = edges[1:-1]
    ra = bin_counts(a, inner) / a.size
    cb = bin_counts(b, inner) / b.size
    return {
        "type": "histogram",
        "edges": edges.tolist(),
        "reference": ra.tolist(),
        "current": cb.tolist(),
    }


def _integral(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def _count_plot(labels, rc, cc, ordered: bool = False) -> dict:
    if ordered:  # numeric levels: every level, in value order
        top = np.arange(len(labels))
    else:
        order = np.argsort(-(rc / max(rc.sum(), 1) + cc / max(cc.sum(), 1)), kind="stable")
        top = order[:PLOT_TOP]
    return {
        "type": "bar",
        "labels": [str(labels[i]) for i in top],
        "reference": (rc[top] / max(rc.sum(), 1)).tolist(),
        "current": (cc[top] / max(cc.sum(), 1)).tolist(),
    }


@dataclass(frozen=True)
class _ColumnComparison:
    """One compared column before the p-values are adjusted across columns."""

    reference: _Sizes
    current: _Sizes
    decider: StatResult
    statistics: tuple[StatResult, ...]
    effect_name: str
    effect: float
    plot: Mapping
    rank_errors: tuple[float, float] | None = None


def _rank_error(sample) -> float:
    return sample.rank_error if isinstance(sample, SketchedSample) else 0.0


def _certainly_drifted(decider: StatResult, adjusted_bounds) -> bool:
    """The sketch mode's verdict: drifted only where every value within the bounds says so.

    A sketched KS statistic is the largest gap between two estimated CDFs, each off by up
    to its rank error, so it leans high: on a large sample, where the critical distance is
    far below the sketches' error, the point estimate alone would call unchanged columns
    drifted (13 of 18 at 100,000,000 rows here). A verdict the bounds cannot decide is
    reported as not drifted, with ``verdict_certain`` false, rather than as a drift that
    may not exist.

    >>> s = StatResult("ks", 0.004, 0.01, 0.05, True, statistic_bounds=(0.0, 0.009))
    >>> _certainly_drifted(s, (1e-9, 0.6)), _certainly_drifted(s, (1e-9, 0.01))
    (False, True)
    """
    if adjusted_bounds is not None:
        return bool(adjusted_bounds[1] < decider.threshold)
    if decider.statistic_bounds is not None and decider.p_value is None:
        return bool(decider.statistic_bounds[0] >= decider.threshold)
    return bool(decider.drifted)


def _sketched(summary: ColumnSummary, k: int) -> ColumnSummary:
    """A numeric-like column's summary with its values replaced by their sketch."""
    if not isinstance(summary.sample, SortedSample):
        return summary
    return dataclasses.replace(summary, sample=SketchedSample.of_sorted(summary.sample, k))


def _deciding_test(summary: ColumnSummary, test: str | None) -> str:
    """The test that decides the column: the one asked for, or its kind's default."""
    if summary.kind in COUNT_KINDS:
        allowed = COUNT_TESTS + (("wasserstein",) if summary.kind == "discrete" else ())
        test = test or "chi2"
    else:
        allowed = SAMPLE_TESTS
        test = test or "ks"
    if test not in allowed:
        raise ValueError(
            f"column {summary.name!r} ({summary.kind}): test must be one of {allowed}, got {test!r}"
        )
    return test


def _cut(name: str, p_value, decider: str, column: str, thresholds, alpha: float) -> float:
    """The threshold of one statistic: the column's own (for its deciding test), else the
    one named after the statistic, else ``alpha`` for a test or the distance's default."""
    if thresholds is not None:
        if name == decider and column in thresholds:
            return thresholds[column]
        if name in thresholds:
            return thresholds[name]
    return alpha if p_value is not None else DEFAULT_THRESHOLDS[name]


def _sketch_statistics(ref: ColumnSummary, cur: ColumnSummary, test: str, ks_p_value: str):
    if test not in SKETCH_TESTS:
        raise ValueError(
            f"column {ref.name!r} ({ref.kind}): the sketch mode computes {SKETCH_TESTS}, "
            f"not {test!r}; use mode='exact' for it"
        )
    ks = sketch_ks(ref.sample, cur.sample, ks_p_value=ks_p_value)
    w = sketch_wasserstein(ref.sample, cur.sample, normalize=True)
    return {"ks": ks, "wasserstein": w}, ("wasserstein", w.statistic)


def _sketch_plot(ref: ColumnSummary, cur: ColumnSummary) -> dict:
    # The histogram of the estimated CDFs: each share is within the rank errors' sum.
    steps = [cdf_steps(ref.sample)[:2], cdf_steps(cur.sample)[:2]]
    tails = [
        points[np.minimum(np.searchsorted(shares, [0.005, 0.995]), points.size - 1)]
        for points, shares in steps
    ]
    lo, hi = float(min(t[0] for t in tails)), float(max(t[1] for t in tails))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, PLOT_BINS + 1)
    shares = []
    for points, cumulative in steps:
        at = np.searchsorted(points, edges[1:-1], side="left") - 1
        below = np.where(at >= 0, cumulative[np.maximum(at, 0)], 0.0)
        shares.append(np.diff(np.r_[0.0, below, 1.0]).tolist())
    return {
        "type": "histogram",
        "edges": edges.tolist(),
        "reference": shares[0],
        "current": shares[1],
    }


def _compare_column(ref, cur, test, thresholds, alpha, bins, plots, ks_p_value):
    test = _deciding_test(ref, test)
    if ref.kind not in COUNT_KINDS and (
        isinstance(ref.sample, SketchedSample) or isinstance(cur.sample, SketchedSample)
    ):
        bounded, effect = _sketch_statistics(ref, cur, test, ks_p_value)
        stats = tuple(
            dataclasses.replace(
                verdict(
                    name,
                    b.statistic,
                    b.p_value,
                    _cut(name, b.p_value, test, ref.name, thresholds, alpha),
                ),
                statistic_bounds=b.bounds,
                p_value_bounds=b.p_value_bounds,
            )
            for name, b in bounded.items()
        )
        decider = next(s for s in stats if s.test == test)
        plot = _sketch_plot(ref, cur) if plots else {}
        return _ColumnComparison(
            _Sizes.of(ref),
            _Sizes.of(cur),
            decider,
            stats,
            effect[0],
            float(effect[1]),
            plot,
            (_rank_error(ref.sample), _rank_error(cur.sample)),
        )
    if ref.kind in COUNT_KINDS:
        values, effect, labels, rc, cc = _count_statistics(ref, cur)
        plot = _count_plot(labels, rc, cc, ordered=ref.kind == "discrete") if plots else {}
    else:
        values, effect = _sample_statistics(ref, cur, bins, test, ks_p_value)
        plot = _sample_plot(ref, cur) if plots else {}
    stats = tuple(
        verdict(name, statistic, p, _cut(name, p, test, ref.name, thresholds, alpha))
        for name, (statistic, p) in values.items()
    )
    decider = next(s for s in stats if s.test == test)
    effect_name, effect_value = effect
    return _ColumnComparison(
        _Sizes.of(ref), _Sizes.of(cur), decider, stats, effect_name, float(effect_value), plot
    )


def _summary(data, name: str, kind: str | None) -> ColumnSummary:
    """Column ``name`` of a DataFrame or a profile, summarised as ``kind``."""
    if isinstance(data, ReferenceProfile):
        summary = data[name]
        if kind is not None and summary.kind != kind:
            raise ValueError(
                f"column {name!r} is summarised as {summary.kind} in the current profile but "
                f"as {kind} in the reference; summarise the current data with the "
                "reference's kinds (ReferenceProfile.from_frame(current, kinds=...))"
            )
        return summary
    return summarize(data[name], kind, name)


def _what_the_rows_were(summary: ColumnSummary) -> str:
    """Why a side had no value to compare: its rows by what they held (empty when none)."""
    sizes = _Sizes.of(summary)
    if sizes.n_rows == 0:
        return " (no rows)"
    held = [
        f"{count} {what}"
        for count, what in (
            (sizes.n_missing, "missing"),
            (sizes.n_invalid, "invalid"),
            (sizes.n_nonfinite, "infinite"),
        )
        if count
    ]
    return f" ({sizes.n_rows} rows: {', '.join(held)})" if held else ""


def _complex_columns(reference, current, names: list, current_names) -> dict[str, str]:
    """The columns among ``names`` that hold complex numbers on either side, with why each
    is not compared (a Dask side is judged by its dtypes; a profile holds no complex column,
    its summaries having refused them)."""
    refused: dict[str, str] = {}
    for side, frame in (("reference", reference), ("current", current)):
        if isinstance(frame, ReferenceProfile):
            continue
        for name in names:
            if name in refused or name not in frame.columns:
                continue
            column = frame.dtypes[name] if not isinstance(frame, pd.DataFrame) else frame[name]
            if holds_complex(column):
                refused[name] = f"{COMPLEX_REASON} (in {side})"
    return refused


def _require_unique_columns(side: str, frame, compared: list) -> None:
    """Columns are compared by name: a compared name twice in a frame has no one column to
    compare. A name twice among the columns left out of ``compared`` is no concern of ours."""
    if isinstance(frame, ReferenceProfile) or not hasattr(frame, "columns"):
        return
    wanted = set(compared)
    duplicated = [n for n in frame.columns[frame.columns.duplicated()] if n in wanted]
    if duplicated:
        names = sorted({str(name) for name in duplicated})
        raise ValueError(f"{side} has more than one column named {names}; rename them")


def compare(
    reference,
    current,
    *,
    columns: Iterable[str] | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    min_effect: float | Mapping[str, float] | None = None,
    drift_share: float | None = None,
    bins: int = DEFAULT_BINS,
    plots: bool = True,
    ks_p_value: str = "scipy",
    mode: str = "auto",
    sketch_k: int = DEFAULT_SKETCH_K,
) -> DriftResult:
    """Compare ``current`` with ``reference`` column by column (see the module's table).

    ``reference`` is a DataFrame or a :class:`ReferenceProfile` built from one; ``current``
    a DataFrame, or a profile summarised with the reference's kinds. Either side may be a
    ``dask.dataframe``: its columns are then summarised partition by partition and merged,
    and the result equals the in-memory one (exact mode, :mod:`opsloop.data.distributed.drift`).
    Columns
    default to those the two sides share; a column on one side only (or a requested column
    missing from ``current``) is reported in ``skipped`` with the side it is missing from,
    not silently dropped; so is a column of complex numbers on either side, which has no
    order to test (with a warning; :mod:`opsloop.data.period_columns`). When nothing could
    be compared the result has no columns and :attr:`DriftResult.compared` is false: no
    verdict, rather than "no drift".
    ``ks_p_value="fast"`` sums the Kolmogorov-Smirnov series here where scipy's takes up to a
    second per column (the p-value
    then agrees with scipy's to 1e-11 relative instead of bit for bit; see
    :mod:`opsloop.data.drift.smirnov`).

    ``mode`` is ``exact``, ``sketch`` or ``auto``. The sketch mode summarises each
    numeric-like column (both sides) as a KLL sketch of ``sketch_k`` (and exact counts and
    moments), and computes KS (the default test) and the normalised Wasserstein distance
    from the sketches, each with the interval that holds the exact value (99% confidence),
    and the p-value's and adjusted p-value's intervals (:mod:`opsloop.data.drift.sketched`);
    a column counts as drifted there only when its whole interval says so (otherwise it is
    stable with ``verdict_certain`` false); count-like columns (chi-square) stay exact.
    ``auto`` is exact for in-memory data and, when a side is a Dask frame, exact where the
    sorted values fit in memory, otherwise the sketch mode (the rule:
    :func:`opsloop.data.distributed.drift.choose_mode`). The result states its ``mode``
    and ``mode_reason``.

    >>> import pandas as pd
    >>> ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    >>> cur = pd.DataFrame({"c": ["a"] * 80 + ["b"] * 20})
    >>> r = compare(ref, cur)
    >>> r["c"].test, round(r["c"].statistic, 2), r["c"].drifted
    ('chi2', 18.48, True)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if drift_share is not None and not 0 < drift_share <= 1:
        raise ValueError(f"drift_share must lie in (0, 1], got {drift_share}")
    from opsloop.data.distributed.frames import is_dask_frame

    if not (isinstance(current, pd.DataFrame | ReferenceProfile) or is_dask_frame(current)):
        raise TypeError(
            "current must be a pandas DataFrame, a Dask DataFrame or a ReferenceProfile, "
            f"got {type(current).__name__}"
        )
    adjust_p_values([], correction)  # validates the name before any work
    if ks_p_value not in KS_P_VALUE_METHODS:
        raise ValueError(
            f"ks_p_value must be one of {', '.join(KS_P_VALUE_METHODS)}, got {ks_p_value!r}"
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(sketch_k, bool) or not isinstance(sketch_k, int) or not 8 <= sketch_k <= 65535:
        raise ValueError(f"sketch_k must be an integer in [8, 65535], got {sketch_k!r}")
    chosen = "exact" if mode == "auto" else mode
    mode_reason = "in-memory data" if mode == "auto" else f"mode={mode!r} asked for"
    if isinstance(reference, ReferenceProfile):
        profile = reference
        names = list(profile) if columns is None else list(columns)
        unknown = [c for c in names if c not in profile]
        if unknown:
            raise ValueError(f"columns not in the reference profile: {unknown}")
    else:
        if not (isinstance(reference, pd.DataFrame) or is_dask_frame(reference)):
            raise TypeError(
                f"reference must be a DataFrame or ReferenceProfile, got {type(reference).__name__}"
            )
        if columns is None:
            if not any(c in current.columns for c in reference.columns):
                raise ValueError("no common columns to compare")
            # Every reference column: one missing from current is reported as skipped.
            names = list(reference.columns)
        else:
            names = list(columns)
        unknown = [c for c in names if c not in reference.columns]
        if unknown:
            raise ValueError(f"columns not in the reference: {unknown}")
        profile = None
    for side, frame in (("reference", reference), ("current", current)):
        _require_unique_columns(side, frame, names)
    skipped: list[tuple[str, str]] = []
    compared = []
    current_names = list(current) if isinstance(current, ReferenceProfile) else current.columns
    # A complex column has no order to test: one such column leaves the others' verdicts
    # standing, and is reported as not compared rather than failing the whole comparison.
    refused = _complex_columns(reference, current, names, current_names)
    if refused:
        warnings.warn(
            f"columns not compared: {', '.join(f'{n!r} {r}' for n, r in refused.items())}",
            stacklevel=2,
        )
        names = [name for name in names if name not in refused]
    if is_dask_frame(reference) or is_dask_frame(current):
        from opsloop.data.distributed.drift import choose_mode, reference_profile

        # A Dask side is summarised several columns per pass over its partitions.
        shared = [name for name in names if name in current_names]
        frames = [f for f in (reference, current) if is_dask_frame(f)]
        chosen, mode_reason = choose_mode(mode, frames, shared)
        k = sketch_k if chosen == "sketch" else None
        if profile is None:
            if is_dask_frame(reference):
                profile = reference_profile(reference, shared, sketch_k=k)
            else:
                profile = ReferenceProfile.from_frame(reference, shared)
        if is_dask_frame(current):
            current = reference_profile(
                current, shared, {name: profile[name].kind for name in shared}, sketch_k=k
            )
    # Column by column, keeping no sorted copy once its column is done: peak memory stays
    # near the input frames' instead of doubling them.
    skipped += list(refused.items())
    for name in names:
        if name not in current_names:
            skipped.append((name, "missing from current"))
            continue
        ref = profile[name] if profile is not None else _summary(reference, name, None)
        cur = _summary(current, name, ref.kind)
        if chosen == "sketch":
            ref, cur = _sketched(ref, sketch_k), _sketched(cur, sketch_k)
        if ref.n_valid == 0 or cur.n_valid == 0:
            side, empty = ("reference", ref) if ref.n_valid == 0 else ("current", cur)
            skipped.append((name, f"no valid values in {side}{_what_the_rows_were(empty)}"))
            continue
        compared.append(
            _compare_column(
                ref, cur, _lookup(tests, name), thresholds, alpha, bins, plots, ks_p_value
            )
        )
    if columns is None:
        # Columns of the current data that the reference lacks are not compared either.
        skipped += [
            (c, "missing from reference")
            for c in current_names
            if c not in names and c not in refused
        ]
    if not compared and not skipped:
        raise ValueError("no common columns to compare")
    tested = [c.decider for c in compared if c.decider.p_value is not None]
    adjusted = iter(adjust_p_values([d.p_value for d in tested], correction))
    # Every correction is non-decreasing in each p-value, so adjusting the interval ends
    # gives the adjusted p-values' intervals.
    lows = iter(
        adjust_p_values([(d.p_value_bounds or (d.p_value,))[0] for d in tested], correction)
    )
    highs = iter(
        adjust_p_values([(d.p_value_bounds or (d.p_value,))[-1] for d in tested], correction)
    )
    results = []
    for c in compared:
        ref, cur, decider = c.reference, c.current, c.decider
        p_adj = float(next(adjusted)) if decider.p_value is not None else None
        adj_bounds = None
        if decider.p_value is not None:
            adj_bounds = (float(next(lows)), float(next(highs)))
        if chosen != "sketch":
            adj_bounds = None
        drifted = p_adj < decider.threshold if p_adj is not None else decider.drifted
        if chosen == "sketch":
            drifted = _certainly_drifted(decider, adj_bounds)
        needed = _lookup(min_effect, ref.name)
        if needed is not None:
            drifted = drifted and c.effect >= needed
        # The deciding statistic shows the column's verdict, reached on the adjusted p-value,
        # so that no surface shows "drifted" beside a stable column or the other way round.
        stats = tuple(
            dataclasses.replace(
                s, p_adjusted=p_adj, drifted=bool(drifted), p_adjusted_bounds=adj_bounds
            )
            if s.test == decider.test
            else s
            for s in c.statistics
        )
        results.append(
            ColumnDrift(
                column=ref.name,
                kind=ref.kind,
                test=decider.test,
                statistic=decider.statistic,
                p_value=decider.p_value,
                p_adjusted=p_adj,
                threshold=decider.threshold,
                drifted=bool(drifted),
                effect_name=c.effect_name,
                effect=c.effect,
                min_effect=needed,
                n_reference=ref.n_valid,
                n_current=cur.n_valid,
                missing_reference=ref.n_missing / ref.n_rows if ref.n_rows else 0.0,
                missing_current=cur.n_missing / cur.n_rows if cur.n_rows else 0.0,
                invalid_current=cur.n_invalid,
                nonfinite_reference=ref.n_nonfinite,
                nonfinite_current=cur.n_nonfinite,
                statistics=stats,
                plot=c.plot,
                statistic_bounds=decider.statistic_bounds,
                p_value_bounds=decider.p_value_bounds,
                p_adjusted_bounds=adj_bounds,
                rank_errors=c.rank_errors if decider.statistic_bounds is not None else None,
            )
        )
    n_drifted = sum(r.drifted for r in results)
    if drift_share is None:
        dataset_drifted = n_drifted > 0
    else:
        dataset_drifted = bool(results) and n_drifted / len(results) >= drift_share
    return DriftResult(
        tuple(results),
        alpha,
        correction,
        drift_share,
        bool(dataset_drifted),
        tuple(skipped),
        ks_p_value,
        chosen,
        mode_reason,
    )
