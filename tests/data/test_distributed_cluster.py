"""The local cluster opsloop starts: its workers reuse freed array memory instead of asking
the kernel for fresh pages each time, and run without Dask's sampling profiler and with
fewer memory checks."""

from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")

from opsloop.data.distributed import dask_client, local_cluster  # noqa: E402

ARRAY_BYTES = 8 * 2**20
PAGE = 4096


def faults_of_repeated_allocations(times: int) -> int:
    """Minor page faults of this process while it fills and frees an 8 MiB array
    ``times`` times (after one untimed allocation)."""
    import resource

    import numpy as np

    np.ones(ARRAY_BYTES // 8).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        np.ones(ARRAY_BYTES // 8).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def profiler_enabled() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def memory_check_interval_ms(dask_worker) -> float:
    return dask_worker.periodic_callbacks["memory_monitor"].callback_time


def test_workers_reuse_freed_arrays_instead_of_faulting_in_fresh_pages():
    # Under Dask's default MALLOC_TRIM_THRESHOLD_=65536 every one of the 20 arrays is fresh
    # memory from the kernel, its pages faulted in again (10,320 faults here, numpy asking
    # for huge pages where it can; at most 41,000). Reused from the heap, the pages are
    # faulted in once, before the count starts (0 here).
    with (
        local_cluster(1, 1, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        (faults,) = client.run(faults_of_repeated_allocations, 20).values()
        (profiling,) = client.run(profiler_enabled).values()
        (checks_every,) = client.run(memory_check_interval_ms).values()
        nannies = {
            n.periodic_callbacks["memory_monitor"].callback_time for n in cluster.workers.values()
        }
    assert faults < ARRAY_BYTES // PAGE, faults
    assert profiling is False
    # Dask's default reads the worker's memory every 100 ms, in the worker and its nanny.
    assert checks_every == 500 and nannies == {500}


def test_dask_client_starts_that_cluster_when_given_no_address():
    import os

    with dask_client() as client:
        environment = client.run(os.environ.get, "MALLOC_MMAP_THRESHOLD_")
    assert set(environment.values()) == {str(32 * 2**20)}
