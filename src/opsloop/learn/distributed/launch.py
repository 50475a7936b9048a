"""Starting the processes of a torch.distributed job: under torchrun, or spawned here.

Under ``torchrun`` (``RANK`` and ``WORLD_SIZE`` in the environment) the current process is one
rank and joins the group with ``env://``; otherwise :func:`spawn` starts ``world_size`` local
processes that meet on a free TCP port of 127.0.0.1, and rank 0 hands its result back through a
file (the ``spawn`` start method cannot return values).
"""

from __future__ import annotations

import gc
import os
import socket
import tempfile
from collections.abc import Callable
from typing import Any

from opsloop.learn.torch_import import import_torch


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of a job started by torchrun.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"RANK": "1", "WORLD_SIZE": "2"}):
    ...     launched_by_torchrun()
    True
    >>> with mock.patch.dict(os.environ, {"RANK": "1"}):
    ...     _ = os.environ.pop("WORLD_SIZE", None)
    ...     launched_by_torchrun()
    False
    """
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def close_process_group() -> None:
    """Destroy the default process group, freeing what still holds it first.

    A DDP module sits in reference cycles that hold the process group's work objects; left to
    the interpreter's shutdown, freeing them aborts the process ("terminate called without an
    active exception"), so they are collected here, while the interpreter is alive.

    >>> close_process_group()  # no group: nothing to do
    """
    torch = import_torch()
    gc.collect()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    gc.collect()


def _entry(rank, world_size, init_method, backend, worker, args, out_path):
    torch = import_torch()
    torch.set_num_threads(1)
    dist = torch.distributed
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    try:
        result = worker(rank, world_size, *args)
        if result is not None:
            torch.save(result, out_path)
        # No rank tears down its connections while another still uses them.
        dist.barrier()
    finally:
        close_process_group()


def spawn(
    worker: Callable[..., Any], world_size: int, args: tuple = (), *, backend: str = "gloo"
) -> Any:
    """Run ``worker(rank, world_size, *args)`` in ``world_size`` new processes; return rank 0's.

    ``worker`` must be importable by name (a module-level function) and return ``None`` on every
    rank but the one whose answer is wanted; that answer may hold tensors, numbers, strings,
    lists and dicts (it is read back with ``torch.load(weights_only=True)``).

    >>> spawn(print, 0)
    Traceback (most recent call last):
    ValueError: world_size must be at least 1, got 0
    """
    torch = import_torch()
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size!r}")
    with tempfile.TemporaryDirectory() as folder:
        out_path = os.path.join(folder, "result.pt")
        init_method = f"tcp://127.0.0.1:{_free_port()}"
        torch.multiprocessing.start_processes(
            _entry,
            args=(world_size, init_method, backend, worker, args, out_path),
            nprocs=world_size,
            join=True,
            start_method="spawn",
        )
        return torch.load(out_path, weights_only=True)
