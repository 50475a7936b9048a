"""Software metrics of a window: requests, rows, errors and a latency histogram, all counts
that add up across workers.

The latency histogram has fixed bucket bounds (in milliseconds, Prometheus style), so two
workers' histograms merge by adding counts; a quantile is read as the upper bound of the
bucket where the cumulative count reaches it.

>>> import numpy as np
>>> m = SoftwareMetrics.of(np.array([0.4, 3.0, 30.0]), np.array([False, False, True]), 5, 0, 90)
>>> m.requests, m.errors, m.latency_quantile(0.5), m.error_rate
(3, 1, 5.0, 0.3333333333333333)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Upper bounds of the latency buckets in milliseconds; the last bucket is everything above.
LATENCY_BOUNDS_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)


@dataclass(frozen=True)
class SoftwareMetrics:
    """``requests`` answered, ``rows`` predicted, ``errors`` (answers with an error), the
    latency ``histogram`` (counts per bucket of :data:`LATENCY_BOUNDS_MS`, one more for
    above), their ``latency_sum_ms``, and the first and last event times."""

    requests: int
    rows: int
    errors: int
    histogram: tuple[int, ...]
    latency_sum_ms: float
    first_ms: int | None
    last_ms: int | None

    @classmethod
    def of(
        cls, latency_ms: np.ndarray, failed: np.ndarray, rows: int, first_ms: int, last_ms: int
    ) -> SoftwareMetrics:
        """The metrics of requests with these latencies and error flags."""
        buckets = np.searchsorted(np.asarray(LATENCY_BOUNDS_MS), latency_ms, side="left")
        counts = np.bincount(buckets, minlength=len(LATENCY_BOUNDS_MS) + 1)
        return cls(
            int(latency_ms.size),
            int(rows),
            int(np.count_nonzero(failed)),
            tuple(int(c) for c in counts),
            float(np.sum(latency_ms)),
            int(first_ms),
            int(last_ms),
        )

    def merge(self, other: SoftwareMetrics) -> SoftwareMetrics:
        """Both windows' metrics added up.

        >>> import numpy as np
        >>> a = SoftwareMetrics.of(np.array([1.0]), np.array([True]), 1, 10, 10)
        >>> m = a.merge(SoftwareMetrics.of(np.array([9.0]), np.array([False]), 2, 5, 7))
        >>> m.requests, m.rows, m.errors, m.first_ms, m.last_ms
        (2, 3, 1, 5, 10)
        """
        firsts = [t for t in (self.first_ms, other.first_ms) if t is not None]
        lasts = [t for t in (self.last_ms, other.last_ms) if t is not None]
        return SoftwareMetrics(
            self.requests + other.requests,
            self.rows + other.rows,
            self.errors + other.errors,
            tuple(a + b for a, b in zip(self.histogram, other.histogram, strict=True)),
            self.latency_sum_ms + other.latency_sum_ms,
            min(firsts, default=None),
            max(lasts, default=None),
        )

    @property
    def error_rate(self) -> float | None:
        """Errors per request (``None`` without requests)."""
        return self.errors / self.requests if self.requests else None

    def latency_quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the ``q`` quantile (``inf`` above the last
        bound, ``None`` without requests).

        >>> import numpy as np
        >>> slow = SoftwareMetrics.of(np.array([6000.0]), np.array([False]), 1, 0, 0)
        >>> slow.latency_quantile(0.99)
        inf
        """
        if not self.requests:
            return None
        cumulative = np.cumsum(self.histogram)
        index = int(np.searchsorted(cumulative, q * self.requests, side="left"))
        bounds = (*LATENCY_BOUNDS_MS, float("inf"))
        return bounds[min(index, len(bounds) - 1)]

    def to_dict(self) -> dict:
        """A JSON-safe dictionary (:meth:`from_dict` reads it back).

        >>> import numpy as np
        >>> m = SoftwareMetrics.of(np.array([1.0]), np.array([False]), 1, 3, 3)
        >>> SoftwareMetrics.from_dict(m.to_dict()) == m
        True
        """
        return {
            "requests": self.requests,
            "rows": self.rows,
            "errors": self.errors,
            "histogram": list(self.histogram),
            "latency_sum_ms": self.latency_sum_ms,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SoftwareMetrics:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            int(data["requests"]),
            int(data["rows"]),
            int(data["errors"]),
            tuple(int(c) for c in data["histogram"]),
            float(data["latency_sum_ms"]),
            data["first_ms"],
            data["last_ms"],
        )
