"""A seeded multilayer perceptron, the small torch model the training tools are shown with.

Built from a module-level function so that ``functools.partial(mlp, sizes)`` pickles, which is
what a process started with the ``spawn`` method needs to rebuild the model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from opsloop.learn.torch_import import import_torch


def mlp(layer_sizes: Sequence[int], seed: int = 0) -> Any:
    """``torch.nn.Sequential`` of Linear layers with ReLU between them, initialised from ``seed``.

    >>> mlp([4, 8, 3])
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=3, bias=True)
    )
    """
    torch = import_torch()
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must hold at least two positive sizes, got {list(sizes)}")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        layers: list[Any] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            if i:
                layers.append(torch.nn.ReLU())
            layers.append(torch.nn.Linear(fan_in, fan_out))
        return torch.nn.Sequential(*layers)
    finally:
        torch.random.set_rng_state(generator_state)
