"""Exact, mergeable sums of float and integer arrays.

A floating-point sum depends on the order of its additions, so adding two chunks' sums does
not in general give the sum of the concatenated column, and a profile merged from chunks would
disagree with the profile of the whole in the last bits. :class:`ExactSum` keeps the sum as an
exact rational number, an integer count of ``2**-SCALE_BITS`` (the finest spacing a float64
can need), so merging is integer addition and the reported sum is the correctly rounded value
of the true sum whatever the chunking.

``math.fsum`` is correctly rounded too, but its result cannot be combined exactly with another
chunk's, and it walks the array element by element; this module reads the array with a few
vectorised numpy passes: each float is split into its binary exponent and two 26-bit halves
of its significand, and the halves are summed per exponent with ``np.bincount``, where every
partial sum is an integer below ``2**53`` and therefore exact.

>>> import numpy as np
>>> values = np.array([1e16, 1.0, -1e16])
>>> float(values.sum()), ExactSum.of_floats(values).value
(0.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A float64 is an integer multiple of 2**-1074; significands are scaled to 53-bit integers,
#: so exponents reach 2**-1126 and that is the unit of the stored numerator.
SCALE_BITS = 1126
# Every partial sum in a block stays below 2**53 (floats) or 2**63 (ints).
_BLOCK = 1 << 26
# np.frexp exponents lie in [-1073, 1024]; shifted to be valid bincount indices.
_EXPONENT_OFFSET = 1100


@dataclass(frozen=True)
class ExactSum:
    """The exact sum of some numbers, stored as ``numerator * 2**-SCALE_BITS``.

    >>> import numpy as np
    >>> a = ExactSum.of_floats(np.array([0.1, 0.2]))
    >>> b = ExactSum.of_ints(np.array([3, 4]))
    >>> (a + b).value
    7.3
    """

    numerator: int = 0

    @classmethod
    def of_floats(cls, values: np.ndarray) -> ExactSum:
        """Sum finite float values exactly (NaN and infinities must be removed first).

        >>> import numpy as np
        >>> ExactSum.of_floats(np.array([0.5, 0.25])).value
        0.75
        """
        values = np.asarray(values, dtype=np.float64).ravel()
        total = 0
        for start in range(0, values.size, _BLOCK):
            mantissa, exponent = np.frexp(values[start : start + _BLOCK])
            whole = mantissa * 2.0**53  # an integer below 2**53 in magnitude
            high = np.trunc(whole * 2.0**-26)
            low = whole - high * 2.0**26
            index = exponent + _EXPONENT_OFFSET
            high_sums = np.bincount(index, weights=high)
            low_sums = np.bincount(index, weights=low)
            for i in np.flatnonzero((high_sums != 0) | (low_sums != 0)):
                shift = int(i) - _EXPONENT_OFFSET - 53 + SCALE_BITS
                total += ((int(high_sums[i]) << 26) + int(low_sums[i])) << shift
        return cls(total)

    @classmethod
    def of_ints(cls, values: np.ndarray) -> ExactSum:
        """Sum integer values exactly, without the silent overflow of ``np.sum``.

        >>> import numpy as np
        >>> big = np.array([2**62, 2**62, 2**62], dtype=np.int64)
        >>> ExactSum.of_ints(big).integer_value() == 3 * 2**62
        True
        """
        values = np.asarray(values).ravel()
        if values.dtype.kind == "u":
            values = values.astype(np.uint64, copy=False)
            accumulator = np.uint64
        elif values.dtype.kind in "ib":
            values = values.astype(np.int64, copy=False)
            accumulator = np.int64
        else:
            raise TypeError(f"values must have an integer dtype, got {values.dtype}")
        total = 0
        for start in range(0, values.size, _BLOCK):
            block = values[start : start + _BLOCK]
            # Halves of at most 32 bits: block sums cannot overflow 64 bits.
            high = np.sum(block >> 32, dtype=accumulator)
            low = np.sum(block & 0xFFFFFFFF, dtype=accumulator)
            total += (int(high) << 32) + int(low)
        return cls(total << SCALE_BITS)

    def __add__(self, other: ExactSum) -> ExactSum:
        return ExactSum(self.numerator + other.numerator)

    @property
    def value(self) -> float:
        """The sum rounded once to the nearest float (``±inf`` beyond the float range)."""
        return _divide(self.numerator, 1 << SCALE_BITS)

    def integer_value(self) -> int | None:
        """The sum as a Python ``int`` when it is a whole number, else ``None``.

        >>> ExactSum.of_floats(np.array([0.5])).integer_value() is None
        True
        """
        whole, rest = divmod(self.numerator, 1 << SCALE_BITS)
        return whole if rest == 0 else None

    def mean(self, count: int) -> float:
        """The sum divided by ``count``, rounded once (the correctly rounded mean).

        >>> ExactSum.of_ints(np.array([1, 2])).mean(2)
        1.5
        """
        if count <= 0:
            raise ValueError(f"count must be positive to take a mean, got {count}")
        return _divide(self.numerator, count << SCALE_BITS)

    def to_state(self) -> str:
        """The numerator as a hexadecimal string (lossless, JSON-safe)."""
        return format(self.numerator, "x")

    @classmethod
    def from_state(cls, state: str) -> ExactSum:
        """Rebuild from :meth:`to_state`.

        >>> s = ExactSum.of_floats(np.array([0.1, -3.5]))
        >>> ExactSum.from_state(s.to_state()) == s
        True
        """
        return cls(int(state, 16))


def _divide(numerator: int, denominator: int) -> float:
    # int / int is correctly rounded in Python; it raises instead of returning inf.
    try:
        return numerator / denominator
    except OverflowError:
        return float("inf") if numerator > 0 else float("-inf")
