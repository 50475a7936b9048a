"""The full-content dataset digest sees any change, anywhere."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from opsloop.tracking.dataset_digest import dataset_sha256


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 20_000
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(5e4, 1e4, n),
            "plan": rng.choice(["free", "pro", "team"], n),
            "signup": pd.date_range("2024-01-01", periods=n, freq="min"),
        }
    )


def test_equal_frames_give_equal_digests_whatever_their_index(frame):
    shuffled_index = frame.set_axis(np.arange(len(frame))[::-1])
    assert dataset_sha256(frame) == dataset_sha256(frame.copy()) == dataset_sha256(shuffled_index)
    assert len(dataset_sha256(frame)) == 64


@pytest.mark.parametrize("column", ["age", "income", "plan", "signup"])
def test_a_change_at_row_15000_changes_the_digest(frame, column):
    changed = frame.copy()
    replacements = {
        "age": lambda v: v + 1,
        "income": lambda v: v + 1e-9,
        "plan": lambda v: "enterprise",
        "signup": lambda v: v + pd.Timedelta(seconds=1),
    }
    changed.loc[15_000, column] = replacements[column](changed.loc[15_000, column])
    assert dataset_sha256(changed) != dataset_sha256(frame)


def test_names_dtypes_order_and_nulls_count(frame):
    base = dataset_sha256(frame)
    assert dataset_sha256(frame.rename(columns={"age": "years"})) != base
    assert dataset_sha256(frame.astype({"age": "float64"})) != base
    assert dataset_sha256(frame.iloc[::-1].reset_index(drop=True)) != base
    assert dataset_sha256(frame[["income", "age", "plan", "signup"]]) != base
    with_null = frame.copy()
    with_null.loc[3, "income"] = np.nan
    other_nan = frame.copy()
    other_nan.loc[3, "income"] = -np.float64("nan")
    assert dataset_sha256(with_null) == dataset_sha256(other_nan) != base


def test_a_small_frame_matches_a_digest_computed_by_hand():
    frame = pd.DataFrame({"x": np.array([1, 2], dtype=np.int64)})
    expected = hashlib.sha256()
    expected.update(b"rows=2;columns=1;")
    expected.update(b"1:x:int64:")
    expected.update(np.packbits(np.array([False, False])).tobytes())
    expected.update(np.array([1, 2], dtype=np.int64).tobytes())
    assert dataset_sha256(frame) == expected.hexdigest()


def test_only_dataframes_are_accepted():
    with pytest.raises(TypeError, match="dataset must be a pandas DataFrame, got list"):
        dataset_sha256([1, 2])
