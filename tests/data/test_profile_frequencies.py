"""Frequencies: exact counts against collections.Counter, sketched counts within their bounds."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsloop.data.profile.frequencies import Frequencies

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def frequencies_of(values: list[str], **options) -> Frequencies:
    counter = Counter(values)
    return Frequencies.of_counts(list(counter), np.array(list(counter.values())), **options)


words = st.lists(st.sampled_from(["a", "b", "c", "dd", "é", " "]), max_size=40)


@settings(max_examples=50, deadline=None)
@given(words, words)
def test_exact_merge_equals_counter_of_both(a, b):
    merged = frequencies_of(a).merge(frequencies_of(b))
    expected = Counter(a + b)
    assert merged.is_exact
    assert dict(merged.counts) == dict(expected)
    assert merged.distinct == len(expected)
    assert merged.total == len(a) + len(b)
    top = merged.top(3)
    ranked = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:3]
    assert [(v.value, v.count) for v in top] == ranked


def make_stream(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    # Three heavy values over a long tail of 3,000 rare ones.
    heavy = ["h1"] * 3000 + ["h2"] * 2000 + ["h3"] * 1000
    tail = [f"t{i}" for i in rng.integers(0, 3000, size=6000)]
    return heavy + tail


def test_sketch_mode_bounds_hold_and_heavy_values_are_found():
    values = make_stream(0)
    truth = Counter(values)
    f = frequencies_of(values, max_exact_values=100, frequent_lg_size=6)
    assert not f.is_exact
    assert f.total == len(values)
    assert f.max_count_error == int(np.ceil(3.5 / 2**6 * len(values)))
    top = f.top(10)
    assert [v.value for v in top[:3]] == ["h1", "h2", "h3"]
    for v in top:
        assert v.lower <= truth[v.value] <= v.upper
        assert v.lower <= v.count <= v.upper
    # Listed only when certainly frequent: no tail value can pass that test.
    assert all(v.value.startswith("h") for v in top)


def test_sketched_distinct_count_within_bounds():
    values = make_stream(1)
    true_distinct = len(set(values))
    f = frequencies_of(values, max_exact_values=100)
    low, high = f.distinct_bounds(3)
    assert low <= true_distinct <= high
    assert abs(f.distinct - true_distinct) <= 0.05 * true_distinct


def test_exact_inputs_switch_to_sketches_when_union_exceeds_limit():
    a = frequencies_of([f"a{i}" for i in range(80)] * 2, max_exact_values=100)
    b = frequencies_of([f"b{i}" for i in range(80)] + ["a0"] * 50, max_exact_values=100)
    assert a.is_exact and b.is_exact
    merged = a.merge(b)
    assert not merged.is_exact
    assert merged.total == 160 + 130
    low, high = merged.distinct_bounds(3)
    assert low <= 160 <= high
    top = merged.top(1)[0]
    assert (top.value, top.lower <= 52 <= top.upper) == ("a0", True)


def test_sketch_and_exact_merge_both_ways():
    big = frequencies_of(make_stream(2), max_exact_values=100)
    small = frequencies_of(["h1"] * 500)
    for merged in (big.merge(small), small.merge(big)):
        top = merged.top(1)[0]
        assert top.value == "h1" and top.lower <= 3500 <= top.upper


def test_state_round_trip_in_both_modes():
    for f in (
        frequencies_of(["x", "y", "x"]),
        frequencies_of(make_stream(3), max_exact_values=100),
    ):
        again = Frequencies.from_state(json.loads(json.dumps(f.to_state())))
        assert again.is_exact == f.is_exact
        assert again.distinct == f.distinct
        assert again.top(5) == f.top(5)


def test_empty_and_bad_arguments():
    empty = Frequencies.of_counts([], np.array([], dtype=np.int64))
    assert (empty.distinct, empty.total, empty.top()) == (0, 0, [])
    with pytest.raises(ValueError, match="differ in length"):
        Frequencies.of_counts(["a"], np.array([1, 2]))
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        empty.top(-1)
    with pytest.raises(ValueError, match="num_std_devs"):
        empty.distinct_bounds(5)
