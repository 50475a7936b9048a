"""Model inversion (white-box): what does a torch classifier remember a class to look like?

:func:`invert_classes` follows Fredrikson, Jha and Ristenpart (2015): starting from a blank input,
gradient descent on each class's cross-entropy, plus a small L2 penalty that keeps features at 0
unless the class needs them, gives an input the model is sure belongs to the class, its
*representative*. Every class is optimised at once, one row each (Adam, then a projection onto
the feature ranges after every step).

How much the representative gives away is measured against the data the model was trained on:
its Pearson correlation with the mean of the class's rows (``similarity``), the highest
correlation with another class's mean (``best_other``), and whether the own class's mean is the
closest of all (``identified``). A model whose representatives are identified reveals what its
classes' members look like on average, which is the leak the attack is about (a face, in the
paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opsloop.learn.eval_mode import in_eval_mode
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.torch_import import import_torch


@dataclass(frozen=True)
class InversionResult:
    """Each class's representative and how close it is to the class's real mean.

    ``similarity[i]`` is the Pearson correlation of ``representatives[i]`` with the mean of the
    rows of ``classes[i]``; ``best_other[i]`` the highest correlation with another class's mean;
    ``confidence[i]`` the model's probability of the class at its representative.
    """

    classes: tuple[Any, ...]
    similarity: tuple[float, ...]
    best_other: tuple[float, ...]
    confidence: tuple[float, ...]
    steps: int
    representatives: np.ndarray = field(repr=False, compare=False)

    @property
    def identified(self) -> float:
        """Share of classes whose representative correlates best with its own class's mean."""
        return float(np.mean(np.array(self.similarity) > np.array(self.best_other)))

    @property
    def mean_similarity(self) -> float:
        """Mean of ``similarity`` over the classes."""
        return float(np.mean(self.similarity))

    def to_frame(self) -> pd.DataFrame:
        """One row per class: ``class``, ``similarity``, ``best_other``, ``confidence``."""
        return pd.DataFrame(
            {
                "class": list(self.classes),
                "similarity": self.similarity,
                "best_other": self.best_other,
                "confidence": self.confidence,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the representatives left out)."""
        return {
            "steps": self.steps,
            "mean_similarity": self.mean_similarity,
            "identified": self.identified,
            "classes": self.to_frame().to_dict(orient="records"),
        }


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every row of ``a`` with every row of ``b`` (0 for a constant row)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
    return np.divide(a @ b.T, norms, out=np.zeros((len(a), len(b))), where=norms > 0)


def invert_classes(
    model: Any,
    X: Any,
    y: Any,
    *,
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 0.01,
    start: Any = None,
    constraints: FeatureConstraints | None = None,
) -> InversionResult:
    """Reconstruct a representative of every class of ``y`` from a torch classifier's gradients.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` mapping (rows, features) to logits; class ``k`` is logit ``k``.
    X, y
        Rows of the model's data and their class indices: only the class means are taken from
        them, to score the representatives (the attack itself uses the model alone).
    steps, lr
        Adam steps and learning rate of the optimisation of the inputs.
    l2
        Weight of the penalty :math:`\\lVert x - x_0 \\rVert^2` that keeps unneeded features at
        the start.
    start
        The blank input :math:`x_0` every class starts from: one number, or one per feature;
        ``None`` is 0 clipped into the ranges.
    constraints
        Ranges the representatives stay in (the other rules of a tabular domain do not apply
        to an average).

    >>> from sklearn.datasets import load_digits
    >>> from opsloop.learn.mlp import mlp
    >>> from opsloop.learn.robustness.defensive_distillation import train_at_temperature
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> model = train_at_temperature(mlp([64, 32, 10]), X[:1200], y[:1200], temperature=1.0,
    ...                              epochs=30, lr=0.01)
    >>> result = invert_classes(model, X[:1200], y[:1200],
    ...                         constraints=FeatureConstraints(64, lower=0, upper=1))
    >>> result.identified, round(result.mean_similarity, 2)
    (1.0, 0.49)
    """
    torch = import_torch("model inversion")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be finite and above 0, got {lr!r}")
    if not (l2 >= 0 and math.isfinite(l2)):
        raise ValueError(f"l2 must be finite and at least 0, got {l2!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
        raise ValueError("X must be 2-d with as many rows as y, and not empty")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("y must hold class indices 0..n_classes-1")
    d = X.shape[1]
    if constraints is not None and constraints.n_features != d:
        raise ValueError(f"constraints describe {constraints.n_features} features, X has {d}")
    lower = np.full(d, -np.inf) if constraints is None else constraints.lower
    upper = np.full(d, np.inf) if constraints is None else constraints.upper
    blank = np.zeros(d) if start is None else np.broadcast_to(np.asarray(start, float), (d,))
    blank = np.clip(blank, lower, upper)
    classes = np.unique(y)
    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    x0 = as_tensor(np.tile(blank, (len(classes), 1)))
    low, high = as_tensor(lower), as_tensor(upper)
    targets = torch.as_tensor(classes, dtype=torch.long)
    x = x0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    # each submodule handed back in its own mode (a frozen batch norm stays frozen)
    with in_eval_mode(model):
        for _ in range(steps):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), targets, reduction="sum")
            loss = loss + l2 * ((x - x0) ** 2).sum()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                x.copy_(torch.maximum(torch.minimum(x, high), low))
        with torch.no_grad():
            probabilities = torch.softmax(model(x), dim=1)
    representatives = x.detach().double().numpy()
    means = np.stack([X[y == k].mean(axis=0) for k in classes])
    correlation = _correlations(representatives, means)
    own = np.diag(correlation).copy()
    others = correlation.copy()
    np.fill_diagonal(others, -np.inf)
    return InversionResult(
        classes=tuple(classes.tolist()),
        similarity=tuple(own.tolist()),
        best_other=tuple(others.max(axis=1).tolist()) if len(classes) > 1 else (-1.0,),
        confidence=tuple(probabilities[torch.arange(len(classes)), targets].double().tolist()),
        steps=steps,
        representatives=representatives,
    )
