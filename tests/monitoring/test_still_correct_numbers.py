""" "Keep the data that is still correct" on numeric labels (a regression's): the median of
the nearest new labels, agreement within ``tolerance`` deviations of the new labels' own
noise (:mod:`opsloop.monitoring.still_correct`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.neighbors import NearestNeighbors

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.still_correct import noise_scale, still_correct

NEW = pd.DataFrame({"x": [0.0, 0.1, 0.2, 0.8, 0.9, 1.0], "y": [1.0, 1.2, 0.8, 5.0, 5.4, 4.6]})


def test_numeric_labels_agree_within_the_new_labels_noise_by_hand():
    # The 3 nearest other new rows of each new row and their median label:
    #   x=0.0: 0.1 0.2 0.8 -> 1.2 | 0.1: 0.0 0.2 0.8 -> 1.0 | 0.2: 0.1 0.0 0.8 -> 1.2
    #   x=0.8: 0.9 1.0 0.2 -> 4.6 | 0.9: 0.8 1.0 0.2 -> 4.6 | 1.0: 0.9 0.8 0.2 -> 5.0
    # residuals -0.2 0.2 -0.4 0.4 0.8 -0.4: median 0, MAD 0.4, s = 1.4826 * 0.4.
    scale = noise_scale(NEW, "y", neighbours=3)
    assert scale == pytest.approx(1.4826 * 0.4, abs=1e-12)
    # Older rows: x=0.05 (neighbours 0.0 0.1 0.2 -> median 1.0), x=0.95 (0.9 1.0 0.8 -> 5.0),
    # x=0.15 (0.1 0.2 0.0 -> 1.0); 3 s = 1.77912.
    older = pd.DataFrame({"x": [0.05, 0.95, 0.15, 0.15, 0.15], "y": [1.1, 3.3, 2.77, 2.78, -0.7]})
    # |1.1 - 1| = 0.1 kept; |3.3 - 5| = 1.7 kept; |2.77 - 1| = 1.77 kept; 1.78 goes;
    # |-0.7 - 1| = 1.7 kept.
    assert still_correct(older, NEW, "y", neighbours=3).tolist() == [True, True, True, False, True]
    # One deviation instead of three: 0.59304; only the first row is that close.
    assert still_correct(older, NEW, "y", neighbours=3, tolerance=1).tolist() == [
        True, False, False, False, False,
    ]  # fmt: skip
    # Noise-free new labels: only an equal label agrees, as for classes.
    flat = NEW.assign(y=[1.0, 1.0, 1.0, 5.0, 5.0, 5.0])
    assert noise_scale(flat, "y", neighbours=2) == 0.0
    same = pd.DataFrame({"x": [0.05, 0.05], "y": [1.0, 1.000001]})
    assert still_correct(same, flat, "y", neighbours=2).tolist() == [True, False]


def test_tolerance_is_checked_where_it_is_given():
    with pytest.raises(InvalidArgumentError, match="tolerance: a number >= 0, got nan"):
        still_correct(NEW, NEW, "y", tolerance=float("nan"))
    rule = "concept_drift > 0 -> retrain(train=m:f, window=keep_correct, tolerance=2.5)"
    assert Policy.parse(rule).option("tolerance") == 2.5
    with pytest.raises(InvalidArgumentError, match="retrain option tolerance: a number >= 0"):
        Policy.parse(rule.replace("2.5", "-1"))
    with pytest.raises(InvalidArgumentError, match="tolerance: only with window=keep_correct"):
        Policy.parse("concept_drift > 0 -> retrain(train=m:f, tolerance=2)")


def _reference_mask(older, recent, k, tolerance):
    """The rule computed with scikit-learn's exact nearest neighbours: every input is
    numeric, so HEOM is the Euclidean distance between inputs scaled by their range."""
    inputs = [c for c in recent.columns if c != "y"]
    both = pd.concat([older[inputs], recent[inputs]])
    span = (both.max() - both.min()).to_numpy()
    a, b = older[inputs].to_numpy() / span, recent[inputs].to_numpy() / span
    labels = recent["y"].to_numpy()
    search = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(b)
    own = search.kneighbors(b, return_distance=False)
    # Each row is its own nearest (no two rows of the data set are equal): leave it out.
    assert (own[:, 0] == np.arange(len(b))).all()
    residuals = labels - np.median(labels[own[:, 1:]], axis=1)
    scale = 1.4826 * np.median(np.abs(residuals - np.median(residuals)))
    said = np.median(labels[search.kneighbors(a, k, return_distance=False)], axis=1)
    return np.abs(older["y"].to_numpy() - said) <= tolerance * scale, scale


def test_keep_correct_on_the_diabetes_regression_drops_the_region_whose_target_moved():
    data = load_diabetes(as_frame=True)
    rows = data.frame.rename(columns={"target": "y"}).astype(float)
    order = np.random.default_rng(7).permutation(len(rows))
    older = rows.iloc[order[:221]].reset_index(drop=True)
    recent = rows.iloc[order[221:]].reset_index(drop=True)
    # The concept moves where the body mass index is high: there the new target is 300 more
    # (the target's standard deviation is 77).
    moved = recent["bmi"] > rows["bmi"].median()
    recent.loc[moved, "y"] += 300.0
    kept = still_correct(older, recent, "y", neighbours=5)
    expected, scale = _reference_mask(older, recent, 5, 3.0)
    # The noise the rule measured: 1.4826 MAD of the new rows' residuals, 65.2 here.
    assert scale == pytest.approx(65.2344, abs=1e-4)
    assert kept.tolist() == expected.tolist()
    in_region = (older["bmi"] > rows["bmi"].median()).to_numpy()
    # What the rule does with this data (measured: 28% kept where the target moved, 90%
    # elsewhere; 98% when nothing moved). Rows near the region's edge have neighbours on
    # both sides in the ten inputs, so some of the moved region survives.
    assert kept[in_region].mean() <= 0.3
    assert kept[~in_region].mean() >= 0.85
    unchanged = rows.iloc[order[221:]].reset_index(drop=True)
    assert still_correct(older, unchanged, "y", neighbours=5).mean() >= 0.95
