"""Sizes of the sketches a profile keeps: accuracy traded against memory and time.

Profiles built with different options still merge: quantile and distinct-count sketches
merge at the coarser resolution (smaller ``quantile_k``, smaller ``distinct_lg_k``),
frequencies switch to sketches at the smaller ``max_exact_values``, and the frequent-items
sketch takes the larger size.

>>> SketchOptions().quantile_k
200
>>> SketchOptions(quantile_k=4)
Traceback (most recent call last):
...
ValueError: quantile_k must be an integer in [8, 65535], got 4
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from opsloop.data.profile.frequencies import (
    DEFAULT_DISTINCT_LG_K,
    DEFAULT_FREQUENT_LG_SIZE,
    DEFAULT_MAX_EXACT_VALUES,
)
from opsloop.data.profile.numeric import DEFAULT_QUANTILE_K
from opsloop.data.types import MAX_CATEGORIES

# Ranges the DataSketches constructors accept (KLL k, frequent-items lg size, HLL lg_k).
_RANGES = {
    "quantile_k": (8, 65535),
    "max_exact_values": (MAX_CATEGORIES, None),
    "frequent_lg_size": (3, 26),
    "distinct_lg_k": (4, 21),
}


@dataclass(frozen=True)
class SketchOptions:
    """Sketch sizes for :func:`~opsloop.data.profile.profile`.

    * ``quantile_k``: KLL accuracy; normalised rank error about 1.3% at 200, falling about as
      ``1 / k``.
    * ``max_exact_values``: distinct values counted exactly before switching to sketches;
      at least :data:`~opsloop.data.types.MAX_CATEGORIES`, so that whether a merged text
      column is ``category`` or ``string`` is always decided on exact counts.
    * ``frequent_lg_size``: log2 of the frequent-items map (count error ``3.5 / 2**size``).
    * ``distinct_lg_k``: log2 of the HLL registers (relative error ``1.04 / sqrt(2**lg_k)``).

    >>> SketchOptions(max_exact_values=500).to_dict()["max_exact_values"]
    500
    """

    quantile_k: int = DEFAULT_QUANTILE_K
    max_exact_values: int = DEFAULT_MAX_EXACT_VALUES
    frequent_lg_size: int = DEFAULT_FREQUENT_LG_SIZE
    distinct_lg_k: int = DEFAULT_DISTINCT_LG_K

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= low
            if high is not None:
                valid = valid and value <= high
                allowed = f"an integer in [{low}, {high}]"
            else:
                allowed = f"an integer >= {low}"
            if not valid:
                raise ValueError(f"{name} must be {allowed}, got {value!r}")

    def to_dict(self) -> dict:
        """A JSON-safe dictionary."""
        return asdict(self)
