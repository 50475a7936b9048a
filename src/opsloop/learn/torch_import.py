"""Import PyTorch on first use, so that the rest of :mod:`opsloop.learn` works without it."""

from __future__ import annotations

from types import ModuleType

TORCH_HINT = "pip install 'opsloop[torch]'"


def import_torch(purpose: str = "this part of opsloop.learn") -> ModuleType:
    """The ``torch`` module, or an ImportError saying that ``purpose`` needs it and how to get it.

    >>> import sys
    >>> from unittest import mock
    >>> with mock.patch.dict(sys.modules, {"torch": None}):  # as if torch were not installed
    ...     import_torch("quantization")
    Traceback (most recent call last):
    ImportError: quantization needs PyTorch: pip install 'opsloop[torch]'
    >>> import_torch().ones(3).sum().item()
    3.0
    """
    try:
        import torch
    except ImportError as error:  # pragma: no cover - torch is installed where tests run
        raise ImportError(f"{purpose} needs PyTorch: {TORCH_HINT}") from error
    return torch
