"""The distribution of a numeric column: counts, exact moments, a quantile sketch, histograms.

:class:`NumericSummary` holds everything that merges across chunks: counts of zeros and
infinities, the minimum and maximum, the exact moments of
:mod:`~opsloop.data.profile.moments`, and an Apache DataSketches KLL sketch for quantiles and
histograms. Moments, extremes and quantiles describe the *finite* values; infinities are only
counted, because one of them would make every moment infinite or undefined.

KLL (Karnin, Lang, Liberty 2016) keeps a small weighted sample whose rank error is bounded
whatever the data: with 99% confidence, the value returned for rank ``r`` has a true rank within
``quantile_rank_error`` of ``r`` (about 1.3% for the default ``k=200``). While a sketch has seen
few values (roughly ``k`` or fewer) it keeps them all, its answers are exact and the reported
error is 0. The sketch compacts at random, so two runs over data larger than that may report
slightly different quantiles, each within the bound.

Quantiles follow the inverted CDF (``numpy.quantile(method="inverted_cdf")``: the smallest value
whose share of values at or below it reaches ``q``). Histograms follow ``numpy.histogram``'s
conventions (bins closed on the left, the last one closed on both sides; by default ``bins``
equal-width bins between the minimum and maximum). While the column has at most
:data:`MAX_EXACT_VALUES` distinct finite values (a flag, a small count, a short training set)
the summary also keeps each one with its exact count, merged exactly across chunks, and its
histograms are exact (``rank_error`` 0, consistent with ``n_zero``): they equal
``numpy.histogram`` of the values. Beyond that the table is dropped for good and histograms are
read from the sketch's CDF at the bin edges, each count within the histogram's ``rank_error``
times ``count`` of the truth (99% confidence).

>>> import numpy as np
>>> s = NumericSummary.of_values(np.array([1.0, 2.0, 3.0, 4.0, np.inf]))
>>> s.count, s.n_pos_inf, s.mean, s.quantile(0.5)
(4, 1, 2.5, 2.0)
>>> s.histogram(bins=3).counts
(1, 1, 2)
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasketches import kll_doubles_sketch

from opsloop.data.profile.exact_sum import ExactSum
from opsloop.data.profile.moments import Moments

#: Ranks reported by :meth:`NumericSummary.to_dict`.
DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: KLL accuracy parameter: rank error about 1.3% (99% confidence) for 200.
DEFAULT_QUANTILE_K = 200
DEFAULT_BINS = 10
#: Distinct finite values a summary counts exactly (its histograms then exact); beyond, the
#: sketch alone. 1000 values and counts take 16 kB of state at most.
MAX_EXACT_VALUES = 1000
#: How many leading values a chunk is first checked on: a column with many distinct values
#: shows it in its first few thousand, so its chunks are never sorted whole.
_PREFIX = 4 * MAX_EXACT_VALUES


@dataclass(frozen=True)
class Histogram:
    """Bin counts between ``edges`` (``len(edges) == len(counts) + 1``).

    Each count is within ``rank_error * total`` of the true count with 99% confidence, where
    ``total`` is the number of values summarised; ``rank_error`` is 0 when the counts are exact.

    >>> h = Histogram((0.0, 1.0, 2.0), (3, 1), 0.0)
    >>> h.to_dict()
    {'edges': [0.0, 1.0, 2.0], 'counts': [3, 1], 'rank_error': 0.0}
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    rank_error: float

    def to_dict(self) -> dict:
        """A JSON-safe dictionary."""
        return {
            "edges": list(self.edges),
            "counts": list(self.counts),
            "rank_error": self.rank_error,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per bin: ``left``, ``right``, ``count``.

        >>> Histogram((0.0, 1.0, 2.0), (3, 1), 0.0).to_frame()["count"].tolist()
        [3, 1]
        """
        return pd.DataFrame(
            {"left": self.edges[:-1], "right": self.edges[1:], "count": list(self.counts)}
        )


@dataclass(frozen=True, eq=False)
class NumericSummary:
    """Mergeable statistics of the non-null values of a numeric column.

    ``count`` is the number of finite values, which moments, ``minimum``/``maximum`` and the
    quantile sketch describe; ``n_pos_inf``/``n_neg_inf`` count the infinities and ``n_zero``
    the zeros. ``integer`` says whether all values were integers, whose minimum, maximum and
    sum are then exact Python ints. Build it with :meth:`of_values`.

    >>> import numpy as np
    >>> s = NumericSummary.of_values(np.array([3, 0, 5]))
    >>> s.minimum, s.maximum, s.sum, s.n_zero
    (0, 5, 8.0, 1)
    """

    moments: Moments
    minimum: float | int | None
    maximum: float | int | None
    n_zero: int
    n_pos_inf: int
    n_neg_inf: int
    sketch: kll_doubles_sketch
    integer: bool = False
    #: The distinct finite values (sorted) and their counts while there are at most
    #: :data:`MAX_EXACT_VALUES`; ``None`` beyond.
    exact: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def of_values(cls, values: np.ndarray, quantile_k: int = DEFAULT_QUANTILE_K) -> NumericSummary:
        """Summarise non-null integer or float ``values`` (NaN must be removed first).

        Integers keep an exact integer minimum, maximum and sum; the moments and the sketch
        see them as float64.

        >>> NumericSummary.of_values(np.array([2**53 + 1, 1])).maximum
        9007199254740993
        """
        values = np.asarray(values).ravel()
        sketch = kll_doubles_sketch(quantile_k)
        integer = values.dtype.kind in "iu"
        if integer:
            floats = values.astype(np.float64)
            moments = Moments.of_floats(floats, ExactSum.of_ints(values))
            n_pos_inf = n_neg_inf = 0
            minimum = int(values.min()) if values.size else None
            maximum = int(values.max()) if values.size else None
        elif values.dtype.kind == "f":
            floats = values.astype(np.float64, copy=False)
            finite_mask = np.isfinite(floats)
            n_pos_inf = n_neg_inf = 0
            if not finite_mask.all():
                if np.isnan(floats).any():
                    raise ValueError("values must not contain NaN: count it as null instead")
                n_pos_inf = int(np.count_nonzero(floats == np.inf))
                n_neg_inf = int(np.count_nonzero(floats == -np.inf))
                floats = floats[finite_mask]
            moments = Moments.of_floats(floats)
            minimum = float(floats.min()) if floats.size else None
            maximum = float(floats.max()) if floats.size else None
        else:
            raise TypeError(f"values must be numeric, got dtype {values.dtype}")
        if floats.size:
            # The binding refuses read-only arrays (pandas hands those out); copy only then.
            sketch.update(np.require(floats, np.float64, ["C", "W"]))
        return cls(
            moments=moments,
            minimum=minimum,
            maximum=maximum,
            n_zero=int(np.count_nonzero(floats == 0)),
            n_pos_inf=n_pos_inf,
            n_neg_inf=n_neg_inf,
            sketch=sketch,
            integer=integer,
            exact=_exact_table(floats),
        )

    @property
    def count(self) -> int:
        """Number of finite values."""
        return self.moments.n

    @property
    def sum(self) -> float:
        """Sum of the finite values, exact up to one final rounding."""
        return self.moments.sum

    @property
    def mean(self) -> float | None:
        """Mean of the finite values (``None`` without any)."""
        return self.moments.mean

    def variance(self, ddof: int = 1) -> float | None:
        """Variance with ``ddof`` degrees of freedom removed (``None`` when ``count <= ddof``)."""
        return self.moments.variance(ddof)

    def std(self, ddof: int = 1) -> float | None:
        """Standard deviation with ``ddof`` degrees of freedom removed."""
        return self.moments.std(ddof)

    @property
    def skewness(self) -> float | None:
        """``scipy.stats.skew`` (biased) of the finite values."""
        return self.moments.skewness

    @property
    def kurtosis(self) -> float | None:
        """``scipy.stats.kurtosis`` (Fisher, biased) of the finite values."""
        return self.moments.kurtosis

    @property
    def quantile_rank_error(self) -> float:
        """Normalised rank error of :meth:`quantile` (99% confidence); 0 while exact."""
        if not self.sketch.is_estimation_mode():
            return 0.0
        return float(self.sketch.normalized_rank_error(False))

    @property
    def histogram_rank_error(self) -> float:
        """Error of each histogram bin as a share of ``count`` (99% confidence); 0 while exact."""
        if self.exact is not None or not self.sketch.is_estimation_mode():
            return 0.0
        return float(self.sketch.normalized_rank_error(True))

    def quantile(self, q: float) -> float | None:
        """The inverted-CDF quantile at rank ``q`` in [0, 1] (``None`` without values).

        >>> NumericSummary.of_values(np.array([5.0, 1.0, 3.0])).quantile(0.5)
        3.0
        """
        return self.quantiles([q])[0]

    def quantiles(self, ranks: Sequence[float]) -> list[float | None]:
        """:meth:`quantile` at each rank of ``ranks``.

        >>> NumericSummary.of_values(np.arange(10.0)).quantiles([0.1, 0.9])
        [0.0, 8.0]
        """
        ranks = [float(r) for r in ranks]
        for r in ranks:
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"quantile rank q must lie in [0, 1], got {r}")
        if self.count == 0:
            return [None] * len(ranks)
        return [float(v) for v in self.sketch.get_quantiles(ranks, inclusive=True)]

    def histogram(
        self, bins: int = DEFAULT_BINS, edges: Sequence[float] | None = None
    ) -> Histogram:
        """Counts of finite values per bin: exact while the summary counts its distinct
        values exactly (see the module), else estimated from the sketch.

        With ``edges`` (finite, non-decreasing, at least two) the bins are the given ones and
        values outside them are not counted; otherwise ``bins`` equal-width bins span
        ``[minimum, maximum]`` as ``numpy.histogram(values, bins)`` would.

        >>> s = NumericSummary.of_values(np.array([0.0, 0.5, 1.0, 1.5, 9.0]))
        >>> s.histogram(edges=[0.0, 1.0, 2.0]).counts
        (2, 2)
        >>> flags = NumericSummary.of_values(np.array([0, 1] * 300))
        >>> flags.n_zero, flags.histogram(bins=2)
        (300, Histogram(edges=(0.0, 0.5, 1.0), counts=(300, 300), rank_error=0.0))
        """
        if edges is None:
            if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
                raise ValueError(f"bins must be a positive integer, got {bins!r}")
            if self.count == 0:
                return Histogram((), (), 0.0)
            low, high = float(self.minimum), float(self.maximum)
            if low == high:
                low, high = low - 0.5, high + 0.5
            edge_array = np.linspace(low, high, int(bins) + 1)
        else:
            edge_array = np.asarray(edges, dtype=np.float64)
            if edge_array.ndim != 1 or edge_array.size < 2:
                raise ValueError("edges must be a 1-D sequence of at least two numbers")
            if not np.isfinite(edge_array).all():
                raise ValueError("edges must be finite")
            if np.any(np.diff(edge_array) < 0):
                raise ValueError("edges must be non-decreasing")
        if self.count == 0:
            zeros = (0,) * (edge_array.size - 1)
            return Histogram(tuple(edge_array.tolist()), zeros, 0.0)
        if self.exact is not None:
            values, counts = self.exact
            exact, _ = np.histogram(values, bins=edge_array, weights=counts.astype(np.float64))
            return Histogram(
                tuple(edge_array.tolist()), tuple(np.rint(exact).astype(np.int64).tolist()), 0.0
            )
        # The sketch wants strictly increasing split points; equal edges map to one point.
        points = np.unique(edge_array)
        below = np.asarray(self.sketch.get_cdf(points.tolist(), inclusive=False)[:-1])
        at_or_below = np.asarray(self.sketch.get_cdf(points.tolist(), inclusive=True)[:-1])
        where = np.searchsorted(points, edge_array)
        upper = below[where[1:]].copy()
        upper[-1] = at_or_below[where[-1]]
        shares = upper - below[where[:-1]]
        counts = np.rint(np.maximum(shares, 0.0) * self.sketch.n).astype(np.int64)
        return Histogram(
            tuple(edge_array.tolist()), tuple(counts.tolist()), self.histogram_rank_error
        )

    def merge(self, other: NumericSummary) -> NumericSummary:
        """Statistics of both summaries' values together (inputs are not modified).

        >>> a = NumericSummary.of_values(np.array([1.0, 0.0]))
        >>> b = NumericSummary.of_values(np.array([-np.inf, 7.0]))
        >>> m = a.merge(b)
        >>> m.count, m.minimum, m.maximum, m.n_zero, m.n_neg_inf
        (3, 0.0, 7.0, 1, 1)
        """
        sketch = kll_doubles_sketch.deserialize(self.sketch.serialize())
        sketch.merge(other.sketch)
        integer = self.integer and other.integer
        # Integers joined with floats become a float column, as in pandas.concat.
        as_type = int if integer else float
        minimum = _pick(min, self.minimum, other.minimum)
        maximum = _pick(max, self.maximum, other.maximum)
        return NumericSummary(
            moments=self.moments.merge(other.moments),
            minimum=None if minimum is None else as_type(minimum),
            maximum=None if maximum is None else as_type(maximum),
            n_zero=self.n_zero + other.n_zero,
            n_pos_inf=self.n_pos_inf + other.n_pos_inf,
            n_neg_inf=self.n_neg_inf + other.n_neg_inf,
            sketch=sketch,
            integer=integer,
            exact=_merged_tables(self.exact, other.exact),
        )

    def to_dict(self, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> dict:
        """A JSON-safe summary: counts, extremes, moments, quantiles and a histogram.

        Statistics that do not exist, or overflowed the float range, are ``None``.

        >>> d = NumericSummary.of_values(np.array([1, 2, 3])).to_dict()
        >>> d["mean"], d["quantiles"]["0.5"], d["quantile_rank_error"]
        (2.0, 2.0, 0.0)
        """
        integer_sum = self.moments.total.integer_value() if self.integer else None
        return {
            "count": self.count,
            "n_zero": self.n_zero,
            "n_pos_inf": self.n_pos_inf,
            "n_neg_inf": self.n_neg_inf,
            "min": self.minimum,
            "max": self.maximum,
            "sum": integer_sum if integer_sum is not None else _finite(self.sum),
            "mean": self.mean,
            "variance": _finite(self.variance()),
            "std": _finite(self.std()),
            "skewness": self.skewness,
            "kurtosis": self.kurtosis,
            "quantiles": dict(zip(map(str, quantiles), self.quantiles(quantiles), strict=True)),
            "quantile_rank_error": self.quantile_rank_error,
            "histogram": self.histogram().to_dict(),
        }

    def to_state(self) -> dict:
        """A lossless JSON-safe dictionary, sketch included (see :meth:`from_state`)."""
        return {
            "moments": self.moments.to_state(),
            "min": self.minimum,
            "max": self.maximum,
            "n_zero": self.n_zero,
            "n_pos_inf": self.n_pos_inf,
            "n_neg_inf": self.n_neg_inf,
            "kll": base64.b64encode(self.sketch.serialize()).decode("ascii"),
            "integer": self.integer,
            "exact": None
            if self.exact is None
            else [_b64(self.exact[0].astype("<f8")), _b64(self.exact[1].astype("<i8"))],
        }

    @classmethod
    def from_state(cls, state: dict) -> NumericSummary:
        """Rebuild from :meth:`to_state`.

        >>> s = NumericSummary.of_values(np.array([1.5, -2.0]))
        >>> NumericSummary.from_state(s.to_state()).to_dict() == s.to_dict()
        True
        """
        return cls(
            moments=Moments.from_state(state["moments"]),
            minimum=state["min"],
            maximum=state["max"],
            n_zero=int(state["n_zero"]),
            n_pos_inf=int(state["n_pos_inf"]),
            n_neg_inf=int(state["n_neg_inf"]),
            sketch=kll_doubles_sketch.deserialize(base64.b64decode(state["kll"])),
            integer=bool(state["integer"]),
            # A state written before the exact table was kept has none.
            exact=_table_of_state(state.get("exact"), int(state["moments"]["n"])),
        )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _pick(choose, a, b):
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def _exact_table(floats: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct finite values of ``floats`` with their counts, ``None`` when there are
    more than :data:`MAX_EXACT_VALUES` (found on the first :data:`_PREFIX` values when it
    shows there, so a chunk of many distinct values is never sorted whole)."""
    if floats.size > _PREFIX and len(pd.unique(floats[:_PREFIX])) > MAX_EXACT_VALUES:
        return None
    values, counts = np.unique(floats, return_counts=True)
    if values.size > MAX_EXACT_VALUES:
        return None
    return values.astype(np.float64), counts.astype(np.int64)


def _merged_tables(
    a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Two exact tables as one, ``None`` when either is gone or together they hold more than
    :data:`MAX_EXACT_VALUES` values."""
    if a is None or b is None:
        return None
    values, where = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    if values.size > MAX_EXACT_VALUES:
        return None
    counts = np.zeros(values.size, dtype=np.int64)
    np.add.at(counts, where, np.concatenate([a[1], b[1]]))
    return values, counts


def _table_of_state(state: object, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact table :meth:`NumericSummary.to_state` wrote, checked: at most
    :data:`MAX_EXACT_VALUES` sorted distinct finite values, positive counts summing to the
    summary's ``count``."""
    if state is None:
        return None
    if not isinstance(state, list | tuple) or len(state) != 2:
        raise ValueError("exact: a pair of encoded arrays")
    raw_values, raw_counts = (base64.b64decode(part, validate=True) for part in state)
    if len(raw_values) > 8 * MAX_EXACT_VALUES or len(raw_values) != len(raw_counts):
        raise ValueError(f"exact: at most {MAX_EXACT_VALUES} values, one count each")
    values = np.frombuffer(raw_values, dtype="<f8").astype(np.float64)
    counts = np.frombuffer(raw_counts, dtype="<i8").astype(np.int64)
    if (
        not np.isfinite(values).all()
        or np.any(np.diff(values) <= 0)
        or np.any(counts < 1)
        or int(counts.sum()) != count
    ):
        raise ValueError(
            "exact: sorted distinct finite values with positive counts summing to count"
        )
    return values, counts
