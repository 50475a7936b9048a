"""Shared fixtures: real services the suite talks to."""

import os

import pytest


@pytest.fixture(scope="session")
def postgres_uri() -> str:
    """SQLAlchemy URI of a real PostgreSQL database (``.ci/postgres.sh`` starts one).

    Outside CI the tests that need it are skipped when no server is configured; in CI
    (``OPSLOOP_REQUIRE_POSTGRES=1``) a missing server is a failure, never a skip.
    """
    uri = os.environ.get("OPSLOOP_TEST_POSTGRES_URI")
    if not uri:
        if os.environ.get("OPSLOOP_REQUIRE_POSTGRES"):
            pytest.fail("OPSLOOP_TEST_POSTGRES_URI is not set but PostgreSQL is required")
        pytest.skip("no PostgreSQL server configured (set OPSLOOP_TEST_POSTGRES_URI)")
    return uri


@pytest.fixture(scope="session")
def dask_client():
    """A ``distributed.Client`` on a real LocalCluster (opsloop's ``local_cluster``): two
    single-threaded worker processes on loopback, started once and the default scheduler
    while it lives."""
    distributed = pytest.importorskip("distributed")
    from opsloop.data.distributed import local_cluster

    with (
        local_cluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
