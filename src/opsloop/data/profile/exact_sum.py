"""Exact, mergeable sums of float and integer arrays.

A floating-point sum depends on the order of its additions, so adding two chunks' sums does
not in general give the sum of the concatenated column, and a profile merged from chunks would
disagree with the profile of the whole in the last bits. :class:`ExactSum` keeps the sum as an
exact rational number, an integer count of ``2**-SCALE_BITS`` (the finest spacing a float64
can need), so merging is integer addition and the reported sum is the correctly rounded value
of the true sum whatever the chunking.

``math.fsum`` is correctly rounded too, but its result cannot be combined exactly with another
chunk's, and it walks the array element by element in Python; this module reads the array
once with a compiled kernel: each float's bits give its binary exponent and its 53-bit
integer significand, whose two 26-bit halves are added per exponent into 64-bit integers
(every partial sum stays below ``2**53``, so none is rounded), and Python's integers then
add the few per-exponent sums at their scales.

>>> import numpy as np
>>> values = np.array([1e16, 1.0, -1e16])
>>> float(values.sum()), ExactSum.of_floats(values).value
(0.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

#: A float64 is an integer multiple of 2**-1074; significands are scaled to 53-bit integers,
#: so exponents reach 2**-1126 and that is the unit of the stored numerator.
SCALE_BITS = 1126
# Every partial sum in a block stays below 2**53 (floats) or 2**63 (ints).
_BLOCK = 1 << 26
# A float64 with biased exponent field e (1 for subnormals, whose field is 0) and integer
# significand f is f * 2**(e - 1075): stored as f << (e - 1075 + SCALE_BITS).
_SHIFT = SCALE_BITS - 1075
_FIELD = np.uint64(0x7FF)
_FRACTION = np.uint64(0xFFFFFFFFFFFFF)
_IMPLICIT = np.uint64(1 << 52)
_LOW = np.uint64((1 << 26) - 1)
_U26 = np.uint64(26)
_U52 = np.uint64(52)
_U63 = np.uint64(63)


@numba.njit(cache=True, nogil=True)
def _halves_by_exponent(values: np.ndarray) -> tuple:  # pragma: no cover - compiled
    # Signed sums of the high and low 26-bit halves of the significands, per exponent field;
    # and how many values are NaN or infinite (exponent field 2047), which have no sum.
    high = np.zeros(2048, dtype=np.int64)
    low = np.zeros(2048, dtype=np.int64)
    non_finite = 0
    bits = values.view(np.uint64)
    for i in range(bits.size):
        b = bits[i]
        field = (b >> _U52) & _FIELD
        if field == _FIELD:
            non_finite += 1
            continue
        significand = b & _FRACTION
        if field == np.uint64(0):
            field = np.uint64(1)
        else:
            significand = significand | _IMPLICIT
        h = np.int64(significand >> _U26)
        lo = np.int64(significand & _LOW)
        if b >> _U63:
            high[field] -= h
            low[field] -= lo
        else:
            high[field] += h
            low[field] += lo
    return high, low, non_finite


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
        values = np.ascontiguousarray(values, dtype=np.float64).ravel()
        total = 0
        for start in range(0, values.size, _BLOCK):
            high, low, non_finite = _halves_by_exponent(values[start : start + _BLOCK])
            if non_finite:
                raise ValueError(
                    f"ExactSum.of_floats sums finite values only; got {non_finite} NaN or "
                    "infinite values (remove them first)"
                )
            for field in np.flatnonzero((high != 0) | (low != 0)):
                scaled = (int(high[field]) << 26) + int(low[field])
                total += scaled << (int(field) + _SHIFT)
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
