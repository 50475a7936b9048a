"""profile(), Profile.merge and serialisation: counts, types and statistics against pandas,
numpy and scipy, and merged chunks against the profile of the concatenated frame."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from opsloop.data.profile import (
    ColumnProfile,
    Profile,
    merge_profiles,
    profile,
    profile_column,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def make_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 3.0, size=n)
    x[rng.random(n) < 0.1] = np.nan
    x[:3] = [np.inf, -np.inf, 0.0]
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(-50, 50, size=n),
            "colour": pd.Series(rng.choice(["red", "green", "blue"], size=n)).where(
                rng.random(n) > 0.05
            ),
            "note": [f"note {i} " + "w " * (i % 4) for i in range(n)],
            "flag": rng.random(n) < 0.3,
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), "s"),
        }
    )


def test_statistics_of_each_type_against_references():
    df = make_frame()
    p = profile(df)
    assert p.n_rows == len(df) and p.names == tuple(df.columns)
    assert [p[c].logical_type for c in p.names] == [
        "float", "int", "category", "string", "bool", "datetime",
    ]  # fmt: skip

    x = df["x"].to_numpy()
    finite = x[np.isfinite(x)]
    col = p["x"]
    assert (col.count, col.null_count) == (len(x), int(np.isnan(x).sum()))
    num = col.numeric
    assert (num.n_pos_inf, num.n_neg_inf, num.n_zero) == (1, 1, 1)
    assert (num.minimum, num.maximum) == (finite.min(), finite.max())
    assert num.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert num.variance() == pytest.approx(np.var(finite, ddof=1), rel=1e-9)
    assert num.skewness == pytest.approx(stats.skew(finite), rel=1e-9)
    assert num.kurtosis == pytest.approx(stats.kurtosis(finite), rel=1e-9)

    k = df["k"].to_numpy()
    assert p["k"].numeric.to_dict()["sum"] == int(k.sum())
    assert p["k"].numeric.minimum == int(k.min())

    colour = p["colour"]
    assert colour.null_count == int(df["colour"].isna().sum())
    assert dict(colour.frequencies.counts) == df["colour"].value_counts().to_dict()
    assert colour.to_dict()["distinct"] == 3

    note = p["note"].text
    lengths = df["note"].str.len().to_numpy()
    assert note.characters.mean == pytest.approx(lengths.mean(), rel=1e-12)
    assert note.words.maximum == 5 and note.words.minimum == 2
    assert p["note"].frequencies.distinct == len(df)

    assert p["flag"].true_count == int(df["flag"].sum())

    seconds = (df["when"] - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    when = p["when"]
    assert when.numeric.minimum == seconds.min() and when.numeric.maximum == seconds.max()
    assert when.numeric.mean == pytest.approx(seconds.mean(), rel=1e-12)
    assert when.to_dict()["min"] == df["when"].min().tz_localize("UTC").isoformat()


@st.composite
def frames(draw):
    n = draw(st.integers(0, 40))
    size = {"min_size": n, "max_size": n}
    floats = st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([np.nan, np.inf, -np.inf, 0.0]),
    )
    words = st.one_of(st.none(), st.sampled_from(["a", "b c", "dd", "  "]), st.text(max_size=6))
    return pd.DataFrame(
        {
            "f": np.array(draw(st.lists(floats, **size)), dtype=float),
            "i": np.array(draw(st.lists(st.integers(-(10**15), 10**15), **size)), dtype=np.int64),
            "s": pd.Series(draw(st.lists(words, **size)), dtype="str"),
            "b": pd.array(draw(st.lists(st.one_of(st.none(), st.booleans()), **size)), "boolean"),
        }
    )


def assert_merged_equals_whole(merged: Profile, whole: Profile) -> None:
    assert merged.n_rows == whole.n_rows and merged.names == whole.names
    for m, w in zip(merged, whole, strict=True):
        assert (m.logical_type, m.count, m.null_count, m.invalid_count, m.true_count) == (
            w.logical_type, w.count, w.null_count, w.invalid_count, w.true_count,
        )  # fmt: skip
        summaries = []
        if w.numeric is not None:
            summaries.append((m.numeric, w.numeric))
        if w.text is not None:
            assert dict(m.frequencies.counts) == dict(w.frequencies.counts)
            summaries += [(m.text.characters, w.text.characters), (m.text.words, w.text.words)]
        for a, b in summaries:
            assert (a.count, a.n_zero, a.n_pos_inf, a.n_neg_inf) == (
                b.count, b.n_zero, b.n_pos_inf, b.n_neg_inf,
            )  # fmt: skip
            assert (a.minimum, a.maximum, a.moments.total, a.mean) == (
                b.minimum, b.maximum, b.moments.total, b.mean,
            )  # fmt: skip
            scale = max(1.0, abs(b.minimum or 0), abs(b.maximum or 0))
            for k, (x, y) in enumerate(
                [(a.moments.m2, b.moments.m2), (a.moments.m3, b.moments.m3),
                 (a.moments.m4, b.moments.m4)], start=2,
            ):  # fmt: skip
                assert x == pytest.approx(y, rel=1e-9, abs=1e-9 * b.count * (2 * scale) ** k)
            # Few values: both sketches are exact, so quantiles agree exactly.
            ranks = [0.0, 0.25, 0.5, 0.75, 1.0]
            assert a.quantiles(ranks) == b.quantiles(ranks)


@settings(max_examples=50, deadline=None)
@given(frames(), st.integers(0, 40))
def test_merge_of_two_chunks_equals_profile_of_concat(df, cut):
    cut = min(cut, len(df))
    merged = profile(df.iloc[:cut]).merge(profile(df.iloc[cut:]))
    assert_merged_equals_whole(merged, profile(df))


@settings(max_examples=25, deadline=None)
@given(frames(), st.lists(st.integers(0, 40), max_size=4))
def test_chunked_profiles_merge_to_the_whole(df, cuts):
    bounds = sorted({0, len(df), *(min(c, len(df)) for c in cuts)})
    chunks = [df.iloc[lo:hi] for lo, hi in itertools.pairwise(bounds)] or [df]
    assert_merged_equals_whole(merge_profiles(profile(c) for c in chunks), profile(df))


def test_large_chunked_profile_within_sketch_bounds():
    df = make_frame(n=30_000, seed=5)
    whole = profile(df)
    merged = merge_profiles(profile(df.iloc[i : i + 7_000]) for i in range(0, len(df), 7_000))
    x = df["x"].to_numpy()
    finite = np.sort(x[np.isfinite(x)])
    m, w = merged["x"].numeric, whole["x"].numeric
    assert (m.count, m.minimum, m.maximum, m.moments.total) == (
        w.count, w.minimum, w.maximum, w.moments.total,
    )  # fmt: skip
    assert m.variance() == pytest.approx(w.variance(), rel=1e-9)
    eps = m.quantile_rank_error
    assert eps > 0
    for q in (0.05, 0.5, 0.95):
        v = m.quantile(q)
        rank_low = np.searchsorted(finite, v, side="left") / finite.size
        rank_high = np.searchsorted(finite, v, side="right") / finite.size
        assert rank_low - 2 * eps <= q <= rank_high + 2 * eps
    # Free text with more distinct values than max_exact_values: sketched, within bounds.
    note = merged["note"]
    assert not note.frequencies.is_exact
    low, high = note.frequencies.distinct_bounds(3)
    assert low <= len(df) <= high
    assert note.logical_type == whole["note"].logical_type == "string"


def test_serialisation_is_lossless_and_mergeable():
    df = make_frame(n=3_000, seed=7)
    a, b = profile(df.iloc[:1_000]), profile(df.iloc[1_000:])
    restored = Profile.from_bytes(a.to_bytes())
    assert restored.to_dict() == a.to_dict()
    assert json.loads(json.dumps(a.to_state())) == a.to_state()
    merged = restored.merge(Profile.from_bytes(b.to_bytes()))
    direct = a.merge(b)
    for name in ("x", "k", "colour", "flag"):
        assert merged[name].to_state()["count"] == direct[name].to_state()["count"]
    assert merged["x"].numeric.moments == direct["x"].numeric.moments
    assert dict(merged["colour"].frequencies.counts) == dict(direct["colour"].frequencies.counts)


def test_to_dict_is_json_and_to_frame_has_one_row_per_column():
    df = make_frame(n=200)
    p = profile(df)
    d = p.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["columns"]["colour"]["top_values"][0]["count"] == df["colour"].value_counts().max()
    frame = p.to_frame()
    assert frame.index.tolist() == list(df.columns)
    assert frame.loc["k", "mean"] == pytest.approx(df["k"].mean(), rel=1e-12)
    assert frame.loc["colour", "distinct"] == 3
    assert frame.loc["flag", "true_count"] == int(df["flag"].sum())
    assert frame.loc["when", "min"] == df["when"].min().tz_localize("UTC").isoformat()
    assert frame["null_count"].dtype == np.int64
    assert "<table" in p._repr_html_()


def test_empty_frame_and_frame_without_columns():
    empty = pd.DataFrame({"x": pd.Series([], dtype=float), "s": pd.Series([], dtype=object)})
    p = profile(empty)
    assert p.n_rows == 0 and p["x"].null_fraction is None
    d = p.to_dict()
    assert d["columns"]["x"]["numeric"]["mean"] is None
    assert d["columns"]["s"]["distinct"] == 0
    json.dumps(d, allow_nan=False)
    none = profile(pd.DataFrame(index=range(5)))
    assert (none.n_rows, len(none)) == (5, 0)
    assert none.merge(p).names == ("x", "s")


@pytest.mark.parametrize(
    ("values", "logical_type"),
    [
        (pd.Series([np.nan] * 4), "float"),
        (pd.Series([None] * 4, dtype=object), "string"),
        (pd.Series([pd.NA] * 4, dtype="Int64"), "int"),
        (pd.Series([pd.NaT] * 4, dtype="datetime64[ns]"), "datetime"),
        (pd.Series([pd.NA] * 4, dtype="boolean"), "bool"),
        (pd.Series([None] * 4, dtype="str"), "string"),
    ],
)
def test_all_null_columns(values, logical_type):
    col = profile_column(values, "c")
    assert (col.logical_type, col.count, col.null_count, col.valid_count) == (
        logical_type, 4, 4, 0,
    )  # fmt: skip
    d = col.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["null_fraction"] == 1.0


def test_constant_and_single_value_columns():
    constant = profile_column(pd.Series([2.5] * 6), "c").numeric
    assert (constant.variance(), constant.skewness, constant.kurtosis) == (0.0, None, None)
    assert constant.histogram(bins=2).edges == (2.0, 2.5, 3.0)
    single = profile_column(pd.Series([4]), "c").numeric
    assert (single.mean, single.variance(), single.std(), single.skewness) == (
        4.0,
        None,
        None,
        None,
    )


def test_merging_a_side_without_values_takes_the_other_type():
    numbers = profile(pd.DataFrame({"c": [1, 2, 3]}))
    nothing = profile(pd.DataFrame({"c": pd.Series([None, None], dtype=object)}))
    assert nothing["c"].logical_type == "string"
    for merged in (numbers.merge(nothing), nothing.merge(numbers)):
        assert merged["c"].logical_type == "int"
        assert (merged["c"].count, merged["c"].null_count, merged["c"].numeric.sum) == (5, 2, 6.0)


def test_text_type_is_decided_again_after_merge():
    few = profile(pd.DataFrame({"t": ["a", "b", "a", "b"]}))
    many = profile(pd.DataFrame({"t": [f"v{i}" for i in range(6)]}))
    assert (few["t"].logical_type, many["t"].logical_type) == ("category", "string")
    concat = pd.concat([pd.DataFrame({"t": ["a", "b", "a", "b"]})] * 5)
    assert few.merge(few).merge(few).merge(few).merge(few)["t"].logical_type == (
        profile(concat)["t"].logical_type
    )
    assert few.merge(many)["t"].logical_type == "string"  # 8 distinct of 10: text


def test_merging_incompatible_types_names_the_column():
    a = profile(pd.DataFrame({"c": [1.0, 2.0]}))
    b = profile(pd.DataFrame({"c": ["x", "y"]}))
    with pytest.raises(ValueError, match="column 'c' is float in one profile and category"):
        a.merge(b)


def test_missing_columns_count_as_nulls_like_concat():
    a = pd.DataFrame({"x": [1.0, 2.0], "y": ["u", "v"]})
    b = pd.DataFrame({"z": [True, False, True], "x": [3.0, np.nan, 5.0]})
    merged = profile(a).merge(profile(b))
    whole = profile(pd.concat([a, b]))
    assert merged.names == whole.names == ("x", "y", "z")
    for name in merged.names:
        assert (merged[name].count, merged[name].null_count) == (
            whole[name].count, whole[name].null_count,
        )  # fmt: skip
    assert merged["z"].true_count == 2 and merged["x"].numeric.sum == 11.0


def test_object_columns_count_invalid_values():
    col = profile_column(pd.Series([1, 2, "x", None, 4], dtype=object), "c")
    assert (col.logical_type, col.null_count, col.invalid_count) == ("int", 1, 1)
    assert col.numeric.sum == 7.0
    flags = profile_column(pd.Series([True, False, True, "no"], dtype=object), "b")
    assert (flags.true_count, flags.invalid_count) == (2, 1)
    stamps = pd.Series(
        [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02"), "nope"], dtype=object
    )
    when = profile_column(stamps, "w")
    assert (when.logical_type, when.invalid_count, when.numeric.count) == ("datetime", 1, 2)


def test_datetimes_with_time_zones_and_resolutions_agree():
    instants = ["2024-03-01 12:00:00.25", "2024-03-02 00:00:00", None]
    naive = pd.Series(pd.to_datetime(instants, format="ISO8601")).astype("datetime64[ns]")
    coarse = naive.astype("datetime64[ms]")
    aware = naive.dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
    profiles = [profile_column(s, "t").numeric for s in (naive, coarse, aware)]
    assert len({(p.minimum, p.maximum, p.moments.total) for p in profiles}) == 1
    assert profiles[0].minimum == pd.Timestamp("2024-03-01 12:00:00.25").timestamp()


def test_nullable_and_arrow_numeric_dtypes():
    ints = profile_column(pd.Series([1, None, 3], dtype="Int64"), "i")
    assert (ints.logical_type, ints.null_count, ints.numeric.minimum) == ("int", 1, 1)
    floats = profile_column(pd.Series([1.5, None, 2.5], dtype="float64[pyarrow]"), "f")
    assert (floats.null_count, floats.numeric.mean) == (1, 2.0)


def test_inputs_other_than_frames():
    assert profile(pd.Series([1, 2], name="s")).names == ("s",)
    assert profile(pd.Series([1, 2])).names == ("value",)
    assert profile(np.arange(3.0)).names == ("value",)
    assert profile(np.zeros((4, 2))).names == ("0", "1")
    assert profile(pd.DataFrame({0: [1], 1: [2]})).names == ("0", "1")


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="profile image batches with profile_images"):
        profile(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="DataFrame or Series or a numpy array"):
        profile([1, 2, 3])
    with pytest.raises(ValueError, match="unique as strings"):
        profile(pd.DataFrame([[1, 2]], columns=[1, "1"]))
    with pytest.raises(ValueError, match="max_exact_values must be an integer >= 100"):
        profile(pd.DataFrame({"a": [1]}), max_exact_values=10)
    with pytest.raises(ValueError, match="not a serialised profile"):
        Profile.from_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match="version must be 1"):
        Profile.from_state({"format": "opsloop.profile", "version": 99, "columns": []})
    with pytest.raises(ValueError, match="at least one profile"):
        merge_profiles([])
    with pytest.raises(KeyError, match="no column 'zz'"):
        profile(pd.DataFrame({"a": [1]}))["zz"]
    with pytest.raises(TypeError, match="pandas Series"):
        profile_column(np.arange(3), "a")
    with pytest.raises(ValueError, match="cannot merge column 'a' with column 'b'"):
        ColumnProfile("a", "int", 0, 0).merge(ColumnProfile("b", "int", 0, 0))


def test_options_reach_the_sketches():
    p = profile(pd.DataFrame({"x": np.arange(500.0), "t": [f"v{i}" for i in range(500)]}),
                quantile_k=16, max_exact_values=100)  # fmt: skip
    assert p["x"].numeric.sketch.k == 16
    # KLL's a priori bound for k=16 (DataSketches' table: about 15.5%).
    assert p["x"].numeric.quantile_rank_error == pytest.approx(0.155, abs=0.001)
    assert not p["t"].frequencies.is_exact


def test_profiles_with_different_options_merge_at_the_coarser_accuracy():
    def frame(prefix):
        return pd.DataFrame({"x": np.arange(1000.0), "t": [f"{prefix}{i}" for i in range(1000)]})

    fine = profile(frame("v"))
    coarse = profile(frame("w"), quantile_k=16, max_exact_values=100, distinct_lg_k=8)
    for merged in (fine.merge(coarse), coarse.merge(fine)):
        assert merged["x"].numeric.quantile_rank_error == coarse["x"].numeric.quantile_rank_error
        frequencies = merged["t"].frequencies
        assert (frequencies.max_exact_values, frequencies.distinct_lg_k) == (100, 8)
        low, high = frequencies.distinct_bounds(3)
        assert low <= 2000 <= high
