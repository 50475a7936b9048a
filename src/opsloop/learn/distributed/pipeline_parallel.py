"""Model parallelism: a ``torch.nn.Sequential`` cut into stages, one per process, fed micro-batches.

Stage ``r`` runs layers ``bounds[r]:bounds[r + 1]`` and passes its activations to stage ``r + 1``
with point-to-point sends over torch.distributed. Sends are asynchronous, so while stage 1 works
on micro-batch ``k`` stage 0 already computes ``k + 1`` (the forward schedule of GPipe, Huang et
al., 2019). Each process builds the model and drops the layers of other stages.

Only the forward pass (inference) is pipelined here; training through the stages is not built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from opsloop.learn.distributed.launch import spawn
from opsloop.learn.torch_import import import_torch

_HEADER = 8  # ndim followed by up to 7 sizes: enough for any activation passed between stages


def _send(tensor: Any, destination: int) -> list[Any]:
    torch = import_torch()
    if tensor.ndim >= _HEADER:
        raise ValueError(f"activations may have at most {_HEADER - 1} dimensions")
    header = torch.zeros(_HEADER, dtype=torch.int64)
    header[0] = tensor.ndim
    header[1 : 1 + tensor.ndim] = torch.tensor(tensor.shape)
    dist = torch.distributed
    return [dist.isend(header, destination), dist.isend(tensor.contiguous(), destination)]


def _receive(source: int) -> Any:
    torch = import_torch()
    dist = torch.distributed
    header = torch.zeros(_HEADER, dtype=torch.int64)
    dist.recv(header, source)
    shape = header[1 : 1 + int(header[0])].tolist()
    tensor = torch.empty(shape, dtype=torch.float32)
    dist.recv(tensor, source)
    return tensor


def _stage(rank, world_size, model_fn, bounds, X, micro_batches):
    torch = import_torch()
    layers = list(model_fn().children())
    stage = torch.nn.Sequential(*layers[bounds[rank] : bounds[rank + 1]]).eval()
    del layers
    chunks = np.array_split(np.arange(len(X)), micro_batches)
    pending, outputs = [], []
    with torch.no_grad():
        for chunk in chunks:
            if rank == 0:
                activation = torch.as_tensor(X[chunk])
            else:
                activation = _receive(rank - 1)
            out = stage(activation).float()
            if rank < world_size - 1:
                pending.extend(_send(out, rank + 1))
            else:
                outputs.append(out)
    for request in pending:
        request.wait()
    return torch.cat(outputs) if rank == world_size - 1 else None


def pipeline_forward(
    model_fn: Callable[[], Any],
    inputs: np.ndarray,
    *,
    split_at: Sequence[int],
    micro_batches: int = 4,
) -> np.ndarray:
    """Outputs of ``model_fn()`` on ``inputs``, its layers run as stages in separate processes.

    ``split_at`` lists the layer positions where a new stage starts (``[2]``: layers 0-1 on one
    process, the rest on a second); ``inputs`` are cut into ``micro_batches`` pieces that flow
    through the stages one after another. ``model_fn`` must return a ``torch.nn.Sequential`` and
    pickle (a module-level function or a ``functools.partial`` of one).

    Starting the stage processes takes seconds, so the example shows only the check of a cut
    (``mlp([4, 8, 2])`` has three layers, so stages can start at layer 1 or 2); a real call is
    ``pipeline_forward(partial(mlp, [4, 8, 2]), X, split_at=[2])``.

    >>> from functools import partial
    >>> from opsloop.learn.mlp import mlp
    >>> pipeline_forward(partial(mlp, [4, 8, 2]), np.ones((6, 4)), split_at=[3])
    Traceback (most recent call last):
    ...
    ValueError: split_at must be increasing layer positions within 1..2, got [3]
    """
    X = np.asarray(inputs, dtype=np.float32)
    n_layers = len(list(model_fn().children()))
    cuts = [int(c) for c in split_at]
    if not cuts or cuts != sorted(set(cuts)) or cuts[0] < 1 or cuts[-1] >= n_layers:
        raise ValueError(
            f"split_at must be increasing layer positions within 1..{n_layers - 1}, got {cuts}"
        )
    if not 1 <= micro_batches <= max(len(X), 1):
        raise ValueError(f"micro_batches must be within 1..{len(X)}, got {micro_batches!r}")
    bounds = [0, *cuts, n_layers]
    world_size = len(bounds) - 1
    # the last stage holds the outputs; rank 0 is the one whose answer spawn returns
    result = spawn(_last_stage_answers, world_size, (model_fn, bounds, X, micro_batches))
    return result.numpy()


def _last_stage_answers(rank, world_size, model_fn, bounds, X, micro_batches):
    out = _stage(rank, world_size, model_fn, bounds, X, micro_batches)
    if rank == world_size - 1:
        for request in _send(out, 0):
            request.wait()
        return None
    return _receive(world_size - 1) if rank == 0 else None
