"""drift_table: shifted columns differ by what the truth says; unshifted ones do not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from opsloop.datasets import BENCHMARK_SHIFTS, ColumnShift, drift_table
from opsloop.datasets.drift_table import FAMILIES

N = 200_000


@pytest.fixture(scope="module")
def benchmark_like() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    return drift_table(N, seed=3)


def _mixture_moments() -> tuple[float, float]:
    def pdf(x):
        return 0.6 * stats.norm.pdf(x, -2, 1) + 0.4 * stats.norm.pdf(x, 3, 1.5)

    mean = integrate.quad(lambda x: x * pdf(x), -np.inf, np.inf)[0]
    second = integrate.quad(lambda x: x * x * pdf(x), -np.inf, np.inf)[0]
    return mean, math.sqrt(second - mean**2)


def test_family_moments_match_scipy():
    reference = {
        "normal": stats.norm(100, 15),
        "lognormal": stats.lognorm(0.8, scale=math.exp(3.0)),
        "exponential": stats.expon(scale=2.0),
        "uniform": stats.uniform(0, 10),
        "student_t": stats.t(3),
        "rounded_normal": stats.norm(40, 12),
        "counts": stats.lognorm(0.75, scale=math.e),
        "gamma": stats.gamma(2.0, scale=3.0),
        "beta": stats.beta(2.0, 5.0),
    }
    mixture_mean, mixture_std = _mixture_moments()
    for family in FAMILIES:
        if family.name == "bimodal":
            assert family.mean == pytest.approx(mixture_mean, abs=1e-9)
            assert family.std == pytest.approx(mixture_std, rel=1e-9)
        else:
            dist = reference[family.name]
            assert family.mean == pytest.approx(dist.mean(), rel=1e-9, abs=1e-12), family.name
            assert family.std == pytest.approx(dist.std(), rel=1e-9), family.name


def test_columns_dtypes_and_shared_categories(benchmark_like):
    reference, current, truth = benchmark_like
    assert reference.shape == current.shape == (N, 25)
    assert list(reference.columns) == list(current.columns)
    assert reference.columns[:10].tolist() == [
        "x00_normal",
        "x01_lognormal",
        "x02_exponential",
        "x03_uniform",
        "x04_student_t",
        "x05_bimodal",
        "x06_rounded_normal",
        "x07_counts",
        "x08_gamma",
        "x09_beta",
    ]
    assert reference.columns[20:].tolist() == [
        "c00_2levels",
        "c01_4levels",
        "c02_10levels",
        "c03_22levels",
        "c04_50levels",
    ]
    for name in ("x06_rounded_normal", "x07_counts", "x16_rounded_normal"):
        assert reference[name].dtype == np.int64 and reference[name].nunique() < 200
    for name in reference.columns[20:]:
        assert reference[name].cat.categories.equals(current[name].cat.categories)
    frame = truth.to_frame()
    assert frame["levels"].dropna().tolist() == [2, 4, 10, 22, 50]
    assert truth.shifted == tuple(BENCHMARK_SHIFTS)


def test_numeric_shifts_have_the_stated_size(benchmark_like):
    reference, current, _ = benchmark_like
    stds = {f.name: f.std for f in FAMILIES}
    for name, shift in BENCHMARK_SHIFTS.items():
        if shift.kind != "mean":
            continue
        family = name.split("_", 1)[1]
        difference = (current[name].mean() - reference[name].mean()) / stds[family]
        # standard error of a difference of two means, in sigma units: sqrt(2 / N); rounding
        # the integer columns adds at most a little variance
        assert abs(difference - shift.amount) < 5 * math.sqrt(2.2 / N), name
        assert stats.ks_2samp(reference[name], current[name]).pvalue < 1e-6, name
    # scale: the interquartile range grows by the factor (robust for Student t's heavy tails)
    name = "x14_student_t"
    iqr = stats.iqr(current[name]) / stats.iqr(reference[name])
    assert iqr == pytest.approx(BENCHMARK_SHIFTS[name].amount, abs=0.02)


def test_frequency_shifts_move_the_stated_mass(benchmark_like):
    reference, current, _ = benchmark_like
    for name in ("c00_2levels", "c03_22levels"):
        amount = BENCHMARK_SHIFTS[name].amount
        ref = reference[name].value_counts(normalize=True, sort=False)
        cur = current[name].value_counts(normalize=True, sort=False)
        tv = 0.5 * (ref - cur).abs().sum()
        assert tv == pytest.approx(amount, abs=5 * math.sqrt(2 / N) + 0.005), name
        assert cur.iloc[0] - ref.iloc[0] == pytest.approx(-amount, abs=5 * math.sqrt(0.5 / N))


def test_unshifted_columns_do_not_differ(benchmark_like):
    reference, current, truth = benchmark_like
    for column in truth.columns:
        if column.shifted:
            continue
        a, b = reference[column.column], current[column.column]
        if column.family == "categorical":
            table = np.vstack([a.value_counts(sort=False), b.value_counts(sort=False)])
            p = stats.chi2_contingency(table).pvalue
        else:
            p = stats.ks_2samp(a, b).pvalue
        assert p > 0.001, column.column


def test_no_shifts_gives_two_samples_of_one_distribution():
    reference, current, truth = drift_table(
        20_000, seed=4, n_numeric=10, n_categorical=2, shifted={}
    )
    assert truth.shifted == ()
    assert not reference["x00_normal"].equals(current["x00_normal"])
    for name in reference.columns[:10]:
        assert stats.ks_2samp(reference[name], current[name]).pvalue > 0.001, name


def test_same_seed_same_tables_and_columns_are_independent_of_others(assert_same_frame):
    first = drift_table(5_000, seed=5, n_numeric=4, n_categorical=2, shifted={})
    second = drift_table(5_000, seed=5, n_numeric=4, n_categorical=2, shifted={})
    assert_same_frame(first[0], second[0])
    assert_same_frame(first[1], second[1])
    wider = drift_table(
        5_000, seed=5, n_numeric=6, n_categorical=2, shifted={"x05_bimodal": ColumnShift("mean", 1)}
    )
    assert wider[0]["x02_exponential"].equals(first[0]["x02_exponential"])
    assert wider[1]["x03_uniform"].equals(first[1]["x03_uniform"])


def test_truth_serialises():
    _, _, truth = drift_table(
        10, n_numeric=2, n_categorical=1, shifted={"x01_lognormal": ColumnShift("scale", 2)}
    )
    assert truth.to_dict() == {
        "columns": [
            {
                "column": "x00_normal",
                "family": "normal",
                "levels": None,
                "shifted": False,
                "kind": None,
                "amount": None,
            },
            {
                "column": "x01_lognormal",
                "family": "lognormal",
                "levels": None,
                "shifted": True,
                "kind": "scale",
                "amount": 2.0,
            },
            {
                "column": "c00_2levels",
                "family": "categorical",
                "levels": 2,
                "shifted": False,
                "kind": None,
                "amount": None,
            },
        ]
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": -1}, ValueError, "n must be an integer >= 0"),
        ({"n": 10, "n_numeric": 3}, ValueError, "shifted='benchmark' shifts columns"),
        ({"n": 10, "shifted": {"zz": ColumnShift("mean", 1)}}, ValueError, "column 'zz'"),
        (
            {"n": 10, "shifted": {"x00_normal": ColumnShift("frequency", 0.1)}},
            ValueError,
            "takes 'mean' or 'scale'",
        ),
        (
            {"n": 10, "shifted": {"c00_2levels": ColumnShift("mean", 0.1)}},
            ValueError,
            "takes 'frequency'",
        ),
        (
            {"n": 10, "shifted": {"c04_50levels": ColumnShift("frequency", 0.5)}},
            ValueError,
            "most frequent level",
        ),
        ({"n": 10, "shifted": {"x00_normal": 0.1}}, TypeError, "must be a ColumnShift"),
        ({"n": 10, "shifted": "all"}, ValueError, "shifted must be a mapping or 'benchmark'"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        drift_table(**kwargs)


@pytest.mark.parametrize(
    ("kind", "amount", "message"),
    [
        ("median", 1.0, "kind must be"),
        ("scale", 0.0, "for 'scale' must be > 0"),
        ("frequency", 1.5, r"for 'frequency' must be in \[0, 1\]"),
        ("mean", math.inf, "must be a finite number"),
    ],
)
def test_bad_column_shifts_are_named(kind, amount, message):
    with pytest.raises(ValueError, match=message):
        ColumnShift(kind, amount)
