import numpy as np
import pandas as pd
import pytest

from opsloop.analysis.tags import MISSING_LABEL, as_tag_frame, encode_tag, tag_groupings


def test_categories_keep_sorted_labels_and_missing_slice():
    g = encode_tag(pd.Series(["tv", "pc", None, "tv"], name="device"), bins=5)
    assert g.tag == "device"
    assert g.labels.tolist() == ["pc", "tv", MISSING_LABEL]
    assert g.codes.tolist() == [1, 0, 2, 1]
    assert g.counts().tolist() == [1, 2, 1]


def test_numeric_tag_is_cut_into_quantile_bins_equal_to_pandas():
    values = pd.Series(np.arange(100.0), name="age")
    g = encode_tag(values, bins=4)
    expected = pd.qcut(values, 4)
    assert g.labels.tolist() == [str(c) for c in expected.cat.categories]
    assert g.counts().tolist() == [25, 25, 25, 25]


def test_few_distinct_numbers_stay_values():
    g = encode_tag(pd.Series([1, 2, 2, 1, 3], name="grade"), bins=5)
    assert g.labels.tolist() == ["1", "2", "3"]


def test_intersections_hold_only_present_pairs():
    frame = pd.DataFrame({"g": ["F", "F", "M", "M"], "d": ["pc", "tv", "tv", "tv"]})
    groupings = tag_groupings(frame, 4, intersections=[("g", "d")])
    joint = groupings[-1]
    assert joint.tag == "g × d"
    assert joint.labels.tolist() == ["F × pc", "F × tv", "M × tv"]
    assert joint.counts().tolist() == [1, 1, 2]


def test_bad_tags():
    with pytest.raises(ValueError, match="3 rows but the labels have 2"):
        as_tag_frame({"g": [1, 2, 3]}, 2)
    with pytest.raises(TypeError, match="tags must be a DataFrame"):
        as_tag_frame([1, 2], 2)
    with pytest.raises(ValueError, match="bins must be an integer >= 2"):
        tag_groupings({"g": [1, 2]}, 2, bins=1)
    with pytest.raises(ValueError, match="pairs of tag columns"):
        tag_groupings({"g": [1, 2]}, 2, intersections=[("g", "nope")])
    with pytest.raises(TypeError, match="'when' holds datetimes"):
        tag_groupings({"when": pd.to_datetime(["2024-01-01", "2024-01-02"])}, 2)


def test_categorical_codes_drop_unused_categories_and_keep_order():
    values = pd.Series(
        pd.Categorical(["tv", None, "pc", "tv"], categories=["tv", "radio", "pc"]), name="device"
    )
    g = encode_tag(values, bins=5)
    assert g.labels.tolist() == ["tv", "pc", MISSING_LABEL]
    assert g.codes.tolist() == [0, 2, 1, 0]
    strings = encode_tag(values.astype(object), bins=5)
    assert sorted(zip(strings.labels[strings.codes], g.labels[g.codes], strict=True)) == sorted(
        zip(g.labels[g.codes], g.labels[g.codes], strict=True)
    )
