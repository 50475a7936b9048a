"""Streams with known change points, and a helper that runs a River detector item by item."""

from __future__ import annotations

import numpy as np

STREAM_LENGTH = 12_000
CHANGE_AT = 6_000


def _ramp(n: int, start: int, width: int) -> np.ndarray:
    """Share of the new concept at each item: 0 before ``start``, 1 after ``start + width``."""
    return np.clip((np.arange(n) - start) / width, 0.0, 1.0)


def bernoulli_streams(seed: int, p0: float = 0.1, p1: float = 0.3) -> dict[str, np.ndarray]:
    """Error streams (int 0/1): unchanged, abrupt change, gradual change, several changes."""
    rng = np.random.default_rng(seed)
    n = STREAM_LENGTH
    u = rng.random(n)
    step = np.where(np.arange(n) < CHANGE_AT, p0, p1)
    gradual = p0 + (p1 - p0) * _ramp(n, CHANGE_AT, 2_000)
    several = np.tile(np.repeat([p0, p1, p0 / 2, 0.5], n // 8), 2)
    return {
        "no_change": (u < p0).astype(np.int64),
        "abrupt": (u < step).astype(np.int64),
        "gradual": (u < gradual).astype(np.int64),
        "several": (u < several).astype(np.int64),
    }


def gaussian_streams(seed: int, shift: float = 1.0) -> dict[str, np.ndarray]:
    """Gaussian streams: unchanged, mean shift, gradual mean shift, several shifts."""
    rng = np.random.default_rng(seed)
    n = STREAM_LENGTH
    z = rng.normal(size=n)
    several = np.tile(np.repeat([0.0, shift, -shift, 2 * shift], n // 8), 2)
    return {
        "no_change": z,
        "abrupt": z + shift * (np.arange(n) >= CHANGE_AT),
        "gradual": z + shift * _ramp(n, CHANGE_AT, 2_000),
        "several": z + several,
    }


def river_signals(detector, xs, warnings: bool = False) -> tuple[list[int], list[int]]:
    """Positions where a River detector flags drift (and warning), feeding items one by one."""
    drifts: list[int] = []
    warns: list[int] = []
    for i, x in enumerate(np.asarray(xs).tolist()):
        detector.update(x)
        if detector.drift_detected:
            drifts.append(i)
        if warnings and detector.warning_detected:
            warns.append(i)
    return drifts, warns
