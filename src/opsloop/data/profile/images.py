"""Profiles of image batches: brightness, contrast, shape and dtype per image.

Each image of an ``N×H×W`` (grey) or ``N×H×W×C`` (channels last) batch becomes one row:

* ``brightness``: the mean pixel intensity over all pixels and channels, in the batch's own
  units (0-255 for ``uint8``, whatever range a float batch uses);
* ``contrast``: the standard deviation of those intensities (``ddof=0``, as ``numpy.std``);
* ``height``, ``width``, ``channels`` (1 for ``N×H×W``) and ``dtype``.

The rows are profiled like any table, so the result is a
:class:`~opsloop.data.profile.table.Profile` that merges with the profiles of other batches:
its ``height``/``width``/``channels`` minima and maxima and its ``dtype`` value counts show
whether all batches had the shape and type a model expects. An image with a NaN pixel has
a null brightness and contrast.

>>> import numpy as np
>>> batch = np.zeros((2, 4, 4), dtype=np.uint8)
>>> batch[1] = 200
>>> p = profile_images(batch)
>>> p["brightness"].numeric.mean, p["contrast"].numeric.maximum
(100.0, 0.0)
>>> p["dtype"].frequencies.top(1)[0].value, p["height"].numeric.maximum
('uint8', 4)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsloop.data.profile.options import SketchOptions
from opsloop.data.profile.table import Profile, profile

# Images per block: bounds the float64 copy that numpy.std makes of a block.
_PIXELS_PER_BLOCK = 1 << 24


def image_statistics(batch: np.ndarray) -> pd.DataFrame:
    """One row per image: ``brightness``, ``contrast``, ``height``, ``width``, ``channels``,
    ``dtype`` (see the module docstring).

    >>> import numpy as np
    >>> image_statistics(np.array([[[0, 2], [4, 6]]], dtype=np.uint8))["contrast"].tolist()
    [2.23606797749979]
    """
    batch = _check_batch(batch)
    n, height, width = batch.shape[:3]
    channels = batch.shape[3] if batch.ndim == 4 else 1
    flat = batch.reshape(n, height * width * channels)
    brightness = np.empty(n)
    contrast = np.empty(n)
    step = max(1, _PIXELS_PER_BLOCK // max(1, flat.shape[1]))
    # Infinite pixels make a mean infinite and a deviation NaN; that is the data's answer.
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, n, step):
            block = flat[start : start + step]
            brightness[start : start + step] = block.mean(axis=1, dtype=np.float64)
            contrast[start : start + step] = block.std(axis=1, dtype=np.float64)
    return pd.DataFrame(
        {
            "brightness": brightness,
            "contrast": contrast,
            "height": np.full(n, height, dtype=np.int64),
            "width": np.full(n, width, dtype=np.int64),
            "channels": np.full(n, channels, dtype=np.int64),
            "dtype": pd.Categorical([str(batch.dtype)] * n),
        }
    )


def profile_images(
    batch: np.ndarray,
    *,
    quantile_k: int = SketchOptions.quantile_k,
    max_exact_values: int = SketchOptions.max_exact_values,
    frequent_lg_size: int = SketchOptions.frequent_lg_size,
    distinct_lg_k: int = SketchOptions.distinct_lg_k,
) -> Profile:
    """Profile a batch of images (``N×H×W`` or ``N×H×W×C``, numeric or boolean pixels).

    >>> import numpy as np
    >>> p = profile_images(np.ones((3, 8, 8, 3), dtype=np.float32))
    >>> p.n_rows, p["channels"].numeric.minimum, p["brightness"].numeric.mean
    (3, 3, 1.0)
    """
    return profile(
        image_statistics(batch),
        quantile_k=quantile_k,
        max_exact_values=max_exact_values,
        frequent_lg_size=frequent_lg_size,
        distinct_lg_k=distinct_lg_k,
    )


def _check_batch(batch: object) -> np.ndarray:
    if not isinstance(batch, np.ndarray):
        raise TypeError(f"batch must be a numpy array, got {type(batch).__name__}")
    if batch.ndim not in (3, 4):
        raise ValueError(
            f"batch must have shape N×H×W or N×H×W×C, got {batch.ndim} dimensions {batch.shape}"
        )
    if batch.dtype.kind not in "biuf":
        raise TypeError(f"batch pixels must be numeric or boolean, got dtype {batch.dtype}")
    if 0 in batch.shape[1:]:
        raise ValueError(f"batch images must have at least one pixel, got shape {batch.shape}")
    return batch
