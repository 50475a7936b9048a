"""Profiles, schemas and drift on a ``dask.dataframe``: data larger than one machine's memory.

Every operation is ``map(summarise a partition) -> reduce(merge)`` on Dask, with the same
mergeable summaries the pandas path uses, and returns the pandas path's result type:

========================  ==============================================================
call on a Dask frame      what is exact
========================  ==============================================================
``profile(ddf)``          counts, nulls, sums, extremes and exact value counts equal the
                          pandas profile; moments to float rounding (1e-12 relative);
                          quantiles, histograms and sketched counts within their sketches'
                          stated bounds (:mod:`opsloop.data.profile`)
``infer_schema(ddf)``     equal to ``infer_schema`` of the whole frame
``validate(ddf, schema)`` equal: counts, fractions, details; example positions are global
                          ``iloc`` positions; ``result.locate(position)`` gives its
                          ``(partition, row)``
``compare(ref, ddf)``,    exact mode: equal to the in-memory result (each partition's
``drift_report``          sorted values are merged for KS and Wasserstein; chi-square on
                          exact counts). Sketch mode: KS and Wasserstein from merged KLL
                          sketches, each with the interval holding the exact value (99%
                          confidence) and the p-values' intervals; chi-square exact. The
                          default (``mode="auto"``) is exact where the sorted values fit
                          in memory (:func:`.drift.choose_mode` states the rule); the
                          result states its mode and why
``reference_profile``     the ``ReferenceProfile`` of the frame, as in memory
(:mod:`.drift`)
``FeatureFunnel.fit``     the null, near-zero-variance, redundancy and relevance (F tests,
(:mod:`.selection`)       chi2) steps: the in-memory funnel's decisions, values to 1e-9
                          relative (near-zero variance exact up to 10,000 distinct values a
                          column, bounded beyond: :mod:`.variance`); the steps that need
                          the rows (mutual information, model importance) are refused
                          naming them; the default funnel runs its model step in
                          memory on the kept columns' rows when they fit here
========================  ==============================================================

``profile``, ``infer_schema`` and ``validate`` are the packages' own
(``opsloop.data.profile``, ``opsloop.data.schema``), which hand a Dask frame to the modules
here; ``compare`` and ``drift_report`` take a Dask frame on either side.

The operations run on whatever scheduler Dask is set to use: a ``distributed.Client``
created by the user (``Client("tcp://scheduler:8786")`` or ``Client(local_cluster())``: a
``LocalCluster`` whose workers keep freed memory for the next partition and skip Dask's
CPU-costly diagnostics, :func:`.frames.local_cluster`), or Dask's local schedulers. Dask is
imported only when a Dask frame is given or a cluster started (``pip install opsloop[dask]``):
``import opsloop`` does not import it.

Modules: :mod:`.frames` (recognising, reading and checking Dask frames, merging partition
results in a tree on the workers, connecting to a cluster), :mod:`.transfer` (partition
results sent to the caller with their arrays out of band), :mod:`.profile`, :mod:`.schema`,
:mod:`.drift`, :mod:`.selection`, :mod:`.variance`.

>>> import dask, pandas as pd, dask.dataframe as dd
>>> ddf = dd.from_pandas(pd.DataFrame({"x": [1.0, 2.0, None, 4.0]}), npartitions=2)
>>> from opsloop.data.profile import profile
>>> with dask.config.set(scheduler="synchronous"):
...     p = profile(ddf)
>>> p.n_rows, p["x"].null_count, p["x"].numeric.mean
(4, 1, 2.3333333333333335)
"""

from opsloop.data.distributed.frames import (
    ParquetSchemaError,
    PartitionDtypeError,
    dask_client,
    is_dask_frame,
    local_cluster,
    read_parquet_dask,
)

__all__ = [
    "ParquetSchemaError",
    "PartitionDtypeError",
    "dask_client",
    "is_dask_frame",
    "local_cluster",
    "read_parquet_dask",
]
