"""Fixtures: the error and Gaussian streams of :mod:`streams`."""

from __future__ import annotations

import numpy as np
import pytest

from .streams import bernoulli_streams, gaussian_streams


@pytest.fixture(scope="module")
def error_streams() -> dict[str, np.ndarray]:
    return bernoulli_streams(2024)


@pytest.fixture(scope="module")
def normal_streams() -> dict[str, np.ndarray]:
    return gaussian_streams(2024)
