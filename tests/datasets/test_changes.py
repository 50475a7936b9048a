"""Covariate, prior and concept shift: each moves what it claims and nothing else."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.datasets import (
    ConceptShift,
    CovariateShift,
    PriorShift,
    agrawal_default,
    credit,
    loan_applications,
    regime_probability,
)


def within_binomial(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_regime_probability_ramps_linearly():
    positions = np.arange(10)
    assert regime_probability(positions, 4, 0).tolist() == [0.0] * 4 + [1.0] * 6
    assert regime_probability(positions, 2, 4).tolist() == [
        0.0,
        0.0,
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
        1.0,
        1.0,
        1.0,
    ]


def test_abrupt_change_covers_exactly_the_rows_from_start():
    _, regime = credit(1_000, changes=[ConceptShift(400, rule=1)], return_regime=True)
    assert regime["concept_shift"].tolist() == [False] * 400 + [True] * 600


def test_gradual_change_phases_in_over_width():
    n, start, width = 200_000, 50_000, 100_000
    _, regime = credit(
        n, seed=1, changes=[ConceptShift(start, rule=1, width=width)], return_regime=True
    )
    new = regime["concept_shift"].to_numpy()
    assert not new[:start].any() and new[start + width :].all()
    half = width // 2
    first, second = new[start : start + half], new[start + half : start + width]
    # a linear ramp: on average 1/4 of the first half and 3/4 of the second half
    assert within_binomial(first.mean(), 0.25, half, sigmas=6)
    assert within_binomial(second.mean(), 0.75, half, sigmas=6)


def test_return_regime_does_not_change_the_frame(assert_same_frame):
    changes = [CovariateShift(300, width=200, salary_scale=1.5), PriorShift(600, default_rate=0.2)]
    alone = credit(1_000, seed=2, changes=changes)
    with_regime, regime = credit(1_000, seed=2, changes=changes, return_regime=True)
    assert_same_frame(alone, with_regime)
    assert list(regime.columns) == ["covariate_shift", "prior_shift"]
    assert regime.index.equals(alone.index)


def test_regime_columns_use_names_and_number_repeats():
    changes = [
        ConceptShift(10, rule=1),
        ConceptShift(20, rule=2),
        PriorShift(30, default_rate=0.5, name="campaign"),
    ]
    _, regime = credit(50, changes=changes, return_regime=True)
    assert list(regime.columns) == ["concept_shift", "concept_shift_2", "campaign"]


def test_concept_shift_keeps_features_and_changes_the_rule(assert_same_frame):
    n, start = 20_000, 10_000
    before = credit(n, seed=3, noise=0.0)
    after = credit(n, seed=3, noise=0.0, changes=[ConceptShift(start, rule=2)])
    # P(x) is not only the same distribution: the rows are the same numbers
    assert_same_frame(before.drop(columns="default"), after.drop(columns="default"))
    pd.testing.assert_series_equal(before["default"][:start], after["default"][:start])
    assert after["default"][start:].tolist() == agrawal_default(after[start:], rule=2).tolist()
    assert (before["default"][start:] != after["default"][start:]).mean() > 0.3


def test_covariate_shift_moves_features_but_keeps_the_rule():
    n, start = 100_000, 50_000
    shift = CovariateShift(
        start,
        salary_scale=1.2,
        loan_scale=0.5,
        age_range=(50, 80),
        device_mix={"mobile": 0.9, "tablet": 0.1},
        region_mix={"capital": 1.0},
    )
    df = credit(n, seed=4, noise=0.0, changes=[shift])
    old, new = df[:start], df[start:]
    # the labelling rule did not change: the noise-free label is the rule's
    assert df["default"].tolist() == agrawal_default(df).tolist()
    # salary: uniform 24k-180k after inflation, commission still 0 exactly at or above 75k
    assert stats.kstest((new["salary"] - 24_000) / 156_000, "uniform").pvalue > 0.001
    assert ((new["commission"] == 0) == (new["salary"] >= 75_000)).all()
    assert stats.kstest(new["loan_amount"] / 250_000, "uniform").pvalue > 0.001
    assert set(new["age"]) == set(range(50, 81)) and old["age"].min() == 20
    device = new["device"].value_counts(normalize=True)
    assert device["desktop"] == 0 and within_binomial(device["mobile"], 0.9, len(new))
    assert (new["region"] == "capital").all()
    assert new["house_value"].between(450_000, 1_350_000).all()
    # untouched attributes keep their distribution
    assert stats.ks_2samp(old["house_years"], new["house_years"]).pvalue > 0.001


def test_prior_shift_moves_the_rate_and_keeps_features_within_class():
    n, start = 200_000, 100_000
    df = credit(n, seed=5, changes=[PriorShift(start, default_rate=0.1)])
    old, new = df[:start], df[start:]
    assert within_binomial(old["default"].mean(), 0.513 * 0.95 + 0.487 * 0.05, start, 6)
    assert within_binomial(new["default"].mean(), 0.1, n - start)
    for label in (0, 1):
        a, b = old[old["default"] == label], new[new["default"] == label]
        for name in ("salary", "commission", "loan_amount", "age", "house_value"):
            assert stats.ks_2samp(a[name], b[name]).pvalue > 0.001, (label, name)
        table = pd.crosstab(
            np.r_[np.zeros(len(a)), np.ones(len(b))],
            np.r_[a["education"].cat.codes, b["education"].cat.codes],
        )
        assert stats.chi2_contingency(table).pvalue > 0.001


def test_prior_shift_composes_with_covariate_shift():
    n = 60_000
    changes = [CovariateShift(20_000, salary_scale=1.3), PriorShift(40_000, default_rate=0.3)]
    df, regime = credit(n, seed=6, changes=changes, return_regime=True)
    both = df[regime["covariate_shift"] & regime["prior_shift"]]
    assert within_binomial(both["default"].mean(), 0.3, len(both))
    # redrawn rows keep the covariate regime of their position
    assert both["salary"].max() > 150_000


def test_prior_shift_that_cannot_be_reached_is_an_error(monkeypatch):
    monkeypatch.setattr(loan_applications, "_MAX_PRIOR_ROUNDS", 20)
    # rule 8 never defaults when every salary is ten times larger, and there is no label noise
    changes = [CovariateShift(0, salary_scale=10.0), PriorShift(0, default_rate=0.5)]
    with pytest.raises(ValueError, match="PriorShift could not reach its default_rate"):
        credit(100, rule=8, noise=0.0, changes=changes)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ConceptShift(-1, rule=2), r"ConceptShift.start must be an integer >= 0"),
        (lambda: ConceptShift(0, rule=2, width=1.5), r"ConceptShift.width must be an integer"),
        (lambda: ConceptShift(0, rule=12), "ConceptShift.rule must be an Agrawal rule"),
        (lambda: PriorShift(0, default_rate=1.2), r"PriorShift.default_rate must be in \[0, 1\]"),
        (lambda: CovariateShift(0, salary_scale=0), "salary_scale must be a finite number > 0"),
        (lambda: CovariateShift(0, age_range=(60, 40)), "age_range must be two integers"),
        (lambda: CovariateShift(0, device_mix={"watch": 1}), "unknown categories"),
        (lambda: CovariateShift(0, region_mix={"capital": -1}), "must be finite and >= 0"),
    ],
)
def test_bad_changes_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_changes_serialise_to_plain_dicts():
    shift = CovariateShift(5, width=2, age_range=(30, 40), device_mix={"mobile": 2})
    assert shift.to_dict() == {
        "kind": "covariate_shift",
        "start": 5,
        "width": 2,
        "salary_scale": 1.0,
        "loan_scale": 1.0,
        "age_range": [30, 40],
        "device_mix": {"mobile": 2.0},
        "region_mix": None,
        "name": None,
    }
    assert PriorShift(1, default_rate=0.2).to_dict()["kind"] == "prior_shift"
