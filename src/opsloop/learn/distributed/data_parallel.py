"""Data-parallel training with DistributedDataParallel: every rank holds the model, sees a share.

Every rank draws the same permutation of the rows, splits each global batch of ``batch_size``
rows between ranks (rank ``r`` takes rows ``r, r + world_size, ...``) and scales its summed loss
by ``world_size / len(batch)``. DDP averages the gradients over ranks, so every step follows the
gradient of the mean loss of the whole global batch: the same step single-process training takes,
whatever the number of ranks (up to float rounding), even when a batch does not split evenly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opsloop.learn.distributed.launch import launched_by_torchrun, spawn
from opsloop.learn.torch_import import import_torch

LOSSES = ("cross_entropy", "mse")
OPTIMISERS = ("sgd", "adam")


@dataclass(frozen=True)
class DistributedFitResult:
    """Trained weights and the loss of every epoch, overall and as seen by each rank.

    ``losses[e]`` is the mean loss over all rows in epoch ``e`` (during training);
    ``rank_losses[r][e]`` the mean over the rows rank ``r`` saw.
    """

    world_size: int
    epochs: int
    losses: tuple[float, ...]
    rank_losses: tuple[tuple[float, ...], ...]
    state_dict: dict[str, np.ndarray] = field(repr=False)
    model: Any = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (weights left out)."""
        return {
            "world_size": self.world_size,
            "epochs": self.epochs,
            "losses": list(self.losses),
            "rank_losses": [list(r) for r in self.rank_losses],
            "parameters": int(sum(v.size for v in self.state_dict.values())),
        }


def _loss_sum(name: str, output: Any, target: Any) -> Any:
    functional = import_torch().nn.functional
    if name == "cross_entropy":
        return functional.cross_entropy(output, target, reduction="sum")
    return functional.mse_loss(output, target.reshape(output.shape), reduction="sum")


def _train(rank, world_size, model_fn, X, y, epochs, batch_size, lr, loss, optimiser, seed):
    torch = import_torch()
    dist = torch.distributed
    inputs = torch.as_tensor(X)
    targets = torch.as_tensor(y)
    model = model_fn()
    net = torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    step_class = torch.optim.SGD if optimiser == "sgd" else torch.optim.Adam
    step = step_class(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = len(inputs)
    sums = torch.zeros(world_size, epochs, dtype=torch.float64)
    counts = torch.zeros(world_size, epochs, dtype=torch.float64)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            mine = batch[rank::world_size]
            step.zero_grad()
            total = _loss_sum(loss, net(inputs[mine]), targets[mine])
            (total * (world_size / len(batch))).backward()
            step.step()
            sums[rank, epoch] += float(total.detach())
            counts[rank, epoch] += len(mine)
    if world_size > 1:
        # each rank filled only its own row; summing the tables shares them
        dist.all_reduce(sums)
        dist.all_reduce(counts)
    per_rank = sums / counts.clamp(min=1)
    overall = sums.sum(dim=0) / counts.sum(dim=0)
    return {
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "losses": overall.tolist(),
        "rank_losses": per_rank.tolist(),
    }


def _spawned(rank, world_size, *args):
    result = _train(rank, world_size, *args)
    return result if rank == 0 else None


def fit(
    model_fn: Callable[[], Any],
    dataset: tuple[np.ndarray, np.ndarray],
    epochs: int,
    *,
    batch_size: int = 32,
    lr: float = 0.05,
    loss: str = "cross_entropy",
    optimiser: str = "sgd",
    world_size: int = 1,
    backend: str = "gloo",
    seed: int = 0,
) -> DistributedFitResult:
    """Train ``model_fn()`` on ``dataset = (X, y)`` for ``epochs``, data-parallel over ranks.

    Under torchrun this process is one rank of the job (``world_size`` and ``backend`` come from
    the launcher and the call, e.g. ``nccl`` on GPUs) and every rank returns the result. Otherwise
    ``world_size`` local processes are spawned (gloo), or none when it is 1. ``batch_size`` is
    the global batch; ``model_fn`` must build the same initial model on every call and pickle
    (a module-level function or a ``functools.partial`` of one).

    >>> from functools import partial
    >>> from opsloop.learn.mlp import mlp
    >>> X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> result = fit(partial(mlp, [4, 8, 2]), (X, y), epochs=3)
    >>> len(result.losses), result.losses[-1] < result.losses[0]
    (3, True)
    """
    torch = import_torch()
    X = np.asarray(dataset[0], dtype=np.float32)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    if optimiser not in OPTIMISERS:
        raise ValueError(f"optimiser must be one of {list(OPTIMISERS)}, got {optimiser!r}")
    y = np.asarray(dataset[1], dtype=np.int64 if loss == "cross_entropy" else np.float32)
    if X.ndim < 2 or len(X) != len(y) or len(X) == 0:
        raise ValueError(
            f"dataset must be (X, y) with the same, non-zero number of rows, "
            f"got {X.shape} and {y.shape}"
        )
    for name, value in {
        "epochs": epochs,
        "batch_size": batch_size,
        "world_size": world_size,
    }.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    args = (model_fn, X, y, epochs, batch_size, lr, loss, optimiser, seed)
    if launched_by_torchrun():
        dist = torch.distributed
        created = not dist.is_initialized()
        if created:
            dist.init_process_group(backend, init_method="env://")
        try:
            raw = _train(dist.get_rank(), dist.get_world_size(), *args)
        finally:
            if created:
                dist.destroy_process_group()
    elif world_size == 1:
        raw = _train(0, 1, *args)
    else:
        raw = spawn(_spawned, world_size, args, backend=backend)
    model = model_fn()
    model.load_state_dict(raw["state_dict"])
    return DistributedFitResult(
        world_size=len(raw["rank_losses"]),
        epochs=int(epochs),
        losses=tuple(float(v) for v in raw["losses"]),
        rank_losses=tuple(tuple(float(v) for v in r) for r in raw["rank_losses"]),
        state_dict={k: v.numpy() for k, v in raw["state_dict"].items()},
        model=model,
    )
