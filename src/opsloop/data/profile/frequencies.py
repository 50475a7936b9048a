"""Value counts and distinct counts of a categorical or text column, exact while small.

While a column has at most ``max_exact_values`` distinct values, :class:`Frequencies` keeps
their exact counts: top values and the distinct count are exact and merge exactly. Beyond that
limit (in one chunk, or once merged chunks together exceed it) it switches for good to two
Apache DataSketches sketches:

* a frequent-items sketch (``frequent_strings_sketch``, a Misra-Gries summary) for the top
  values: every count it reports lies in ``[lower, upper]``, and an item is listed only if its
  lower bound exceeds the sketch's maximum error (no false positives); the maximum error is at
  most ``epsilon * total`` with ``epsilon = 3.5 / 2**frequent_lg_size`` (0.34% for the default
  10);
* an HLL sketch (``hll_sketch``, HLL_8) for the distinct count, with relative standard error
  about ``1.04 / sqrt(2**distinct_lg_k)`` (1.6% for the default 12);
  :meth:`Frequencies.distinct_bounds` gives its confidence interval.

Values are keyed by their string form, so a category ``1`` and a category ``"1"`` are one key.
The sketches take one Python call per *distinct* value (never per row): a chunk with a million
distinct strings costs a few tenths of a second.

>>> import numpy as np
>>> f = Frequencies.of_counts(["a", "b"], np.array([3, 1]))
>>> g = Frequencies.of_counts(["b", "c"], np.array([5, 1]))
>>> merged = f.merge(g)
>>> merged.distinct, [(v.value, v.count) for v in merged.top(2)]
(3, [('b', 6), ('a', 3)])
"""

from __future__ import annotations

import base64
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from datasketches import (
    frequent_items_error_type,
    frequent_strings_sketch,
    hll_sketch,
    hll_union,
    tgt_hll_type,
)

DEFAULT_MAX_EXACT_VALUES = 1000
#: 2**10 slots: up to 768 tracked items, count error at most 0.34% of the total.
DEFAULT_FREQUENT_LG_SIZE = 10
#: 2**12 registers: distinct-count relative standard error about 1.6%.
DEFAULT_DISTINCT_LG_K = 12
DEFAULT_TOP = 10


@dataclass(frozen=True)
class ValueCount:
    """One value with its count; ``lower``/``upper`` bound the true count (equal when exact).

    >>> ValueCount("a", 3, 3, 3).to_dict()
    {'value': 'a', 'count': 3, 'lower': 3, 'upper': 3}
    """

    value: str
    count: int
    lower: int
    upper: int

    def to_dict(self) -> dict:
        """A JSON-safe dictionary."""
        return {"value": self.value, "count": self.count, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True, eq=False)
class Frequencies:
    """Counts of values: exact (``counts``) or sketched (``frequent`` and ``distinct_sketch``).

    ``total`` is the number of values counted. Build it with :meth:`of_counts`.

    >>> import numpy as np
    >>> f = Frequencies.of_counts(["x", "y", "z"], np.array([1, 1, 5]), max_exact_values=2)
    >>> f.is_exact, round(f.distinct), f.top(1)[0].value
    (False, 3, 'z')
    """

    total: int
    counts: MappingProxyType | None
    frequent: frequent_strings_sketch | None
    distinct_sketch: hll_sketch | None
    max_exact_values: int = DEFAULT_MAX_EXACT_VALUES
    frequent_lg_size: int = DEFAULT_FREQUENT_LG_SIZE
    distinct_lg_k: int = DEFAULT_DISTINCT_LG_K

    @classmethod
    def of_counts(
        cls,
        values: Sequence[str],
        counts: np.ndarray,
        max_exact_values: int = DEFAULT_MAX_EXACT_VALUES,
        frequent_lg_size: int = DEFAULT_FREQUENT_LG_SIZE,
        distinct_lg_k: int = DEFAULT_DISTINCT_LG_K,
    ) -> Frequencies:
        """Frequencies from distinct ``values`` (strings) and their positive ``counts``.

        >>> Frequencies.of_counts([], np.array([], dtype=int)).distinct
        0
        """
        values = list(values)
        counts = np.asarray(counts, dtype=np.int64).tolist()
        if len(values) != len(counts):
            raise ValueError(f"values and counts differ in length: {len(values)} != {len(counts)}")
        settings = (max_exact_values, frequent_lg_size, distinct_lg_k)
        total = sum(counts)
        if len(values) <= max_exact_values:
            return cls(
                total,
                MappingProxyType(dict(zip(values, counts, strict=True))),
                None,
                None,
                *settings,
            )
        frequent = frequent_strings_sketch(frequent_lg_size)
        distinct = hll_sketch(distinct_lg_k, tgt_hll_type.HLL_8)
        _feed(frequent, distinct, values, counts)
        return cls(total, None, frequent, distinct, *settings)

    @property
    def is_exact(self) -> bool:
        """Whether counts and the distinct count are exact."""
        return self.counts is not None

    @property
    def distinct(self) -> int | float:
        """Number of distinct values: an ``int`` when exact, the HLL estimate otherwise."""
        if self.counts is not None:
            return len(self.counts)
        return float(self.distinct_sketch.get_estimate())

    def distinct_bounds(self, num_std_devs: int = 2) -> tuple[float, float]:
        """Confidence interval of :attr:`distinct` (``num_std_devs`` in 1, 2, 3).

        >>> Frequencies.of_counts(["a"], np.array([2])).distinct_bounds()
        (1, 1)
        """
        if num_std_devs not in (1, 2, 3):
            raise ValueError(f"num_std_devs must be 1, 2 or 3, got {num_std_devs}")
        if self.counts is not None:
            return (len(self.counts), len(self.counts))
        return (
            float(self.distinct_sketch.get_lower_bound(num_std_devs)),
            float(self.distinct_sketch.get_upper_bound(num_std_devs)),
        )

    @property
    def max_count_error(self) -> int:
        """Bound on the error of any reported count, ``epsilon * total`` (0 when exact)."""
        if self.frequent is None:
            return 0
        return math.ceil(self.frequent.epsilon * self.frequent.total_weight)

    def top(self, n: int = DEFAULT_TOP) -> list[ValueCount]:
        """The ``n`` most frequent values, most frequent first (ties by value when exact).

        When sketched, only values whose count is certainly above :attr:`max_count_error` are
        listed, so fewer than ``n`` (even none) may come back.

        >>> [v.value for v in Frequencies.of_counts(["b", "a"], np.array([2, 2])).top()]
        ['a', 'b']
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        if self.counts is not None:
            ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:n]
            return [ValueCount(v, c, c, c) for v, c in ranked]
        rows = self.frequent.get_frequent_items(frequent_items_error_type.NO_FALSE_POSITIVES)
        rows = sorted(rows, key=lambda row: (-row[1], row[0]))[:n]
        return [ValueCount(v, int(c), int(lo), int(hi)) for v, c, lo, hi in rows]

    def merge(self, other: Frequencies) -> Frequencies:
        """Frequencies of both inputs' values together (inputs are not modified).

        Exact inputs stay exact while their union has at most ``max_exact_values`` (the
        smaller of the two inputs' limits) distinct values.

        >>> a = Frequencies.of_counts(["a"], np.array([1]), max_exact_values=1)
        >>> a.merge(Frequencies.of_counts(["b"], np.array([1]))).is_exact
        False
        """
        settings = (
            min(self.max_exact_values, other.max_exact_values),
            max(self.frequent_lg_size, other.frequent_lg_size),
            # An HLL union keeps the coarser of its inputs' resolutions.
            min(self.distinct_lg_k, other.distinct_lg_k),
        )
        total = self.total + other.total
        if self.counts is not None and other.counts is not None:
            joined = dict(self.counts)
            for value, count in other.counts.items():
                joined[value] = joined.get(value, 0) + count
            if len(joined) <= settings[0]:
                return Frequencies(total, MappingProxyType(joined), None, None, *settings)
        frequent = frequent_strings_sketch(settings[1])
        union = hll_union(settings[2])
        for side in (self, other):
            if side.counts is not None:
                distinct = hll_sketch(settings[2], tgt_hll_type.HLL_8)
                _feed(frequent, distinct, list(side.counts), list(side.counts.values()))
                union.update(distinct)
            else:
                frequent.merge(side.frequent)
                union.update(side.distinct_sketch)
        return Frequencies(total, None, frequent, union.get_result(tgt_hll_type.HLL_8), *settings)

    def to_state(self) -> dict:
        """A lossless JSON-safe dictionary, sketches included (see :meth:`from_state`)."""
        state = {
            "total": self.total,
            "max_exact_values": self.max_exact_values,
            "frequent_lg_size": self.frequent_lg_size,
            "distinct_lg_k": self.distinct_lg_k,
        }
        if self.counts is not None:
            state["counts"] = [[value, count] for value, count in self.counts.items()]
        else:
            state["frequent"] = base64.b64encode(self.frequent.serialize()).decode("ascii")
            state["distinct"] = base64.b64encode(self.distinct_sketch.serialize_compact()).decode(
                "ascii"
            )
        return state

    @classmethod
    def from_state(cls, state: dict) -> Frequencies:
        """Rebuild from :meth:`to_state`.

        >>> f = Frequencies.of_counts(["a", "b"], np.array([2, 1]))
        >>> dict(Frequencies.from_state(f.to_state()).counts)
        {'a': 2, 'b': 1}
        """
        settings = (
            int(state["max_exact_values"]),
            int(state["frequent_lg_size"]),
            int(state["distinct_lg_k"]),
        )
        if "counts" in state:
            counts = MappingProxyType({str(v): int(c) for v, c in state["counts"]})
            return cls(int(state["total"]), counts, None, None, *settings)
        return cls(
            int(state["total"]),
            None,
            frequent_strings_sketch.deserialize(base64.b64decode(state["frequent"])),
            hll_sketch.deserialize(base64.b64decode(state["distinct"])),
            *settings,
        )


def _feed(
    frequent: frequent_strings_sketch, distinct: hll_sketch, values: list, counts: list
) -> None:
    # The bindings take one item per call; deque(map(...)) keeps the loop in C.
    deque(map(frequent.update, values, counts), maxlen=0)
    deque(map(distinct.update, values), maxlen=0)
