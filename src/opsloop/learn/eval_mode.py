"""Read a PyTorch module in eval mode and hand it back with every submodule's own mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def in_eval_mode(model: Any) -> Iterator[None]:
    """Put ``model`` and all its submodules in eval mode; restore each one's flag on exit.

    ``model.train(was_training)`` would set every submodule to the top module's mode, so a
    batch norm the caller froze (``model.train(); model[1].eval()``) would come back training.
    Each flag is saved and put back one by one, also when the body raises, through each
    module's own ``train`` (an override that changes state with its mode, as a layer that
    merges adapter weights in eval does, is told), parents before their children.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    >>> _ = model.train()
    >>> _ = model[1].eval()
    >>> with in_eval_mode(model):
    ...     [m.training for m in model.modules()]
    [False, False, False]
    >>> [m.training for m in model.modules()]
    [True, True, False]
    """
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        yield
    finally:
        for module, training in modes.items():
            module.train(training)
