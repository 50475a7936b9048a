"""Data-parallel training with DistributedDataParallel: every rank holds the model, sees a share.

Every rank draws the same permutation of the rows, splits each global batch of ``batch_size``
rows between ranks (rank ``r`` takes rows ``r, r + world_size, ...``) and scales its summed loss
by ``world_size / len(batch)``. DDP averages the gradients over ranks, so every step follows the
gradient of the mean loss of the whole global batch: the same step single-process training takes,
whatever the number of ranks (up to float rounding), even when a batch does not split evenly.

Given a run, :func:`fit` logs one history per rank (``rank{r}/loss``, ``rank{r}/samples``,
``rank{r}/epoch_time_s``) and the overall ``loss``, ``samples`` and ``epoch_time_s`` (the slowest
rank's) at step ``epoch``. At the end of every epoch the ranks gather their numbers on rank 0;
rank 0 alone writes to the run (live, under torchrun or with one process), or, when the ranks
were spawned here, the calling process writes the numbers rank 0 brought back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opsloop.learn.distributed.launch import close_process_group, launched_by_torchrun, spawn
from opsloop.learn.run_log import RunLog, checked_run, log_json, log_metrics, log_state_dict
from opsloop.learn.torch_import import import_torch

LOSSES = ("cross_entropy", "mse")
OPTIMISERS = ("sgd", "adam")


@dataclass(frozen=True)
class DistributedFitResult:
    """Trained weights and the loss of every epoch, overall and as seen by each rank.

    ``losses[e]`` is the mean loss over all rows in epoch ``e`` (during training);
    ``rank_losses[r][e]`` the mean over the rows rank ``r`` saw, ``rank_samples[r][e]`` how many
    rows that was and ``rank_epoch_seconds[r][e]`` how long rank ``r`` took for the epoch.
    """

    world_size: int
    epochs: int
    losses: tuple[float, ...]
    rank_losses: tuple[tuple[float, ...], ...]
    rank_samples: tuple[tuple[int, ...], ...]
    rank_epoch_seconds: tuple[tuple[float, ...], ...]
    state_dict: dict[str, np.ndarray] = field(repr=False)
    model: Any = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (weights left out)."""
        return {
            "world_size": self.world_size,
            "epochs": self.epochs,
            "losses": list(self.losses),
            "rank_losses": [list(r) for r in self.rank_losses],
            "rank_samples": [list(r) for r in self.rank_samples],
            "rank_epoch_seconds": [list(r) for r in self.rank_epoch_seconds],
            "parameters": int(sum(v.size for v in self.state_dict.values())),
        }


def summed_loss(name: str, output: Any, target: Any) -> Any:
    """The loss ``name`` (one of :data:`LOSSES`) summed over the rows of a batch.

    >>> import torch
    >>> float(summed_loss("mse", torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])))
    5.0
    """
    functional = import_torch().nn.functional
    if name == "cross_entropy":
        return functional.cross_entropy(output, target, reduction="sum")
    return functional.mse_loss(output, target.reshape(output.shape), reduction="sum")


def _rank_device(torch: Any, device: str, rank: int) -> Any:
    """The device rank ``rank`` trains on: its own GPU (by local rank under torchrun) or CPU."""
    if device == "cpu":
        return torch.device("cpu")
    index = int(os.environ.get("LOCAL_RANK", rank))
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _train(
    rank,
    world_size,
    model_fn,
    X,
    y,
    epochs,
    batch_size,
    lr,
    loss,
    optimiser,
    seed,
    device="cpu",
    on_epoch=None,
):
    torch = import_torch()
    dist = torch.distributed
    where = _rank_device(torch, device, rank)
    inputs = torch.as_tensor(X).to(where)
    targets = torch.as_tensor(y).to(where)
    model = model_fn().to(where)
    if world_size > 1:
        ids = None if where.type == "cpu" else [where.index]
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    else:
        net = model
    step_class = torch.optim.SGD if optimiser == "sgd" else torch.optim.Adam
    step = step_class(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = len(inputs)
    # table[e][r] = (summed loss, rows seen, seconds) of rank r in epoch e; rank 0 fills it
    table: list[list[tuple[float, int, float]]] = []
    net.train()
    for epoch in range(epochs):
        started = time.perf_counter()
        loss_sum, seen = 0.0, 0
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            mine = batch[rank::world_size].to(where)
            step.zero_grad()
            total = summed_loss(loss, net(inputs[mine]), targets[mine])
            (total * (world_size / len(batch))).backward()
            step.step()
            loss_sum += float(total.detach())
            seen += len(mine)
        record = (loss_sum, seen, time.perf_counter() - started)
        if world_size > 1:
            gathered = [None] * world_size if rank == 0 else None
            dist.gather_object(record, gathered, dst=0)
        else:
            gathered = [record]
        if rank == 0:
            table.append(gathered)
            if on_epoch is not None:
                on_epoch(epoch, _epoch_numbers(gathered))
    if world_size > 1:
        # every rank answers under torchrun, so the table rank 0 gathered goes to all
        shared = [table]
        dist.broadcast_object_list(shared, src=0)
        table = shared[0]
    per_epoch = [_epoch_numbers(row) for row in table]
    return {
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "losses": [e["loss"] for e in per_epoch],
        "rank_losses": [[e["rank_losses"][r] for e in per_epoch] for r in range(world_size)],
        "rank_samples": [[e["rank_samples"][r] for e in per_epoch] for r in range(world_size)],
        "rank_seconds": [[e["rank_seconds"][r] for e in per_epoch] for r in range(world_size)],
    }


def _epoch_numbers(records: list[tuple[float, int, float]]) -> dict[str, Any]:
    """Per-rank and overall numbers of one epoch from each rank's (loss sum, rows, seconds)."""
    return {
        "loss": sum(r[0] for r in records) / max(sum(r[1] for r in records), 1),
        "rank_losses": [r[0] / max(r[1], 1) for r in records],
        "rank_samples": [int(r[1]) for r in records],
        "rank_seconds": [float(r[2]) for r in records],
    }


def _log_epoch(run: RunLog, epoch: int, numbers: dict[str, Any]) -> None:
    metrics: dict[str, float] = {
        "loss": numbers["loss"],
        "samples": sum(numbers["rank_samples"]),
        # the ranks wait for each other at every step, so the slowest sets the pace
        "epoch_time_s": max(numbers["rank_seconds"]),
    }
    for rank, (value, seen, seconds) in enumerate(
        zip(numbers["rank_losses"], numbers["rank_samples"], numbers["rank_seconds"], strict=True)
    ):
        metrics[f"rank{rank}/loss"] = value
        metrics[f"rank{rank}/samples"] = seen
        metrics[f"rank{rank}/epoch_time_s"] = seconds
    log_metrics(run, metrics, step=epoch)


def _device_and_backend(
    torch: Any, device: str | None, backend: str | None, world_size: int
) -> tuple[str, str]:
    """Resolve the defaults: a GPU when torch sees one, NCCL on GPUs, gloo on the CPU.

    >>> import torch
    >>> _device_and_backend(torch, "cpu", None, 2)
    ('cpu', 'gloo')
    >>> _device_and_backend(torch, "cpu", "nccl", 2)
    Traceback (most recent call last):
    ...
    ValueError: backend 'nccl' needs device='cuda'; on the CPU use backend='gloo'
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no GPU; use device='cpu'")
        if not launched_by_torchrun() and world_size > torch.cuda.device_count():
            raise ValueError(
                f"world_size {world_size} needs one GPU per process, "
                f"torch sees {torch.cuda.device_count()}"
            )
    if backend is None:
        backend = "nccl" if device == "cuda" else "gloo"
    if backend == "nccl" and device != "cuda":
        raise ValueError("backend 'nccl' needs device='cuda'; on the CPU use backend='gloo'")
    return device, backend


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
    backend: str | None = None,
    device: str | None = None,
    seed: int = 0,
    run: RunLog | None = None,
) -> DistributedFitResult:
    """Train ``model_fn()`` on ``dataset = (X, y)`` for ``epochs``, data-parallel over ranks.

    Under torchrun this process is one rank of the job (``world_size`` comes from the launcher)
    and every rank returns the result. Otherwise ``world_size`` local processes are spawned, or
    none when it is 1. ``device`` is ``"cuda"`` (each rank on its own GPU: the local rank's
    under torchrun, the rank's when spawned here) or ``"cpu"``; by default a GPU when torch
    sees one. ``backend`` defaults to NCCL on GPUs and gloo on the CPU. ``batch_size`` is
    the global batch; ``model_fn`` must build the same initial model on every call and pickle
    (a module-level function or a ``functools.partial`` of one).

    ``run`` (a run from ``opsloop.start_run``, see :class:`~opsloop.learn.run_log.RunLog`)
    receives the hyperparameters, the per-rank and overall metrics of every epoch, the summary
    ``distributed_fit.json`` and the weights ``model.pt``. Under torchrun only rank 0 writes to
    it, so every rank may be given the same run, or only rank 0 one.

    >>> from functools import partial
    >>> from opsloop.learn.mlp import mlp
    >>> from opsloop.learn.run_log import InMemoryRun
    >>> X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> run = InMemoryRun()
    >>> result = fit(partial(mlp, [4, 8, 2]), (X, y), epochs=3, run=run)
    >>> len(result.losses), result.losses[-1] < result.losses[0]
    (3, True)
    >>> [value for _, value in run.metrics["rank0/samples"]]
    [64.0, 64.0, 64.0]
    """
    torch = import_torch()
    run = checked_run(run)
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
    device, backend = _device_and_backend(torch, device, backend, world_size)
    args = (model_fn, X, y, epochs, batch_size, lr, loss, optimiser, seed, device)
    params = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "loss": loss,
        "optimiser": optimiser,
        "backend": backend,
        "device": device,
        "seed": seed,
        "n_rows": len(X),
        "n_features": int(np.prod(X.shape[1:])),
    }
    if launched_by_torchrun():
        dist = torch.distributed
        created = not dist.is_initialized()
        if created:
            dist.init_process_group(backend, init_method="env://")
        try:
            rank, size = dist.get_rank(), dist.get_world_size()
            logger = run if rank == 0 else None
            if logger is not None:
                logger.log_params({**params, "world_size": size, "launcher": "torchrun"})
            on_epoch = None if logger is None else (lambda e, n: _log_epoch(logger, e, n))
            raw = _train(rank, size, *args, on_epoch)
        finally:
            if created:
                close_process_group()
    elif world_size == 1:
        logger = run
        if logger is not None:
            logger.log_params({**params, "world_size": 1, "launcher": "none"})
        on_epoch = None if logger is None else (lambda e, n: _log_epoch(logger, e, n))
        raw = _train(0, 1, *args, on_epoch)
    else:
        logger = run
        if logger is not None:
            logger.log_params({**params, "world_size": world_size, "launcher": "spawn"})
        raw = spawn(_spawned, world_size, args, backend=backend)
        if logger is not None:
            for epoch in range(epochs):
                _log_epoch(
                    logger,
                    epoch,
                    {
                        "loss": raw["losses"][epoch],
                        "rank_losses": [r[epoch] for r in raw["rank_losses"]],
                        "rank_samples": [r[epoch] for r in raw["rank_samples"]],
                        "rank_seconds": [r[epoch] for r in raw["rank_seconds"]],
                    },
                )
    model = model_fn()
    model.load_state_dict(raw["state_dict"])
    result = DistributedFitResult(
        world_size=len(raw["rank_losses"]),
        epochs=int(epochs),
        losses=tuple(float(v) for v in raw["losses"]),
        rank_losses=tuple(tuple(float(v) for v in r) for r in raw["rank_losses"]),
        rank_samples=tuple(tuple(int(v) for v in r) for r in raw["rank_samples"]),
        rank_epoch_seconds=tuple(tuple(float(v) for v in r) for r in raw["rank_seconds"]),
        state_dict={k: v.numpy() for k, v in raw["state_dict"].items()},
        model=model,
    )
    if logger is not None:
        log_json(logger, result.to_dict(), "distributed_fit.json")
        log_state_dict(logger, model, "model.pt")
    return result
