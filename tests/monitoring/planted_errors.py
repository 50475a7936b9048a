"""Two variants' answers with labels whose error stream changes at a known row, pushed
through a monitoring service (local or over HTTP), and what ADWIN signals on the same
streams read directly.

Variant ``a`` answers 300, 320, ... 400 requests in six hourly windows, wrong 5% of the
time until row :data:`CHANGE` of its error stream (in window 2) and half of the time after
it. Variant ``b`` answers 120, 130, ... 170 requests, wrong 5% of the time throughout.
Each request is one record, answered at a distinct time, so a window's error stream is its
rows in the order they were logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opsloop.detect import ADWIN

HOUR_MS = 3_600_000
WINDOWS = 6
#: Each variant's requests in window ``k``: ``first + step * k``.
REQUESTS = {"a": (300, 20), "b": (120, 10)}
#: The row of variant ``a``'s error stream where its error rate goes from 5% to 50%.
CHANGE = 300 + 320 + 170
RULE = "error_drift > 0 -> alert"


@dataclass
class Planted:
    """What was sent: per variant, each window's request count and the error stream (one
    0/1 item per labelled row, in event order) with each row's time."""

    start_ms: int
    requests: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, np.ndarray] = field(default_factory=dict)
    times: dict[str, np.ndarray] = field(default_factory=dict)

    def window_start(self, k: int) -> int:
        return self.start_ms + k * HOUR_MS

    def window_of(self, variant: str, position: int) -> int:
        """The window that holds row ``position`` of the variant's error stream."""
        return int(np.searchsorted(np.cumsum(self.requests[variant]), position, side="right"))

    def alarms(self, variant: str) -> list[int]:
        """The positions where ADWIN on its ``"monitoring"`` preset signals, reading the
        variant's whole error stream at once."""
        found = ADWIN.preset("monitoring").update_many(self.errors[variant].astype(float))
        return [int(p) for p in found.stream_positions()]


def populate_planted_errors(monitoring, name: str, start_ms: int) -> Planted:
    """Set ``name``'s reference, log both variants' answers and labels through
    ``monitoring`` (a monitoring service) in windows from ``start_ms``; the caller
    evaluates them (with :data:`RULE`) once they are closed."""
    rng = np.random.default_rng(23)
    monitoring.set_reference(name, pd.DataFrame({"x": rng.normal(0.0, 1.0, 200)}))
    planted = Planted(start_ms)
    for variant, (first, step) in REQUESTS.items():
        counts = [first + step * k for k in range(WINDOWS)]
        errors, times = [], []
        offset = 0
        for k, n in enumerate(counts):
            position = offset + np.arange(n)
            rate = np.where((variant == "a") & (position >= CHANGE), 0.5, 0.05)
            wrong = rng.random(n) < rate
            predictions = rng.integers(0, 2, n)
            labels = np.where(wrong, 1 - predictions, predictions)
            at = planted.window_start(k) + np.sort(rng.choice(HOUR_MS, n, replace=False))
            ids = monitoring.log_predictions(
                name,
                pd.DataFrame({"x": rng.normal(0.0, 1.0, n)}),
                predictions,
                variant=variant,
                at_ms=at,
                model="m",
                version=1,
            )
            monitoring.log_labels(name, ids, labels.tolist())
            errors.append(wrong.astype(np.int64))
            times.append(at)
            offset += n
        planted.requests[variant] = counts
        planted.errors[variant] = np.concatenate(errors)
        planted.times[variant] = np.concatenate(times)
    return planted
