"""Mergeable per-column statistics of a data set: the ``Profile``.

A profile holds, per column, the row count, null count and logical type, and then what the
type calls for: exact moments, extremes, zero and infinity counts and a KLL quantile sketch for
numbers and datetimes; true counts for booleans; value counts (exact while small, sketched
beyond), a distinct count and character/word length distributions for categories and text.
Image batches are profiled by per-image brightness, contrast, shape and dtype.

Profiles merge (``a.merge(b)`` equals the profile of both tables' rows: exactly for counts,
sums and extremes, to rounding for moments, within the stated bounds for sketches) and
serialise losslessly, so the same code profiles a chunk, a stream window or a partition.

Modules: :mod:`.exact_sum` (exact float sums), :mod:`.moments` (parallel moments),
:mod:`.numeric`, :mod:`.frequencies`, :mod:`.text` (per-type summaries), :mod:`.column`,
:mod:`.table` (``Profile``, ``profile``), :mod:`.images`, :mod:`.options` (sketch sizes).

>>> import pandas as pd
>>> p = profile(pd.DataFrame({"age": [31, 45, None], "city": ["Oslo", "Lima", "Oslo"]}))
>>> p.to_frame()[["type", "null_count", "mean", "distinct"]]
           type  null_count  mean distinct
column
age       float           1  38.0     None
city   category           0  None        2
"""

from opsloop.data.profile.column import ColumnProfile, profile_column
from opsloop.data.profile.exact_sum import ExactSum
from opsloop.data.profile.frequencies import Frequencies, ValueCount
from opsloop.data.profile.images import image_statistics, profile_images
from opsloop.data.profile.moments import Moments
from opsloop.data.profile.numeric import DEFAULT_QUANTILES, Histogram, NumericSummary
from opsloop.data.profile.options import SketchOptions
from opsloop.data.profile.table import Profile, merge_profiles
from opsloop.data.profile.table import profile as profile_frame
from opsloop.data.profile.text import TextSummary

__all__ = [
    "DEFAULT_QUANTILES",
    "ColumnProfile",
    "ExactSum",
    "Frequencies",
    "Histogram",
    "Moments",
    "NumericSummary",
    "Profile",
    "SketchOptions",
    "TextSummary",
    "ValueCount",
    "image_statistics",
    "merge_profiles",
    "profile",
    "profile_column",
    "profile_frame",
    "profile_images",
]


def profile(
    data,
    *,
    quantile_k: int = SketchOptions.quantile_k,
    max_exact_values: int = SketchOptions.max_exact_values,
    frequent_lg_size: int = SketchOptions.frequent_lg_size,
    distinct_lg_k: int = SketchOptions.distinct_lg_k,
) -> Profile:
    """Profile every column of ``data``: a pandas DataFrame, Series or numpy array
    (:func:`~opsloop.data.profile.table.profile`, here ``profile_frame``), or a
    ``dask.dataframe``, profiled partition by partition and the profiles merged
    (:func:`opsloop.data.distributed.profile.profile_dask`). The keyword arguments size the
    sketches (:class:`SketchOptions`).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0]})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     on_dask = profile(dd.from_pandas(frame, npartitions=2))
    >>> on_dask["x"].numeric.sum == profile(frame)["x"].numeric.sum == 7.0
    True
    """
    from opsloop.data.distributed.frames import is_dask_frame

    if is_dask_frame(data):
        from opsloop.data.distributed.profile import profile_dask

        options = SketchOptions(quantile_k, max_exact_values, frequent_lg_size, distinct_lg_k)
        return profile_dask(data, options)
    return profile_frame(
        data,
        quantile_k=quantile_k,
        max_exact_values=max_exact_values,
        frequent_lg_size=frequent_lg_size,
        distinct_lg_k=distinct_lg_k,
    )
