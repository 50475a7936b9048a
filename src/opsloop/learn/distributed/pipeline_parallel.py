"""Model parallelism: a model cut into stages, one process each, fed micro-batches (GPipe).

A model is given as a list of stage builders, callables that each return one stage (a
``torch.nn.Module``); the process of stage ``r`` calls only ``stages[r]``, so while it runs no
stage holds more than its own part of the model (the trained weights of all stages come back to
the caller at the end). Where building the whole model is cheap, a callable returning a
``torch.nn.Sequential`` and the layer positions where stages start (``split_at``) will do: each
process then builds the model and keeps its slice.

Stage ``r`` passes its activations to stage ``r + 1`` with point-to-point sends over
torch.distributed. Sends are asynchronous, so while stage 1 works on micro-batch ``k`` stage 0
already computes ``k + 1``. Training follows the GPipe schedule (Huang et al., 2019): for each
global batch, every micro-batch goes forward through all stages, then backward in reverse
order, each stage sending the gradient with respect to its input back to the stage before it.
Every stage accumulates its parameters' gradients over the micro-batches and takes one
optimiser step per global batch. As each micro-batch's loss is its summed loss divided by the
global batch size, the accumulated gradient is that of the mean loss over the global batch:
the step single-process training takes (up to float rounding).

Stages run on the CPU over gloo, in processes spawned here or, for :func:`pipeline_fit`, as
the ranks of a torchrun job (one stage per rank, on one machine or several).
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opsloop.learn.distributed.data_parallel import LOSSES, OPTIMISERS, summed_loss
from opsloop.learn.distributed.launch import close_process_group, launched_by_torchrun, spawn
from opsloop.learn.run_log import RunLog, checked_run, log_json, log_metrics
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


def sequential_slice(model_fn: Callable[[], Any], start: int, stop: int) -> Any:
    """Layers ``start:stop`` of the ``torch.nn.Sequential`` that ``model_fn()`` builds.

    >>> from functools import partial
    >>> from opsloop.learn.mlp import mlp
    >>> sequential_slice(partial(mlp, [4, 8, 2]), 1, 3)
    Sequential(
      (0): ReLU()
      (1): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    torch = import_torch()
    layers = list(model_fn().children())
    return torch.nn.Sequential(*layers[start:stop])


def stage_builders(
    model: Callable[[], Any] | Sequence[Callable[[], Any]], split_at: Sequence[int] | None = None
) -> list[Callable[[], Any]]:
    """One builder per stage: ``model`` itself when it is a list of builders, else slices.

    With ``split_at`` (the layer positions where a new stage starts), ``model`` is one callable
    returning a ``torch.nn.Sequential``; it is built once here to count its layers.

    >>> from functools import partial
    >>> from opsloop.learn.mlp import mlp
    >>> [b() for b in stage_builders(partial(mlp, [4, 8, 2]), split_at=[2])][1]
    Sequential(
      (0): Linear(in_features=8, out_features=2, bias=True)
    )
    >>> stage_builders(partial(mlp, [4, 8, 2]))
    Traceback (most recent call last):
    ...
    ValueError: split_at is required when model is one callable; or pass a list of stage builders
    """
    if isinstance(model, Sequence) and not isinstance(model, str):
        if split_at is not None:
            raise ValueError("split_at applies to one model callable, not to a list of stages")
        builders = list(model)
        if len(builders) < 2 or not all(callable(b) for b in builders):
            raise ValueError(
                f"stages must be a list of at least two callables, got {len(builders)} items"
            )
        return builders
    if not callable(model):
        raise TypeError(
            f"model must be a callable or a list of stage builders, got {type(model).__name__}"
        )
    if split_at is None:
        raise ValueError(
            "split_at is required when model is one callable; or pass a list of stage builders"
        )
    n_layers = len(list(model().children()))
    cuts = [int(c) for c in split_at]
    if not cuts or cuts != sorted(set(cuts)) or cuts[0] < 1 or cuts[-1] >= n_layers:
        raise ValueError(
            f"split_at must be increasing layer positions within 1..{n_layers - 1}, got {cuts}"
        )
    bounds = [0, *cuts, n_layers]
    return [
        functools.partial(sequential_slice, model, start, stop)
        for start, stop in itertools.pairwise(bounds)
    ]


def _forward_stage(rank, world_size, builders, X, micro_batches):
    torch = import_torch()
    stage = builders[rank]().eval()
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


def _last_stage_answers(rank, world_size, builders, X, micro_batches):
    out = _forward_stage(rank, world_size, builders, X, micro_batches)
    if rank == world_size - 1:
        for request in _send(out, 0):
            request.wait()
        return None
    return _receive(world_size - 1) if rank == 0 else None


def _check_micro_batches(micro_batches: int, limit: int, limit_name: str) -> None:
    if isinstance(micro_batches, bool) or not isinstance(micro_batches, int):
        raise ValueError(f"micro_batches must be an integer, got {micro_batches!r}")
    if not 1 <= micro_batches <= max(limit, 1):
        raise ValueError(
            f"micro_batches must be within 1..{limit} ({limit_name}), got {micro_batches!r}"
        )


def pipeline_forward(
    model: Callable[[], Any] | Sequence[Callable[[], Any]],
    inputs: np.ndarray,
    *,
    split_at: Sequence[int] | None = None,
    micro_batches: int = 4,
) -> np.ndarray:
    """Outputs of the staged model on ``inputs``, each stage run in its own process.

    ``model`` is a list of stage builders (stage ``r``'s process calls only ``model[r]``), or
    one callable returning a ``torch.nn.Sequential`` cut at ``split_at`` (``[2]``: layers 0-1
    on one process, the rest on a second). ``inputs`` are cut into ``micro_batches`` pieces that
    flow through the stages one after another. The callables must pickle (module-level
    functions or ``functools.partial`` of them).

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
    builders = stage_builders(model, split_at)
    _check_micro_batches(micro_batches, len(X), "the number of rows")
    # the last stage holds the outputs; rank 0 is the one whose answer spawn returns
    result = spawn(_last_stage_answers, len(builders), (builders, X, micro_batches))
    return result.numpy()


@dataclass(frozen=True)
class PipelineFitResult:
    """The trained weights of every stage and the loss of every step and epoch.

    ``step_losses[k]`` is the mean loss over the global batch of step ``k`` (before its update),
    ``losses[e]`` the mean over all rows in epoch ``e``; ``stage_state_dicts[r]`` holds the
    weights of stage ``r`` (load them into ``stages[r]()`` with :meth:`load_stage`).
    """

    stages: int
    epochs: int
    batch_size: int
    micro_batches: int
    step_losses: tuple[float, ...]
    losses: tuple[float, ...]
    stage_state_dicts: tuple[dict[str, np.ndarray], ...] = field(repr=False)

    def load_stage(self, stage: int, module: Any) -> Any:
        """Load the trained weights of ``stage`` into ``module`` (a fresh stage) and return it."""
        torch = import_torch()
        weights = {k: torch.as_tensor(v) for k, v in self.stage_state_dicts[stage].items()}
        module.load_state_dict(weights)
        return module

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (weights left out)."""
        return {
            "stages": self.stages,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "micro_batches": self.micro_batches,
            "step_losses": list(self.step_losses),
            "losses": list(self.losses),
            "stage_parameters": [
                int(sum(v.size for v in weights.values())) for weights in self.stage_state_dicts
            ],
        }


def _train_stage(
    rank, world_size, builders, X, y, epochs, batch_size, micro_batches, lr, loss, optimiser, seed
):
    torch = import_torch()
    dist = torch.distributed
    first, last = rank == 0, rank == world_size - 1
    stage = builders[rank]().train()
    step_class = torch.optim.SGD if optimiser == "sgd" else torch.optim.Adam
    parameters = [p for p in stage.parameters() if p.requires_grad]
    step = step_class(parameters, lr=lr) if parameters else None
    inputs = torch.as_tensor(X) if first else None
    targets = torch.as_tensor(y) if last else None
    # every stage draws the same order, so all agree on the batches and micro-batches
    generator = torch.Generator().manual_seed(seed)
    n = len(X)
    step_losses: list[float] = []
    epoch_losses: list[float] = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        epoch_sum = 0.0
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            chunks = torch.tensor_split(batch, min(micro_batches, len(batch)))
            if step is not None:
                step.zero_grad()
            kept, pending = [], []
            batch_sum = 0.0
            for chunk in chunks:  # forward: fill the pipeline
                received = inputs[chunk] if first else _receive(rank - 1).requires_grad_()
                out = stage(received)
                if last:
                    total = summed_loss(loss, out, targets[chunk])
                    batch_sum += float(total.detach())
                    out = total / len(batch)
                else:
                    pending.extend(_send(out.detach().float(), rank + 1))
                kept.append((received, out))
            for request in pending:
                request.wait()
            pending = []
            for received, out in reversed(kept):  # backward: drain it in reverse
                if last:
                    out.backward()
                else:
                    gradient = torch.empty(out.shape, dtype=torch.float32)
                    dist.recv(gradient, rank + 1)
                    if out.requires_grad:
                        out.backward(gradient.to(out.dtype))
                if not first:
                    grad = received.grad
                    if grad is None:
                        grad = torch.zeros_like(received)
                    pending.append(dist.isend(grad.contiguous(), rank - 1))
            kept = []
            for request in pending:
                request.wait()
            if step is not None:
                step.step()
            if last:
                step_losses.append(batch_sum / len(batch))
                epoch_sum += batch_sum
        if last:
            epoch_losses.append(epoch_sum / n)
    mine = {
        "state_dict": {k: v.detach().clone() for k, v in stage.state_dict().items()},
        "step_losses": step_losses,
        "losses": epoch_losses,
    }
    gathered = [None] * world_size if first else None
    dist.gather_object(mine, gathered, dst=0)
    if not first:
        return None
    return {
        "state_dicts": [g["state_dict"] for g in gathered],
        "step_losses": gathered[-1]["step_losses"],
        "losses": gathered[-1]["losses"],
    }


def pipeline_fit(
    model: Callable[[], Any] | Sequence[Callable[[], Any]],
    dataset: tuple[np.ndarray, np.ndarray],
    epochs: int,
    *,
    split_at: Sequence[int] | None = None,
    batch_size: int = 32,
    micro_batches: int = 4,
    lr: float = 0.05,
    loss: str = "cross_entropy",
    optimiser: str = "sgd",
    seed: int = 0,
    run: RunLog | None = None,
) -> PipelineFitResult:
    """Train a model split into stages, one process per stage, on ``dataset = (X, y)``.

    ``model`` is a list of stage builders (stage ``r``'s process calls only ``model[r]``), or
    one callable returning a ``torch.nn.Sequential`` cut at ``split_at``; the callables must
    pickle. Each epoch draws a permutation of the rows from ``seed`` and walks it in global
    batches of ``batch_size`` rows, each cut into ``micro_batches`` pieces (fewer when a batch
    has fewer rows) and run through the GPipe schedule, then one ``optimiser`` step per stage.

    Under torchrun this process is one stage of the job (rank ``r`` runs stage ``r``; the job
    must have one rank per stage) and every rank returns the result; otherwise one local
    process per stage is spawned.

    ``run`` (see :class:`~opsloop.learn.run_log.RunLog`) receives the hyperparameters,
    ``batch_loss`` at every step, ``loss`` at every epoch and ``pipeline_fit.json``; under
    torchrun only rank 0 writes to it.

    Starting the stage processes takes seconds, so the example shows a check; a real call is
    ``pipeline_fit(partial(mlp, [4, 8, 2]), (X, y), epochs=3, split_at=[2])``.

    >>> from functools import partial
    >>> from opsloop.learn.mlp import mlp
    >>> X, y = np.ones((8, 4)), np.zeros(8, int)
    >>> pipeline_fit(partial(mlp, [4, 8, 2]), (X, y), 1, split_at=[2], batch_size=4,
    ...              micro_batches=5)
    Traceback (most recent call last):
    ...
    ValueError: micro_batches must be within 1..4 (batch_size), got 5
    """
    run = checked_run(run)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    if optimiser not in OPTIMISERS:
        raise ValueError(f"optimiser must be one of {list(OPTIMISERS)}, got {optimiser!r}")
    X = np.asarray(dataset[0], dtype=np.float32)
    y = np.asarray(dataset[1], dtype=np.int64 if loss == "cross_entropy" else np.float32)
    if X.ndim < 2 or len(X) != len(y) or len(X) == 0:
        raise ValueError(
            f"dataset must be (X, y) with the same, non-zero number of rows, "
            f"got {X.shape} and {y.shape}"
        )
    for name, value in {"epochs": epochs, "batch_size": batch_size}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    _check_micro_batches(micro_batches, batch_size, "batch_size")
    builders = stage_builders(model, split_at)
    # Under torchrun every rank calls this; only rank 0 writes to the run.
    if launched_by_torchrun() and int(os.environ.get("RANK", "0")) != 0:
        run = None
    if run is not None:
        run.log_params(
            {
                "stages": len(builders),
                "epochs": epochs,
                "batch_size": batch_size,
                "micro_batches": micro_batches,
                "lr": lr,
                "loss": loss,
                "optimiser": optimiser,
                "seed": seed,
                "n_rows": len(X),
            }
        )
    args = (builders, X, y, epochs, batch_size, micro_batches, lr, loss, optimiser, seed)
    if launched_by_torchrun():
        raw = _train_in_torchrun_job(len(builders), args)
    else:
        raw = spawn(_train_stage, len(builders), args)
    result = PipelineFitResult(
        stages=len(builders),
        epochs=int(epochs),
        batch_size=int(batch_size),
        micro_batches=int(micro_batches),
        step_losses=tuple(float(v) for v in raw["step_losses"]),
        losses=tuple(float(v) for v in raw["losses"]),
        stage_state_dicts=tuple(
            {k: v.numpy() for k, v in weights.items()} for weights in raw["state_dicts"]
        ),
    )
    if run is not None:
        for index, value in enumerate(result.step_losses):
            run.log_metric("batch_loss", value, step=index)
        for epoch, value in enumerate(result.losses):
            log_metrics(run, {"loss": value}, step=epoch)
        log_json(run, result.to_dict(), "pipeline_fit.json")
    return result


def _train_in_torchrun_job(stages: int, args: tuple) -> dict:
    """Train as the stage of this torchrun rank; every rank gets rank 0's gathered answer."""
    torch = import_torch()
    dist = torch.distributed
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", init_method="env://")
    try:
        rank, size = dist.get_rank(), dist.get_world_size()
        if size != stages:
            raise ValueError(
                f"the torchrun job has {size} ranks but the model has {stages} stages; "
                "start one rank per stage"
            )
        answer = [_train_stage(rank, size, *args)]
        dist.broadcast_object_list(answer, src=0)
        return answer[0]
    finally:
        if created:
            close_process_group()
