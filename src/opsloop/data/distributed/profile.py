"""``profile`` of a Dask frame: each partition profiled where it lives, the profiles merged.

Partition profiles merge left to right in partition order with
:meth:`~opsloop.data.profile.Profile.merge`, so the result is the pandas profile of the
whole frame: counts, nulls, sums, extremes and exact value counts equal; moments to float
rounding; quantiles, histograms and sketched frequencies within their sketches' bounds.

>>> import dask, pandas as pd, dask.dataframe as dd
>>> frame = pd.DataFrame({"x": [1, 2, 3, 4], "c": ["a", "b", "a", None]})
>>> with dask.config.set(scheduler="synchronous"):
...     p = profile_dask(dd.from_pandas(frame, npartitions=2))
>>> p["x"].numeric.sum, p["c"].null_count, p["c"].frequencies.top(1)[0].value
(10.0, 1, 'a')
"""

from __future__ import annotations

from opsloop.data.distributed.frames import map_partitions_checked
from opsloop.data.profile.options import SketchOptions
from opsloop.data.profile.table import Profile, merge_profiles, profile


def profile_dask(ddf, options: SketchOptions | None = None) -> Profile:
    """The :class:`~opsloop.data.profile.Profile` of every row of the Dask frame ``ddf``
    (see the module docstring); ``options`` size the sketches as in ``profile``.

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"x": [0.5, 1.5, 2.5]}), npartitions=3)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     profile_dask(ddf)["x"].numeric.maximum
    2.5
    """
    options = options or SketchOptions()
    parts = map_partitions_checked(ddf, _profile_partition, options)
    return merge_profiles(Profile.from_bytes(part) for part in parts)


def _profile_partition(partition, options: SketchOptions) -> bytes:
    # The sketches do not pickle; a profile's own lossless serialisation travels instead.
    return profile(
        partition,
        quantile_k=options.quantile_k,
        max_exact_values=options.max_exact_values,
        frequent_lg_size=options.frequent_lg_size,
        distinct_lg_k=options.distinct_lg_k,
    ).to_bytes()
