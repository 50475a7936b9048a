"""Monitoring fixtures: a SQLite store file with a clock moved by hand, and live traffic
drawn from scikit-learn's bundled breast cancer data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from tests.clock import FakeClock
from tests.store.databases import isolated_home

from opsloop.store.database import Database

__all__ = ["isolated_home"]

HOUR_MS = 3_600_000
#: A window boundary (1.8e12 is a multiple of an hour and of a day).
T0 = 1_800_000_000_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "store.db"


@pytest.fixture
def db(store_path, clock) -> Database:
    database = Database(f"sqlite:///{store_path}", clock=clock)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target.to_numpy()
