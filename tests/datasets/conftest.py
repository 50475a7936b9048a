"""Shared checks for the datasets tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest


def _assert_same_frame(left: pd.DataFrame, right: pd.DataFrame) -> None:
    # pandas compares categoricals value by value in Python; codes plus categories say the same
    # thing, exactly, in a fraction of the time.
    assert list(left.columns) == list(right.columns)
    assert left.index.equals(right.index)
    for name in left.columns:
        a, b = left[name], right[name]
        assert a.dtype == b.dtype, name
        if isinstance(a.dtype, pd.CategoricalDtype):
            assert a.cat.categories.equals(b.cat.categories), name
            np.testing.assert_array_equal(a.cat.codes.to_numpy(), b.cat.codes.to_numpy())
        else:
            pd.testing.assert_series_equal(a, b, check_exact=True)


@pytest.fixture
def assert_same_frame() -> Callable[[pd.DataFrame, pd.DataFrame], None]:
    """Assert two frames hold the same columns, dtypes and values, bit for bit."""
    return _assert_same_frame
