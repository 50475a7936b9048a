"""A digits classifier being fine-tuned with its batch norm frozen: the model trains, its
batch norm does not. Code that reads a model in eval mode must hand it back so."""

from __future__ import annotations

#: The training flags of :func:`frozen_batch_norm`'s modules, itself first.
FROZEN_MODES = [True, True, False, True, True]


def frozen_batch_norm(hidden: int):
    """Linear(64, hidden), BatchNorm1d, ReLU, Linear(hidden, 10), seeded, in training mode
    with its batch norm in eval mode."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden),
        torch.nn.BatchNorm1d(hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    model.train()
    model[1].eval()
    return model
