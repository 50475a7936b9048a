"""A PyTorch model version served with torch.

The module comes from :meth:`~opsloop.registry.ModelRegistry.load` and nowhere else: the
registry checks the artifact's sha256, reads the weights with
``torch.load(weights_only=True)`` (tensors and plain containers only) and rebuilds the
architecture with a builder this process registered (:mod:`opsloop.registry.torch_flavor`),
so serving one runs no code from the artifact. This module only wraps the module it is
given.

**Inputs.** The module takes one float tensor ``[rows, k]`` whose columns are the
signature's ``k`` columns in the signature's order (the order of the frame it was
registered with), in the dtype of the module's first parameter. At load the module answers
two rows of zeros: a module that cannot take ``k`` features is refused there, naming its
first layer's width where it has one, rather than failing on the first request.

**Outputs.** ``[rows]`` or ``[rows, 1]``: one value per row, unless the version's output
type is ``"logits"``; then ``[rows, classes]`` logits (softmax) or one logit per row for
two classes (logistic), with the classes of the version's ``classes`` tag
(:mod:`.tensor_heads`).

**Threads.** Each call runs under ``torch.inference_mode()`` with at most ``threads``
intra-op threads (default 1) in the thread that answers. On torch's OpenMP builds (the
default on Linux) the bound is that thread's own, so a notebook's other threads keep their
setting; a build with another thread pool applies it to the process.

>>> import numpy as np, torch
>>> from opsloop.registry.torch_flavor import torch_builder
>>> @torch_builder("doc-serve-linear")
... def linear(n: int) -> torch.nn.Module:
...     return torch.nn.Linear(n, 1)
>>> module = linear(2).eval()
>>> served = torch_model(module, ("a", "b"), None, None, "models:/m/1")
>>> x = np.array([[1.0, 2.0]])
>>> served.answer(x)[0] == module(torch.tensor(x, dtype=torch.float32)).reshape(-1).tolist()
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from opsloop.errors import InvalidArgumentError
from opsloop.registry.torch_flavor import import_torch
from opsloop.serving.tensor_heads import (
    LOGITS,
    declared_classes,
    logit_answer,
    logit_classes,
    output_width,
    value_answer,
)


class TorchModel:
    """A module ready to answer a float matrix, built by :func:`torch_model`, which checks
    it against the signature. ``classes_`` holds a classifier's classes (``None`` for one
    value per row)."""

    def __init__(self, module: Any, dtype: Any, classes: np.ndarray | None, threads: int) -> None:
        self.module = module
        self.dtype = dtype
        self.classes_ = classes
        self.threads = threads

    @property
    def has_probabilities(self) -> bool:
        """Whether answers carry class probabilities."""
        return self.classes_ is not None

    def output(self, matrix: np.ndarray) -> np.ndarray:
        """The module's raw output for ``matrix``, as an array."""
        torch = import_torch()
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        given = torch.from_numpy(np.ascontiguousarray(matrix)).to(self.dtype)
        with torch.inference_mode():
            found = self.module(given)
        if not isinstance(found, torch.Tensor):
            raise TypeError(f"the module answered a {type(found).__name__}, not a tensor")
        return found.detach().to(torch.float64).numpy()

    def answer(self, matrix: np.ndarray) -> tuple[list, list[list[float]] | None]:
        """The predictions for ``matrix`` (rows by the signature's columns) and, for a
        classifier, the probabilities (rows by ``classes_``)."""
        output = self.output(matrix)
        if self.classes_ is None:
            return value_answer(output), None
        return logit_answer(output, self.classes_)


def torch_model(
    module: Any,
    columns: tuple[str, ...],
    output_type: str | None,
    tags: Mapping[str, str] | None,
    where: str,
    threads: int = 1,
) -> TorchModel:
    """The registry-loaded ``module`` as served for a signature of ``columns``, with at most
    ``threads`` intra-op threads; ``output_type`` and ``tags`` are the version's (see the
    module). ``where`` names the version in errors.

    >>> import torch
    >>> from opsloop.registry.torch_flavor import torch_builder
    >>> @torch_builder("doc-serve-wide")
    ... def wide() -> torch.nn.Module:
    ...     return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    >>> torch_model(wide(), ("a", "b"), None, None, "models:/m/1")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: models:/m/1: the module's first layer ('0', a Linear) takes 4 features per row, but the version's signature has 2 columns ('a', 'b')
    """  # noqa: E501
    torch = import_torch()
    parameter = next(module.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    if not dtype.is_floating_point:
        raise InvalidArgumentError(f"{where}: the module's parameters are {dtype}, not floats")
    listed = ", ".join(repr(c) for c in columns[:10]) + (", ..." if len(columns) > 10 else "")
    served = TorchModel(module, dtype, None, threads)
    try:
        probe = served.output(np.zeros((2, len(columns))))
    except (RuntimeError, TypeError, ValueError) as error:
        # The module's first layer in definition order is a guess at the one that takes
        # the input, so it only explains a refusal, never causes one.
        first = next(
            ((n, layer) for n, layer in module.named_modules() if hasattr(layer, "in_features")),
            None,
        )
        if first is not None and first[1].in_features != len(columns):
            name, layer = first
            raise InvalidArgumentError(
                f"{where}: the module's first layer ({name!r}, a {type(layer).__name__}) takes "
                f"{layer.in_features} features per row, but the version's signature has "
                f"{len(columns)} columns ({listed})"
            ) from None
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:500]
        raise InvalidArgumentError(
            f"{where}: the module cannot answer rows of the signature's {len(columns)} "
            f"columns ({listed}): {reason}"
        ) from None
    width = output_width(probe.shape, 2, "the module's output", where)
    if output_type == LOGITS:
        served.classes_ = logit_classes(declared_classes(tags, where), width, where)
    elif width != 1:
        raise InvalidArgumentError(
            f"{where}: the module answers {width} values per row; serve one value per row, "
            f"or declare the version's output_type 'logits' for a classifier"
        )
    return served
