"""Training and inference over several processes with torch.distributed.

* :func:`fit`: data parallelism (DistributedDataParallel; gloo on CPU, NCCL on GPUs), started
  by torchrun or by spawning local processes, equal to single-process training on the same
  global batch;
* :func:`pipeline_fit` and :func:`pipeline_forward`: model parallelism, a model built as
  stages that each live in their own process, trained with the GPipe schedule (micro-batches
  forward through all stages, gradients back) or run forward only.

Given a run (``run=``), training logs its params, per-epoch metrics (per rank for :func:`fit`)
and its report and weights.

>>> from opsloop.learn.distributed import LOSSES
>>> LOSSES
('cross_entropy', 'mse')
"""

from opsloop.learn.distributed.data_parallel import LOSSES, DistributedFitResult, fit
from opsloop.learn.distributed.launch import launched_by_torchrun, spawn
from opsloop.learn.distributed.pipeline_parallel import (
    PipelineFitResult,
    pipeline_fit,
    pipeline_forward,
    stage_builders,
)

__all__ = [
    "LOSSES",
    "DistributedFitResult",
    "PipelineFitResult",
    "fit",
    "launched_by_torchrun",
    "pipeline_fit",
    "pipeline_forward",
    "spawn",
    "stage_builders",
]
