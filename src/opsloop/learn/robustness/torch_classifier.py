"""A PyTorch classifier seen as the black-box attacks see a model: predict, predict_proba."""

from __future__ import annotations

from typing import Any

import numpy as np

from opsloop.learn.eval_mode import in_eval_mode
from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.torch_import import import_torch


class TorchClassifier:
    """``predict_proba`` (softmax of the logits) and ``predict`` of a torch module.

    The membership, black-box and extraction attacks query any model through these two
    methods; this wrapper lets them query a torch network too. Rows go through the module in
    eval mode, without gradients, in batches of ``batch_size``.

    >>> import torch
    >>> model = TorchClassifier(torch.nn.Identity())
    >>> model.predict_proba(np.array([[0.0, 0.0], [0.0, 10.0]])).round(3).tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    >>> model.predict(np.array([[2.0, 1.0]])).tolist()
    [0]
    """

    def __init__(self, module: Any, batch_size: int = 4096) -> None:
        torch = import_torch("a torch classifier")
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self.module, self.batch_size = module, batch_size

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the module's logits, one row per row of ``X``."""
        torch = import_torch("a torch classifier")
        parameter = next(iter(self.module.parameters()), None)
        dtype = parameter.dtype if parameter is not None else torch.float32
        # finite_rows copies a read-only array (a frame's values under pandas' copy-on-write),
        # on which torch would warn once per process, hiding later warnings.
        rows = finite_rows("X", X, two_d=False, dtype=None)
        check_model_width("X", rows, self.module)
        x = torch.as_tensor(rows, dtype=dtype)
        # each submodule handed back in its own mode (a frozen batch norm stays frozen)
        with in_eval_mode(self.module), torch.no_grad():
            parts = [
                torch.softmax(self.module(x[start : start + self.batch_size]), dim=1)
                for start in range(0, len(x), self.batch_size)
            ]
        return torch.cat(parts).double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest probability."""
        return self.predict_proba(X).argmax(axis=1)


def is_torch_module(model: Any) -> bool:
    """Whether ``model`` is a torch module, without importing torch when it is not loaded.

    >>> is_torch_module(object())
    False
    """
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)
