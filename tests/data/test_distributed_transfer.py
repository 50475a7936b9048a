"""Partition results reach the client with their arrays out of band, on a real cluster."""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

from opsloop.data.distributed.frames import (  # noqa: E402
    _merge_in_order,
    local_cluster,
    map_partitions_checked,
)
from opsloop.data.distributed.transfer import (  # noqa: E402
    COPY_BELOW_BYTES,
    Shipped,
    compute_options,
    deserialize_shipped,
    serialize_shipped,
    ship,
    unship,
)


def sorted_values(partition: pd.DataFrame) -> dict:
    return {"x": np.sort(partition["x"].to_numpy()), "n": len(partition)}


def shipped_serialization() -> tuple[str, int]:
    """How ``distributed`` serializes a shipped array in this process: (family, frames)."""
    from distributed.protocol import serialize

    header, frames = serialize(Shipped(np.arange(1000.0)), serializers=["dask", "pickle"])
    return header["serializer"], len(frames)


def test_round_trip_is_bit_for_bit_with_every_array_out_of_band():
    base = np.array([3.0, -0.0, 0.0, np.nan, np.inf, -1.5, 2.0**-1074] * 1000)
    value = {"view": base[7:5007], "ints": np.arange(2000, dtype=np.int64), "text": "a"}
    header, frames = serialize_shipped(Shipped(value))
    assert header == {"buffers": 2}
    assert [memoryview(frame).nbytes for frame in frames[1:]] == [5000 * 8, 2000 * 8]
    assert memoryview(frames[0]).nbytes < 1000  # the arrays are not inside the pickle
    # Frames received read-only are copied, so the arrays come back writable.
    back = deserialize_shipped(header, [bytes(frame) for frame in frames]).value
    assert back["view"].tobytes() == base[7:5007].tobytes()
    assert back["ints"].tolist() == list(range(2000))
    assert back["text"] == "a"
    assert back["view"].flags.writeable and back["ints"].flags.writeable
    with pytest.raises(ValueError, match="expected 2 buffers, got 1"):
        deserialize_shipped(header, frames[:2])


def test_unship_leaves_other_results_alone():
    assert unship(ship([1.0])) == [1.0]
    assert unship((1, 2)) == (1, 2)


def test_workers_ship_results_out_of_band_and_the_client_gets_the_values(dask_client):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=40_000)})
    ddf = dd.from_pandas(frame, npartitions=4)
    parts = map_partitions_checked(ddf, sorted_values)
    values = frame["x"].to_numpy()
    expected = [np.sort(values[start : start + 10_000]) for start in range(0, 40_000, 10_000)]
    assert [part["n"] for part in parts] == [10_000] * 4
    for part, values in zip(parts, expected, strict=True):
        assert part["x"].tobytes() == values.tobytes()
        assert part["x"].flags.writeable
    # Every worker (and this client) has the serializer registered, whichever partitions it
    # ran (importing the module registers it): arrays as frames of their own, through Dask's
    # family, not inside a pickle.
    assert set(dask_client.run(shipped_serialization).values()) == {("dask", 2)}
    assert shipped_serialization() == ("dask", 2)


@pytest.mark.parametrize("direct", [False, True])
def test_both_routes_to_the_client_give_the_same_array(dask_client, direct):
    values = np.random.default_rng(9).normal(size=300_000)
    future = dask_client.submit(ship, values, pure=False)
    back = unship(dask_client.gather(future, direct=direct))
    assert back.tobytes() == values.tobytes()
    assert back.flags.writeable


def test_a_local_cluster_is_gathered_directly_unless_the_client_says_otherwise(dask_client):
    assert compute_options() == {"direct": True}
    dask_client.direct_to_workers = False
    try:
        assert compute_options() == {}
    finally:
        dask_client.direct_to_workers = None


def test_a_client_given_an_address_gathers_through_the_scheduler(dask_client):
    # Workers on loopback behind an address may be another machine's (a tunnel to its
    # scheduler): only a cluster object of this process is known to be local.
    address = dask_client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    with distributed.Client(address) as client:
        assert client.cluster is None
        assert compute_options() == {}
        frame = pd.DataFrame({"x": np.arange(20_000.0)[::-1]})
        parts = map_partitions_checked(dd.from_pandas(frame, npartitions=2), sorted_values)
    assert [part["x"].tolist() for part in parts] == [
        list(np.arange(10_000.0, 20_000.0)),
        list(np.arange(10_000.0)),
    ]
    assert compute_options() == {"direct": True}  # the fixture's client is the default again


def test_a_worker_that_never_shipped_reads_what_another_worker_shipped():
    # A worker started (or restarted) after the others receives shipped inputs before it
    # has run any task of ours: the type's import must register the serializer there.
    with (
        local_cluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        first, second = sorted(client.scheduler_info(n_workers=-1)["workers"])
        left = client.submit(ship, np.arange(1000.0), workers=[first], pure=False)
        right = client.submit(ship, np.ones(1000), workers=[first], pure=False)
        merged = client.submit(
            _merge_in_order, operator.add, left, right, workers=[second], pure=False
        )
        # Unregistered, the fetch fails and is retried without end: bounded here.
        back = unship(merged.result(timeout=60))
        assert client.who_has(merged)[merged.key] == (second,)
    assert back.tolist() == list(np.arange(1000.0) + 1.0)


def local_class_result(partition: pd.DataFrame):
    class Summary:  # pickle writes no class it cannot import by name
        def __init__(self, n: int) -> None:
            self.n = n

    return Summary(len(partition))


def lambda_result(partition: pd.DataFrame) -> dict:
    offset = len(partition)
    return {"n": len(partition), "key": lambda row: row + offset}


def object_column(partition: pd.DataFrame):
    return partition["s"].to_numpy()


def test_results_only_cloudpickle_writes_reach_the_client(dask_client):
    ddf = dd.from_pandas(pd.DataFrame({"x": np.arange(8.0), "s": list("abcdefgh")}), 2)
    assert [part.n for part in map_partitions_checked(ddf, local_class_result)] == [4, 4]
    keyed = map_partitions_checked(ddf, lambda_result)
    assert [(part["n"], part["key"](10)) for part in keyed] == [(4, 14), (4, 14)]
    objects = map_partitions_checked(ddf, object_column)
    assert [part.tolist() for part in objects] == [list("abcd"), list("efgh")]


def column_values(partition: pd.DataFrame) -> dict:
    copied = partition["x"].to_numpy(copy=True)
    readonly = copied.copy()
    readonly.flags.writeable = False
    return {"copied": copied, "readonly": readonly}


def test_arrays_keep_their_writability_across_the_cluster(dask_client):
    ddf = dd.from_pandas(pd.DataFrame({"x": np.arange(40_000.0)}), npartitions=2)
    parts = map_partitions_checked(ddf, column_values)
    assert [part["copied"].flags.writeable for part in parts] == [True, True]
    assert [part["readonly"].flags.writeable for part in parts] == [False, False]
    assert parts[1]["readonly"].tolist() == list(np.arange(20_000.0, 40_000.0))


def test_small_arrays_are_copied_out_of_the_received_message():
    small, large = np.arange(16.0), np.arange(COPY_BELOW_BYTES // 8, dtype=np.float64)
    header, frames = serialize_shipped(Shipped([small, large]))
    # As a connection receives them: every frame a slice of one writable buffer.
    message = bytearray(b"".join(bytes(frame) for frame in frames))
    view, received, start = memoryview(message), [], 0
    for frame in frames:
        received.append(view[start : start + memoryview(frame).nbytes])
        start += memoryview(frame).nbytes
    back_small, back_large = deserialize_shipped(header, received).value
    whole = np.frombuffer(message, dtype=np.uint8)
    assert not np.shares_memory(back_small, whole)
    assert np.shares_memory(back_large, whole)
    assert back_small.tolist() == small.tolist() and back_large.tolist() == large.tolist()


def test_local_schedulers_take_no_options():
    import dask

    with dask.config.set(scheduler="synchronous"):
        assert compute_options() == {}
