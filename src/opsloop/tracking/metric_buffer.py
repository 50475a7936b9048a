"""Metric points buffered in memory and handed to the store in batches.

Logging one value appends to four Python lists under a lock (about a microsecond); the store
is written only when a batch is drained: by the run's background flusher, when the buffer
passes its size limit, and when the run ends. This is how per-value logging reaches the
speed of one bulk insert instead of one database round-trip per value.

>>> buffer = MetricBuffer()
>>> buffer.append("auc", 0.5, 0, 1000)
1
>>> buffer.append("auc", 0.6, 1, 1001)
2
>>> batch = buffer.drain()
>>> len(batch), batch.values.tolist(), len(buffer)
(2, [0.5, 0.6], 0)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from opsloop.errors import InvalidArgumentError


@dataclass(frozen=True)
class MetricBatch:
    """Points in logging order: ``keys[i]`` had ``values[i]`` at ``steps[i]``, ``timestamps_ms[i]``.

    >>> MetricBatch.from_dict({"keys": ["a"], "values": [1.0], "steps": [0],
    ...                        "timestamps_ms": [5]}).timestamps_ms.tolist()
    [5]
    """

    keys: tuple[str, ...]
    values: np.ndarray
    steps: np.ndarray
    timestamps_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def pieces(self, size: int) -> list[MetricBatch]:
        """The points in order, as batches of at most ``size`` points each.

        >>> batch = MetricBatch(("a",) * 5, np.arange(5.0), np.arange(5), np.arange(5))
        >>> [piece.steps.tolist() for piece in batch.pieces(2)]
        [[0, 1], [2, 3], [4]]
        """
        return [
            MetricBatch(
                self.keys[start : start + size],
                self.values[start : start + size],
                self.steps[start : start + size],
                self.timestamps_ms[start : start + size],
            )
            for start in range(0, len(self), size)
        ]

    def to_dict(self) -> dict[str, list]:
        """Plain lists, for JSON.

        >>> MetricBatch(("a",), np.array([1.0]), np.array([2]), np.array([3])).to_dict()
        {'keys': ['a'], 'values': [1.0], 'steps': [2], 'timestamps_ms': [3]}
        """
        return {
            "keys": list(self.keys),
            "values": self.values.tolist(),
            "steps": self.steps.tolist(),
            "timestamps_ms": self.timestamps_ms.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> MetricBatch:
        """Rebuild from :meth:`to_dict`, checking that the four lists have one length.

        >>> MetricBatch.from_dict({"keys": ["a"], "values": [], "steps": [],
        ...                        "timestamps_ms": []})
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: metric batch: keys, values, steps and timestamps_ms...
        """
        keys = tuple(data["keys"])
        values = np.asarray(data["values"], dtype=np.float64)
        steps = np.asarray(data["steps"], dtype=np.int64)
        stamps = np.asarray(data["timestamps_ms"], dtype=np.int64)
        lengths = (len(keys), len(values), len(steps), len(stamps))
        if len(set(lengths)) != 1:
            raise InvalidArgumentError(
                "metric batch: keys, values, steps and timestamps_ms need one length, got "
                + ", ".join(map(str, lengths))
            )
        return cls(keys, values, steps, stamps)

    @classmethod
    def empty(cls) -> MetricBatch:
        """A batch with no points.

        >>> len(MetricBatch.empty())
        0
        """
        return cls((), np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))


class MetricBuffer:
    """A thread-safe list of metric points; :meth:`drain` takes them all as one batch.

    >>> b = MetricBuffer()
    >>> b.extend(["a", "b"], [1.0, 2.0], [0, 0], [7, 7])
    >>> b.drain().keys
    ('a', 'b')
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[str] = []
        self._values: list[float] = []
        self._steps: list[int] = []
        self._stamps: list[int] = []

    def __len__(self) -> int:
        return len(self._keys)

    def append(self, key: str, value: float, step: int, timestamp_ms: int) -> int:
        """Add one point (already validated by the caller); return how many are buffered.

        >>> b = MetricBuffer(); b.append("x", 1.0, 0, 0)
        1
        """
        with self._lock:
            self._keys.append(key)
            self._values.append(value)
            self._steps.append(step)
            self._stamps.append(timestamp_ms)
            return len(self._keys)

    def extend(self, keys, values, steps, timestamps_ms) -> None:
        """Add many points at once (equal-length sequences, already validated).

        >>> b = MetricBuffer(); b.extend(["x"], [1.0], [0], [0]); len(b)
        1
        """
        with self._lock:
            self._keys.extend(keys)
            self._values.extend(values)
            self._steps.extend(steps)
            self._stamps.extend(timestamps_ms)

    def drain(self) -> MetricBatch:
        """Remove and return every buffered point, in logging order.

        >>> len(MetricBuffer().drain())
        0
        """
        with self._lock:
            keys, values, steps, stamps = self._keys, self._values, self._steps, self._stamps
            self._keys, self._values, self._steps, self._stamps = [], [], [], []
        return MetricBatch(
            tuple(keys),
            np.array(values, dtype=np.float64),
            np.array(steps, dtype=np.int64),
            np.array(stamps, dtype=np.int64),
        )

    def restore(self, batch: MetricBatch) -> None:
        """Put a batch that could not be written back in front of newer points.

        >>> b = MetricBuffer(); _ = b.append("new", 2.0, 1, 1)
        >>> b.restore(MetricBatch(("old",), np.array([1.0]), np.array([0]), np.array([0])))
        >>> b.drain().keys
        ('old', 'new')
        """
        with self._lock:
            self._keys[:0] = batch.keys
            self._values[:0] = batch.values.tolist()
            self._steps[:0] = batch.steps.tolist()
            self._stamps[:0] = batch.timestamps_ms.tolist()
