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

The serializer is registered when this module is imported in a process that has
``distributed``, and Dask's header names :class:`Shipped` by reference, so a process that
receives a shipped value imports this module, and registers it, before it looks the
serializer up: a worker started after the others, or restarted, reads what they ship.

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
    ``distributed.Client``); otherwise do nothing. Registering again does nothing. Importing
    this module calls it; a client that imports ``distributed`` later calls it again before
    computing.

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
    out of band (numpy arrays' data), uncopied. A value plain pickle cannot write, or would
    write as a reference to ``__main__`` (which is another module in the receiving process),
    is written by ``cloudpickle``, as Dask's own pickle serializer does: a class or
    function of the user's script or notebook, a lambda.

    >>> import numpy as np
    >>> header, frames = serialize_shipped(Shipped(np.zeros(4)))
    >>> header, [len(bytes(frame)) for frame in frames][1:]
    ({'buffers': 1}, [32])
    >>> header, frames = serialize_shipped(Shipped({"key": lambda row: row + 1}))
    >>> deserialize_shipped(header, frames).value["key"](1)
    2
    """
    buffers: list[pickle.PickleBuffer] = []
    try:
        head = pickle.dumps(shipped.value, protocol=5, buffer_callback=buffers.append)
    except Exception:  # any pickling failure: cloudpickle writes what pickle cannot
        head = b"__main__"
    if b"__main__" in head:
        import cloudpickle

        buffers.clear()
        head = cloudpickle.dumps(shipped.value, protocol=5, buffer_callback=buffers.append)
    return {"buffers": len(buffers)}, [head, *(buffer.raw() for buffer in buffers)]


#: Received frames smaller than this are copied before an array is built on them: a
#: connection reads a whole message into one buffer, and an array built on a slice of it
#: keeps all of it alive, so a small array kept from a result would otherwise hold the
#: memory of the large ones that came with it.
COPY_BELOW_BYTES = 64 * 2**10


def deserialize_shipped(header: dict, frames: list) -> Shipped:
    """The :class:`Shipped` result :func:`serialize_shipped` wrote. Arrays of
    :data:`COPY_BELOW_BYTES` or more are rebuilt on the received frames without a copy, so
    each of them keeps the whole received message alive while it lives; smaller ones are
    copied. A frame received read-only is copied, so that an array that was writable where
    it was made is writable here; one that was read-only there (a view of a pandas column
    under copy-on-write, say) comes back read-only, as an unpickled one does.

    >>> import numpy as np
    >>> readonly = np.ones(2)
    >>> readonly.flags.writeable = False
    >>> header, frames = serialize_shipped(Shipped([np.ones(2), readonly]))
    >>> value = deserialize_shipped(header, [bytes(frame) for frame in frames]).value
    >>> [array.tolist() for array in value], [array.flags.writeable for array in value]
    ([[1.0, 1.0], [1.0, 1.0]], [True, False])
    """
    head, *buffers = frames
    if len(buffers) != header["buffers"]:
        raise ValueError(f"expected {header['buffers']} buffers, got {len(buffers)}")
    own = [
        bytearray(buffer)
        if (view := memoryview(buffer)).readonly or view.nbytes < COPY_BELOW_BYTES
        else buffer
        for buffer in buffers
    ]
    return Shipped(pickle.loads(head, buffers=own))


def compute_options() -> dict[str, Any]:
    """Keyword arguments for ``dask.compute`` of shipped results: ``{"direct": True}``
    (gather from the workers, not through the scheduler) when Dask computes on a
    ``distributed.Client`` made on a ``LocalCluster`` of this process and the client was
    not told which route to take (``Client(direct_to_workers=...)``); else none. The
    scheduler's route receives every byte twice in a client that holds the scheduler and
    sends it once more. A client given a scheduler's address keeps the scheduler's route,
    even when the workers' addresses are on loopback: those can be another machine's,
    reached through a tunnel to its scheduler alone, and a direct gather would wait out a
    connection timeout at every computation.

    >>> import dask
    >>> with dask.config.set(scheduler="synchronous"):
    ...     compute_options()
    {}
    """
    if "distributed" not in sys.modules:
        return {}
    import dask.base
    from distributed import LocalCluster, default_client

    try:
        client = default_client()
    except ValueError:  # no client: Dask's local schedulers
        return {}
    if dask.base.get_scheduler() != client.get or client.direct_to_workers is not None:
        return {}  # not computing on this client, or its user chose the route
    if isinstance(client.cluster, LocalCluster):
        return {"direct": True}
    return {}


register_serialization()

__all__ = ["Shipped", "compute_options", "register_serialization", "ship", "unship"]
