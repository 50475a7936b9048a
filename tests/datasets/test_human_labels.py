"""human_labels: per-slice error rates measured close to the configured ones."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from opsloop.datasets import DEFAULT_ERROR_RATES, credit, human_error_rates, human_labels


def within_binomial(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def rate_by_hand(row: dict, rates: dict) -> float:
    """The module's rule read one row at a time: the largest matching slice rate, else default."""
    matched = [
        rate
        for column, by_value in rates.items()
        if column != "_default"
        for value, rate in by_value.items()
        if row[column] == value
    ]
    return max(matched) if matched else rates.get("_default", 0.0)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit(200_000, seed=8)


def test_error_rates_per_row_follow_the_rule(frame):
    sample = frame.head(3_000)
    rows = sample[["device", "region"]].astype(object).to_dict("records")
    expected = [rate_by_hand(row, DEFAULT_ERROR_RATES) for row in rows]
    assert human_error_rates(sample).tolist() == expected


def test_default_slices_err_at_their_rates(frame):
    human = human_labels(frame, seed=1)
    wrong = human != frame["default"].to_numpy()
    rural = (frame["region"] == "rural").to_numpy()
    for device, rate in (("desktop", 0.02), ("mobile", 0.08), ("tablet", 0.05)):
        rows = (frame["device"] == device).to_numpy() & ~rural
        assert within_binomial(wrong[rows].mean(), rate, rows.sum()), device
    assert within_binomial(wrong[rural].mean(), 0.12, rural.sum())
    # a whole slice errs at the mean of its rows' probabilities
    mobile = (frame["device"] == "mobile").to_numpy()
    expected = human_error_rates(frame)[mobile].mean()
    assert within_binomial(wrong[mobile].mean(), expected, mobile.sum())


def test_custom_rates(frame):
    rates = {"_default": 0.0, "gender": {"non_binary": 0.3}, "education": {"doctorate": 0.1}}
    human = human_labels(frame, seed=2, error_rates=rates)
    wrong = human != frame["default"].to_numpy()
    non_binary = (frame["gender"] == "non_binary").to_numpy()
    doctorate = (frame["education"] == "doctorate").to_numpy()
    assert wrong[~non_binary & ~doctorate].sum() == 0
    assert within_binomial(wrong[non_binary].mean(), 0.3, non_binary.sum())
    assert within_binomial(
        wrong[doctorate & ~non_binary].mean(), 0.1, (doctorate & ~non_binary).sum()
    )


def test_labels_are_copied_with_flips_only(frame):
    human = human_labels(frame.head(1000), error_rates={"_default": 0.0})
    assert human.dtype == np.int64
    assert human.tolist() == frame["default"].head(1000).tolist()
    assert np.array_equal(human_labels(frame, seed=3), human_labels(frame, seed=3))


def test_missing_cells_match_no_slice():
    df = pd.DataFrame({"device": pd.Categorical([None, "mobile"], categories=["mobile"])})
    assert human_error_rates(df, {"_default": 0.01, "device": {"mobile": 0.5}}).tolist() == [
        0.01,
        0.5,
    ]


@pytest.mark.parametrize(
    ("rates", "error", "message"),
    [
        ({"channel": {"web": 0.1}}, ValueError, "names column 'channel'"),
        ({"device": {"watch": 0.1}}, ValueError, "not categories of column 'device'"),
        ({"device": {"mobile": 1.5}}, ValueError, r"error_rates\['device'\]\['mobile'\] must be"),
        ({"_default": -0.1}, ValueError, r"error_rates\['_default'\] must be"),
        ({"device": 0.1}, TypeError, r"error_rates\['device'\] must map values to rates"),
    ],
)
def test_bad_rates_are_named(frame, rates, error, message):
    with pytest.raises(error, match=message):
        human_labels(frame.head(10), error_rates=rates)


def test_label_column_must_be_binary():
    df = pd.DataFrame({"device": ["mobile"], "region": ["rural"], "default": [2]})
    with pytest.raises(ValueError, match="must hold only 0 and 1"):
        human_labels(df)
    with pytest.raises(ValueError, match="no label column 'y'"):
        human_labels(df, label="y")
