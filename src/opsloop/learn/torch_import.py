"""Import PyTorch on first use, so that the rest of :mod:`opsloop.learn` works without it."""

from __future__ import annotations

from types import ModuleType

TORCH_HINT = "pip install 'opsloop[torch]'"


def import_torch() -> ModuleType:
    """The ``torch`` module, or an ImportError that says how to install it.

    >>> import_torch().__name__
    'torch'
    """
    try:
        import torch
    except ImportError as error:  # pragma: no cover - torch is installed where tests run
        raise ImportError(f"this part of opsloop.learn needs PyTorch: {TORCH_HINT}") from error
    return torch
