"""credit(): determinism, columns, ranges, distributions, noise, missing cells, validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.data.types import infer_column_type
from opsloop.datasets import ConceptShift, credit
from opsloop.datasets import credit_attributes as attrs
from opsloop.datasets.purpose import LOAN_EDGES, PHRASE_TOPIC, PHRASES, TOPIC_WEIGHTS


def within_binomial(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return credit(200_000, seed=7, noise=0.0)


def test_same_seed_same_frame_bit_for_bit(assert_same_frame):
    first = credit(5_000, seed=11, missing=0.05, changes=[ConceptShift(2_000, rule=1, width=500)])
    second = credit(5_000, seed=11, missing=0.05, changes=[ConceptShift(2_000, rule=1, width=500)])
    assert_same_frame(first, second)
    other = credit(5_000, seed=12)
    assert not first["salary"].equals(other["salary"])


def test_columns_and_dtypes():
    df = credit(100, seed=0)
    assert tuple(df.columns) == attrs.COLUMNS
    assert df["applied_at"].dtype == "datetime64[ns]"
    for name in ("age", "house_years", "default"):
        assert df[name].dtype == np.int64
    for name in ("salary", "commission", "house_value", "loan_amount"):
        assert df[name].dtype == np.float64
    for name, levels in attrs.CATEGORIES.items():
        assert isinstance(df[name].dtype, pd.CategoricalDtype)
        assert tuple(df[name].cat.categories) == levels
    # pandas' default text dtype: ``str`` (Arrow-backed) from pandas 3, ``object`` before.
    assert df["purpose"].dtype == pd.Series(["x"], dtype="str").dtype
    assert credit(0).shape == (0, 14)


def test_categories_do_not_depend_on_n():
    tiny = credit(3, seed=0)
    assert tuple(tiny["region"].cat.categories) == attrs.REGIONS
    assert tiny["region"].nunique() <= 3


def test_ranges_follow_agrawal(big):
    df = big
    assert df["age"].between(20, 80).all() and set(df["age"]) == set(range(20, 81))
    assert set(df["house_years"]) == set(range(1, 31))
    assert df["salary"].between(20_000, 150_000).all()
    assert df["loan_amount"].between(0, 500_000).all()
    # commission is 0 exactly when salary is at least 75k, else between 10k and 75k
    no_commission = df["commission"] == 0
    assert (no_commission == (df["salary"] >= 75_000)).all()
    assert df.loc[~no_commission, "commission"].between(10_000, 75_000).all()
    # house value: uniform on [k * 50k, k * 150k] with k = 9 - zipcode
    k = 9 - df["region"].cat.codes.to_numpy().astype(np.int64)
    value = df["house_value"].to_numpy()
    assert np.all((value >= k * 50_000) & (value <= k * 150_000))
    rescaled = value / (k * 100_000) - 0.5
    assert stats.kstest(rescaled, "uniform").pvalue > 0.001
    # money is in cents
    assert np.allclose(df["salary"] * 100, np.round(df["salary"] * 100), rtol=0, atol=1e-6)


def test_uniform_attributes_are_uniform(big):
    n = len(big)
    for name, levels in (("education", 5), ("region", 9), ("car_make", 20)):
        counts = big[name].value_counts().to_numpy()
        assert len(counts) == levels
        assert stats.chisquare(counts).pvalue > 0.001
    salary = (big["salary"] - 20_000) / 130_000
    assert stats.kstest(salary, "uniform").pvalue > 0.001
    ages = big["age"].value_counts().reindex(range(20, 81)).to_numpy()
    assert ages.sum() == n and stats.chisquare(ages).pvalue > 0.001


def test_gender_and_device_follow_the_documented_mix(big):
    n = len(big)
    shares = big["gender"].value_counts(normalize=True)
    for gender, weight in zip(attrs.GENDERS, attrs.GENDER_WEIGHTS, strict=True):
        assert within_binomial(shares[gender], weight, n)
    band = np.digitize(big["age"], [40, 60])
    for b in range(3):
        rows = big[band == b]
        shares = rows["device"].value_counts(normalize=True)
        for device, weight in zip(attrs.DEVICES, attrs.DEVICE_WEIGHTS_BY_AGE[b], strict=True):
            assert within_binomial(shares[device], weight, len(rows))


def test_purpose_is_varied_text_whose_topic_follows_the_loan(big):
    purpose = big["purpose"]
    assert purpose.nunique() > 1_500
    assert infer_column_type(purpose) == "string"
    index = pd.Index(PHRASES)
    codes = index.get_indexer(purpose)
    assert (codes >= 0).all()
    band = np.searchsorted(LOAN_EDGES, big["loan_amount"], side="right")
    topic = PHRASE_TOPIC[codes]
    for b in range(3):
        observed = np.bincount(topic[band == b], minlength=TOPIC_WEIGHTS.shape[1])
        m = observed.sum()
        for t, weight in enumerate(TOPIC_WEIGHTS[b]):
            if weight == 0:
                assert observed[t] == 0
            else:
                assert within_binomial(observed[t] / m, weight, m)


def test_label_noise_flips_the_requested_share(assert_same_frame):
    clean = credit(200_000, seed=3, noise=0.0)
    noisy = credit(200_000, seed=3, noise=0.1)
    assert_same_frame(clean.drop(columns="default"), noisy.drop(columns="default"))
    flipped = (clean["default"] != noisy["default"]).mean()
    assert within_binomial(flipped, 0.1, len(clean))


def test_missing_blanks_features_only_and_keeps_the_rest():
    full = credit(50_000, seed=4)
    holey = credit(50_000, seed=4, missing=0.1)
    assert holey["age"].dtype == "Int64" and holey["house_years"].dtype == "Int64"
    assert holey["applied_at"].notna().all() and holey["default"].notna().all()
    pd.testing.assert_series_equal(full["default"], holey["default"])
    for name in attrs.FEATURES:
        blank = holey[name].isna()
        assert within_binomial(blank.mean(), 0.1, len(holey)), name
        kept = ~blank.to_numpy()
        assert (
            full[name].astype(object)[kept].tolist() == holey[name].astype(object)[kept].tolist()
        ), name
    # The dtype depends on the parameter, not on whether a cell happened to be blanked.
    assert credit(2, seed=0, missing=1e-9)["age"].dtype == "Int64"


def test_applied_at_is_ordered_at_the_requested_pace():
    df = credit(20_000, seed=5, rows_per_day=500)
    times = df["applied_at"]
    assert times.is_monotonic_increasing
    days = (times.iloc[-1] - pd.Timestamp("2024-01-01")) / pd.Timedelta(days=1)
    # a sum of 20,000 exponential gaps: mean 40 days, standard deviation 40 / sqrt(20,000)
    assert abs(days - 40) < 5 * 40 / math.sqrt(20_000)
    assert (times.dt.nanosecond == 0).all() and (times.dt.microsecond == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": -1}, ValueError, "n must be an integer >= 0"),
        ({"n": 2.5}, ValueError, "n must be an integer >= 0"),
        ({"n": 10, "seed": -3}, ValueError, "seed must be an integer >= 0"),
        ({"n": 10, "noise": 1.5}, ValueError, r"noise must be a number in \[0, 1\]"),
        ({"n": 10, "missing": -0.1}, ValueError, r"missing must be a number in \[0, 1\]"),
        ({"n": 10, "rows_per_day": 0}, ValueError, "rows_per_day must be a finite number > 0"),
        ({"n": 10, "changes": ["drift"]}, TypeError, r"changes\[0\] must be a CovariateShift"),
        ({"n": 10, "changes": 3}, TypeError, "changes must be a list"),
    ],
)
def test_bad_parameters_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        credit(**kwargs)
