"""Mean, variance, skewness and kurtosis that merge exactly across chunks.

A chunk keeps its count, its exact sum (:class:`~opsloop.data.profile.exact_sum.ExactSum`)
and the sums of the 2nd, 3rd and 4th powers of its deviations from its own mean. Two chunks
combine with the pairwise update of Chan, Golub and LeVeque (1979) extended to the 3rd and 4th
moments by Pébay (2008), so a merged result equals the one computed on the concatenated data up
to float rounding. The mean is the exact sum divided by the count, rounded once, so it is the
same however the data were chunked.

Definitions (``m_k = M_k / n``, the biased central moments):

* ``variance(ddof)`` is ``M2 / (n - ddof)``; ``ddof=1`` (the default) is pandas' and
  ``numpy.var(ddof=1)``'s sample variance.
* ``skewness`` is ``m3 / m2**1.5``, equal to ``scipy.stats.skew(x)`` (``bias=True``).
* ``kurtosis`` is ``m4 / m2**2 - 3``, equal to ``scipy.stats.kurtosis(x)`` (``fisher=True,
  bias=True``).

As in scipy, skewness and kurtosis do not exist for data with (numerically) no spread:
they are ``None`` when ``m2 <= (eps * mean)**2``. Statistics that need more values than
there are (a mean of nothing, a sample variance of one value) are ``None`` too.

References: T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
algorithm for computing sample variances", Stanford CS report 79-773 (1979); P. Pébay,
"Formulas for robust, one-pass parallel computation of covariances and arbitrary-order
statistical moments", Sandia report SAND2008-6212 (2008).

>>> import numpy as np
>>> x = np.array([1.0, 2.0, 4.0, 8.0])
>>> whole = Moments.of_floats(x)
>>> merged = Moments.of_floats(x[:1]).merge(Moments.of_floats(x[1:]))
>>> whole.mean, merged.mean, round(merged.variance(), 12)
(3.75, 3.75, 9.583333333333)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from opsloop.data.profile.exact_sum import ExactSum

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Moments:
    """Count, exact sum and central moment sums ``M2, M3, M4`` of finite values.

    >>> import numpy as np
    >>> m = Moments.of_floats(np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]))
    >>> m.n, m.mean, m.variance(ddof=0), m.std(ddof=0)
    (8, 5.0, 4.0, 2.0)
    """

    n: int = 0
    total: ExactSum = field(default_factory=ExactSum)
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0

    @classmethod
    def of_floats(cls, values: np.ndarray, total: ExactSum | None = None) -> Moments:
        """Moments of finite float64 ``values``; pass ``total`` when it is already known
        exactly (integer data, whose float64 copy may have lost digits).

        >>> Moments.of_floats(np.array([1.0, 3.0])).m2
        2.0
        """
        values = np.asarray(values, dtype=np.float64).ravel()
        n = int(values.size)
        if total is None:
            total = ExactSum.of_floats(values)
        if n == 0:
            return cls(0, total)
        deviations = values - total.mean(n)
        # Beyond ~1e77 the 4th power overflows to inf (and inf - inf sums to NaN); those
        # moments then do not exist and the properties below report None.
        with np.errstate(over="ignore", invalid="ignore"):
            squared = deviations * deviations
            m2 = float(squared.sum())
            m3 = float((squared * deviations).sum())
            m4 = float((squared * squared).sum())
        return cls(n, total, m2, m3, m4)

    @property
    def mean(self) -> float | None:
        """The correctly rounded mean, ``None`` without values."""
        return self.total.mean(self.n) if self.n else None

    @property
    def sum(self) -> float:
        """The sum rounded once to a float."""
        return self.total.value

    def variance(self, ddof: int = 1) -> float | None:
        """``M2 / (n - ddof)``; ``None`` when ``n <= ddof``.

        >>> Moments.of_floats(np.array([1.0, 2.0, 3.0])).variance()
        1.0
        """
        if self.n <= ddof:
            return None
        return self.m2 / (self.n - ddof)

    def std(self, ddof: int = 1) -> float | None:
        """Square root of :meth:`variance`.

        >>> Moments.of_floats(np.array([1.0, 3.0])).std(ddof=0)
        1.0
        """
        variance = self.variance(ddof)
        return None if variance is None else math.sqrt(variance)

    def _spread(self) -> float | None:
        # scipy's rule for "no spread": m2 <= (eps * mean)**2 gives NaN skew and kurtosis.
        if self.n == 0:
            return None
        m2 = self.m2 / self.n
        mean = self.mean
        if not math.isfinite(m2) or m2 <= (_EPS * mean) * (_EPS * mean):
            return None
        return m2

    @property
    def skewness(self) -> float | None:
        """``m3 / m2**1.5``, as ``scipy.stats.skew(x)``; ``None`` without spread.

        >>> Moments.of_floats(np.array([2.0, 8.0, 0.0, 4.0, 1.0, 9.0, 9.0, 0.0])).skewness
        0.26505541226985...
        """
        m2 = self._spread()
        if m2 is None:
            return None
        value = (self.m3 / self.n) / (m2 * math.sqrt(m2))
        return value if math.isfinite(value) else None

    @property
    def kurtosis(self) -> float | None:
        """Excess kurtosis ``m4 / m2**2 - 3``, as ``scipy.stats.kurtosis(x)``; ``None``
        without spread.

        >>> Moments.of_floats(np.array([1.0, 2.0, 3.0, 4.0])).kurtosis
        -1.36
        """
        m2 = self._spread()
        if m2 is None:
            return None
        value = (self.m4 / self.n) / (m2 * m2) - 3.0
        return value if math.isfinite(value) else None

    def merge(self, other: Moments) -> Moments:
        """The moments of both samples together (Chan et al. / Pébay pairwise update).

        >>> a = Moments.of_floats(np.array([1.0, 2.0]))
        >>> b = Moments.of_floats(np.array([6.0]))
        >>> a.merge(b).m2 == Moments.of_floats(np.array([1.0, 2.0, 6.0])).m2
        True
        """
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        na, nb = float(self.n), float(other.n)
        n = na + nb
        delta = other.mean - self.mean
        d2 = delta * delta
        m2 = self.m2 + other.m2 + d2 * na * nb / n
        m3 = (
            self.m3
            + other.m3
            + d2 * delta * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * other.m2 - nb * self.m2) / n
        )
        m4 = (
            self.m4
            + other.m4
            + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * d2 * (na * na * other.m2 + nb * nb * self.m2) / (n * n)
            + 4.0 * delta * (na * other.m3 - nb * self.m3) / n
        )
        return Moments(self.n + other.n, self.total + other.total, m2, m3, m4)

    def to_state(self) -> dict:
        """A lossless JSON-safe dictionary (see :meth:`from_state`)."""
        return {
            "n": self.n,
            "total": self.total.to_state(),
            "m2": self.m2,
            "m3": self.m3,
            "m4": self.m4,
        }

    @classmethod
    def from_state(cls, state: dict) -> Moments:
        """Rebuild from :meth:`to_state`.

        >>> m = Moments.of_floats(np.array([0.1, 0.7, 2.5]))
        >>> Moments.from_state(m.to_state()) == m
        True
        """
        return cls(
            int(state["n"]),
            ExactSum.from_state(state["total"]),
            float(state["m2"]),
            float(state["m3"]),
            float(state["m4"]),
        )
