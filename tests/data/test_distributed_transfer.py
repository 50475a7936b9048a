"""Partition results reach the client with their arrays out of band, on a real cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

from opsloop.data.distributed.frames import map_partitions_checked  # noqa: E402
from opsloop.data.distributed.transfer import (  # noqa: E402
    Shipped,
    _is_loopback,
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
    # Every worker (and this client) has the serializer registered: arrays as frames of
    # their own, through Dask's family, not inside a pickle.
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


def test_local_schedulers_take_no_options():
    import dask

    with dask.config.set(scheduler="synchronous"):
        assert compute_options() == {}


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("tcp://127.0.0.1:8786", True),
        ("tcp://127.0.1.1:8786", True),
        ("tcp://[::1]:8786", True),
        ("tcp://localhost:8786", True),
        ("inproc://10.0.0.5/123/1", True),
        ("tcp://10.0.0.5:8786", False),
        ("tls://scheduler.example.com:8786", False),
        ("ucx://192.168.1.2:1234", False),
    ],
)
def test_loopback_addresses(address, loopback):
    assert _is_loopback(address) is loopback
