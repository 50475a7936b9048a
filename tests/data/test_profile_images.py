"""profile_images: per-image brightness and contrast against numpy, shapes, dtypes, merging."""

from __future__ import annotations

import numpy as np
import pytest

from opsloop.data.profile import image_statistics, profile_images

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def test_brightness_and_contrast_of_hand_made_images():
    batch = np.array(
        [
            [[0, 0], [0, 0]],  # black: brightness 0, contrast 0
            [[0, 255], [255, 0]],  # checkerboard: mean 127.5, std 127.5
            [[10, 20], [30, 40]],  # mean 25, std sqrt(125)
        ],
        dtype=np.uint8,
    )
    rows = image_statistics(batch)
    assert rows["brightness"].tolist() == [0.0, 127.5, 25.0]
    assert rows["contrast"].tolist() == pytest.approx([0.0, 127.5, np.sqrt(125.0)], rel=1e-15)
    p = profile_images(batch)
    assert p["brightness"].numeric.mean == pytest.approx((0 + 127.5 + 25) / 3, rel=1e-15)
    assert p["contrast"].numeric.maximum == 127.5


def test_colour_batch_against_numpy_per_image():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, size=(12, 9, 7, 3), dtype=np.uint8)
    rows = image_statistics(batch)
    expected_brightness = [float(image.mean()) for image in batch]
    expected_contrast = [float(image.std()) for image in batch]
    assert rows["brightness"].to_numpy() == pytest.approx(expected_brightness, rel=1e-12)
    assert rows["contrast"].to_numpy() == pytest.approx(expected_contrast, rel=1e-12)
    p = profile_images(batch)
    assert p.n_rows == 12
    assert p["brightness"].numeric.variance() == pytest.approx(
        np.var(expected_brightness, ddof=1), rel=1e-9
    )
    assert (p["height"].numeric.minimum, p["width"].numeric.maximum) == (9, 7)
    assert p["channels"].numeric.minimum == 3
    assert dict(p["dtype"].frequencies.counts) == {"uint8": 12}


def test_float_images_with_nan_and_inf_pixels():
    batch = np.full((3, 2, 2), 0.5)
    batch[1, 0, 0] = np.nan
    batch[2, 0, 0] = np.inf
    p = profile_images(batch)
    assert p["brightness"].null_count == 1
    assert p["brightness"].numeric.n_pos_inf == 1
    assert p["contrast"].null_count == 2  # NaN pixel, and inf - inf in the deviation


def test_merging_batches_of_different_shapes_shows_in_the_profile():
    small = profile_images(np.zeros((2, 4, 4), dtype=np.uint8))
    large = profile_images(np.ones((3, 8, 6, 3), dtype=np.float32))
    merged = small.merge(large)
    assert merged.n_rows == 5
    assert (merged["height"].numeric.minimum, merged["height"].numeric.maximum) == (4, 8)
    assert (merged["channels"].numeric.minimum, merged["channels"].numeric.maximum) == (1, 3)
    assert dict(merged["dtype"].frequencies.counts) == {"uint8": 2, "float32": 3}
    assert merged["brightness"].numeric.mean == pytest.approx(3 / 5, rel=1e-15)


def test_large_batch_is_processed_in_blocks_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(1)
    batch = rng.random((10, 5, 5))
    whole = image_statistics(batch)
    monkeypatch.setattr("opsloop.data.profile.images._PIXELS_PER_BLOCK", 60)
    blocked = image_statistics(batch)
    assert blocked.equals(whole)


def test_empty_batch_and_bad_batches():
    empty = profile_images(np.zeros((0, 4, 4)))
    assert empty.n_rows == 0 and empty["brightness"].numeric.mean is None
    with pytest.raises(ValueError, match="N×H×W or N×H×W×C"):
        profile_images(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="numeric or boolean"):
        profile_images(np.zeros((1, 2, 2), dtype=object))
    with pytest.raises(ValueError, match="at least one pixel"):
        profile_images(np.zeros((1, 0, 2)))
    with pytest.raises(TypeError, match="numpy array"):
        profile_images([[[0]]])
