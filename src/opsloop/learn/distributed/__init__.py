"""Training and inference over several processes with torch.distributed.

* :func:`fit`: data parallelism (DistributedDataParallel; gloo on CPU, NCCL on GPUs), started
  by torchrun or by spawning local processes, equal to single-process training on the same
  global batch;
* :func:`pipeline_forward`: model parallelism, a Sequential model cut into stages that run in
  separate processes on micro-batches.

>>> from opsloop.learn.distributed import LOSSES
>>> LOSSES
('cross_entropy', 'mse')
"""

from opsloop.learn.distributed.data_parallel import LOSSES, DistributedFitResult, fit
from opsloop.learn.distributed.launch import launched_by_torchrun, spawn
from opsloop.learn.distributed.pipeline_parallel import pipeline_forward

__all__ = [
    "LOSSES",
    "DistributedFitResult",
    "fit",
    "launched_by_torchrun",
    "pipeline_forward",
    "spawn",
]
