"""Stage builders for the pipeline tests: each builds one part of a small MLP, on its rank only.

They live in a module (not in a test file) so that the spawned stage processes can import them.
"""

from __future__ import annotations

import torch


def stage_layers(index: int) -> torch.nn.Sequential:
    """Stage 0: Linear(6, 32), ReLU, Linear(32, 32); stage 1: ReLU, Linear(32, 4) (seeded)."""
    torch.manual_seed(100 + index)
    if index == 0:
        return torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32))
    return torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(32, 4))


def built_on_its_rank(index: int) -> torch.nn.Sequential:
    """``stage_layers(index)``, refusing to build anywhere but in the process of that stage."""
    dist = torch.distributed
    if not dist.is_initialized() or dist.get_rank() != index:
        where = f"rank {dist.get_rank()}" if dist.is_initialized() else "the calling process"
        raise RuntimeError(f"stage {index} was built in {where}")
    return stage_layers(index)
