"""Partition results sent to the calling process with their arrays out of band.

A ``distributed`` scheduler speaks pickle protocol 4 with every peer (its common
denominator), so a result the client gathers through it, pickled by the worker, carries
every numpy array inside the pickle: the worker copies each array into the pickle's bytes
and the client copies it out again. The exact drift mode gathers every numeric value this
way (8 bytes a value), and those two copies were a large part of its cost in the workers'
``pickle.dumps`` and the client's ``pickle.loads``.

:func:`ship` wraps a task's result in :class:`Shipped`, for which Dask's own serializer
family (tried before pickle) is registered here: the value is pickled with protocol 5,
its arrays' buffers going as separate frames, whatever protocol the connection speaks.
The scheduler relays the frames without reading them; :func:`unship` takes the value back.
Without ``distributed`` (Dask's local schedulers) nothing is serialized and the wrapper is
all there is. :func:`compute_options` has a local cluster's results gathered straight from
its workers rather than relayed by the scheduler.

>>> import numpy as np
>>> shipped = ship({"x": np.arange(3.0)})
>>> header, frames = serialize_shipped(shipped)
>>> len(frames), unship(deserialize_shipped(header, frames))["x"].tolist()
(2, [0.0, 1.0, 2.0])
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shipped:
    """A task's result on its way to the calling process (see the module)."""

    value: Any


_registered = False


def register_serialization() -> None:
    """Register :class:`Shipped`'s serializer with ``distributed`` when it is imported in
    this process (every worker has it; a client has it once it uses a
    ``distributed.Client``); otherwise do nothing. Registering again does nothing.

    >>> register_serialization()
    """
    global _registered
    if _registered or "distributed" not in sys.modules:
        return
    from distributed.protocol import dask_deserialize, dask_serialize

    dask_serialize.register(Shipped)(serialize_shipped)
    dask_deserialize.register(Shipped)(deserialize_shipped)
    _registered = True


def ship(value: Any) -> Shipped:
    """``value`` wrapped to travel with its arrays out of band.

    >>> ship([1, 2]).value
    [1, 2]
    """
    register_serialization()
    return Shipped(value)


def unship(result: Any) -> Any:
    """The value of a :class:`Shipped` result; any other result as it is.

    >>> unship(ship(3)), unship(4)
    (3, 4)
    """
    return result.value if isinstance(result, Shipped) else result


def serialize_shipped(shipped: Shipped) -> tuple[dict, list]:
    """``(header, frames)``: the value pickled with protocol 5, then every buffer it hands
    out of band (numpy arrays' data), uncopied.

    >>> import numpy as np
    >>> header, frames = serialize_shipped(Shipped(np.zeros(4)))
    >>> header, [len(bytes(frame)) for frame in frames][1:]
    ({'buffers': 1}, [32])
    """
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(shipped.value, protocol=5, buffer_callback=buffers.append)
    return {"buffers": len(buffers)}, [head, *(buffer.raw() for buffer in buffers)]


def deserialize_shipped(header: dict, frames: list) -> Shipped:
    """The :class:`Shipped` result :func:`serialize_shipped` wrote. Arrays are rebuilt on
    the received frames; a read-only frame is copied first, so that every array comes back
    writable, as an unpickled one does.

    >>> import numpy as np
    >>> header, frames = serialize_shipped(Shipped(np.ones(2)))
    >>> value = deserialize_shipped(header, [bytes(frame) for frame in frames]).value
    >>> value.tolist(), value.flags.writeable
    ([1.0, 1.0], True)
    """
    head, *buffers = frames
    if len(buffers) != header["buffers"]:
        raise ValueError(f"expected {header['buffers']} buffers, got {len(buffers)}")
    writable = [
        buffer if not memoryview(buffer).readonly else bytearray(buffer) for buffer in buffers
    ]
    return Shipped(pickle.loads(head, buffers=writable))


def compute_options() -> dict[str, Any]:
    """Keyword arguments for ``dask.compute`` of shipped results: ``{"direct": True}``
    (gather from the workers, not through the scheduler) when Dask computes on a
    ``distributed.Client`` whose every worker listens on this machine's loopback
    interface, as a local cluster's do, and the client was not told which route to take
    (``Client(direct_to_workers=...)``); else none. The scheduler's route receives every
    byte twice in a client that holds the scheduler and sends it once more; a worker on
    another machine may not be reachable from the client, so the scheduler's route stays
    the default there.

    >>> import dask
    >>> with dask.config.set(scheduler="synchronous"):
    ...     compute_options()
    {}
    """
    if "distributed" not in sys.modules:
        return {}
    import dask.base
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:  # no client: Dask's local schedulers
        return {}
    if dask.base.get_scheduler() != client.get or client.direct_to_workers is not None:
        return {}  # not computing on this client, or its user chose the route
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if workers and all(_is_loopback(address) for address in workers):
        return {"direct": True}
    return {}


def _is_loopback(address: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    if address.startswith("inproc://"):
        return True
    host = urlsplit(address).hostname
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


__all__ = ["Shipped", "compute_options", "register_serialization", "ship", "unship"]
