"""TextSummary: character and word lengths against Python's len and str.split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsloop.data.profile.text import TextSummary

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

SAMPLES = [
    "",
    " ",
    "one",
    "two  words",
    " lead and trail ",
    "tab\tnew\nline",
    "naïve café",
    "nbsp\u00a0split",
    "em\u2003space",
    "日本語 テキスト",
    "one",
]


def check_lengths(summary: TextSummary, texts: list[str]) -> None:
    chars = np.array([len(t) for t in texts], dtype=float)
    words = np.array([len(t.split()) for t in texts], dtype=float)
    for got, expected in ((summary.characters, chars), (summary.words, words)):
        assert got.count == len(texts)
        if len(texts):
            assert got.sum == expected.sum()
            assert (got.minimum, got.maximum) == (expected.min(), expected.max())
            assert got.mean == pytest.approx(expected.mean(), rel=1e-12)
            assert (
                got.quantiles([0.0, 0.5, 1.0])
                == np.quantile(expected, [0.0, 0.5, 1.0], method="inverted_cdf").tolist()
            )
        if len(texts) > 1:
            assert got.variance() == pytest.approx(np.var(expected, ddof=1), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("dtype", ["str", object, "category"])
def test_lengths_and_counts_on_hand_made_text(dtype):
    s = TextSummary.of_values(pd.Series(SAMPLES, dtype=dtype))
    check_lengths(s, SAMPLES)
    assert s.frequencies.counts["one"] == 2
    assert s.frequencies.distinct == len(set(SAMPLES))
    assert s.categorical_dtype == (dtype == "category")


def test_hand_counted_lengths():
    s = TextSummary.of_values(pd.Series(["a bc", "  ", "héllo wörld x"]))
    # characters: 4, 2, 13; words: 2, 0, 3
    assert (s.characters.sum, s.characters.maximum) == (19.0, 13)
    assert (s.words.sum, s.words.minimum, s.words.maximum) == (5.0, 0, 3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=30), st.lists(st.text(max_size=12), max_size=30))
def test_merge_equals_whole_for_any_text(a, b):
    merged = TextSummary.of_values(pd.Series(a, dtype="str")).merge(
        TextSummary.of_values(pd.Series(b, dtype="str"))
    )
    check_lengths(merged, a + b)
    whole = TextSummary.of_values(pd.Series(a + b, dtype="str"))
    assert dict(merged.frequencies.counts) == dict(whole.frequencies.counts)


def test_unused_categories_are_not_counted():
    values = pd.Series(pd.Categorical(["x", "x"], categories=["x", "y", "z"]))
    s = TextSummary.of_values(values)
    assert dict(s.frequencies.counts) == {"x": 2}


def test_non_string_values_are_keyed_by_their_string_form():
    s = TextSummary.of_values(pd.Series([1, "1", 2.5], dtype=object))
    assert dict(s.frequencies.counts) == {"1": 2, "2.5": 1}


def test_empty_input():
    s = TextSummary.of_values(pd.Series([], dtype="str"))
    assert s.frequencies.distinct == 0 and s.characters.count == 0 and s.words.mean is None
