"""White-box evasion of PyTorch classifiers: FGSM and PGD under an L∞ or L2 budget.

Both attacks push each row up the gradient of the cross-entropy loss of its label and stay within
``eps`` of the row in the chosen norm:

* FGSM (Goodfellow et al., 2015), one step: :math:`x' = x + \\epsilon\\, d(\\nabla_x L)`, where
  :math:`d(g) = \\mathrm{sign}(g)` for L∞ and :math:`g / \\lVert g \\rVert_2` for L2;
* PGD (Madry et al., 2018), ``steps`` steps of size ``eps_step``, each followed by a projection back
  onto the ``eps``-ball around :math:`x`: :math:`x^{t+1} = \\Pi_\\epsilon(x^t + \\alpha\\,
  d(\\nabla_x L(x^t)))`.

Every row of a batch is attacked at once (one forward and one backward pass per step over the
whole batch, ``batch_size=None`` means all rows), which is what makes this faster than
adversarial-robustness-toolbox (ART) at its default batch size of 32. Without integer or one-hot
constraints, the examples equal ART's ``FastGradientMethod`` and ``ProjectedGradientDescent``
(with ``num_random_init=0``) for the same model, ``eps``, step and clip range; the tests
compare. The loss is summed over rows, not averaged, so that a row's gradient does not depend on
the batch it is in.

Labels default to the model's own predictions, as in ART (this avoids "label leaking": the true
label is not given away by the attack). With :class:`~.constraints.FeatureConstraints`, the
gradient of an immutable feature is zeroed, each step is clipped to the ranges, and the result is
repaired once at the end: an integer feature's change is truncated towards the original to whole
steps, and a one-hot group takes the category the attack pushed highest, when the budget allows
the switch (a switch costs 1 in L∞ and √2 in L2). In L2 the continuous features then shrink so
that the whole change stays within ``eps``. The iterates themselves move on the continuous
relaxation, so that a small step can accumulate into a whole one.

:func:`accuracy_under_attack` gives the accuracy on attacked rows as a curve over ``eps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.learn.eval_mode import in_eval_mode
from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.torch_import import import_torch

NORMS = ("inf", "l2")
ATTACKS = ("fgsm", "pgd", "margin_pgd")


def check_norm(norm: Any) -> str:
    """``'inf'`` or ``'l2'`` for the ways a norm is usually written; a ValueError otherwise.

    >>> check_norm(np.inf), check_norm(2), check_norm("L2")
    ('inf', 'l2', 'l2')
    """
    text = str(norm).lower()
    if text in ("inf", "linf", "l_inf"):
        return "inf"
    if text in ("2", "2.0", "l2", "l_2"):
        return "l2"
    raise ValueError(f"norm must be one of 'inf' or 2 (L2), got {norm!r}")


def _check_eps(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be finite and at least 0, got {value}")
    return value


#: The seeds a torch generator takes that numpy's take too: whole numbers 0 .. 2**64 - 1.
SEED_LIMIT = 2**64


def check_seed(seed: Any) -> int:
    """``seed`` as an int if it is a whole number from 0 to 2**64 - 1, the seeds
    ``torch.Generator.manual_seed`` and numpy both take; a ValueError naming ``seed`` otherwise.

    >>> check_seed(np.int64(7))
    7
    >>> check_seed(1.5)
    Traceback (most recent call last):
    ValueError: seed must be a whole number from 0 to 2**64 - 1, got 1.5
    """
    if (
        isinstance(seed, bool | np.bool_)
        or not isinstance(seed, int | np.integer)
        or not 0 <= int(seed) < SEED_LIMIT
    ):
        raise ValueError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r:.40}")
    return int(seed)


class _Setup:
    """The model in eval mode, its dtype, and the constraint tensors, for one attack call."""

    def __init__(self, model: Any, X: Any, constraints: FeatureConstraints | None) -> None:
        torch = import_torch("white-box evasion")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.torch, self.model = torch, model
        parameter = next(iter(model.parameters()), None)
        self.dtype = parameter.dtype if parameter is not None else torch.float32
        X = finite_rows("X", X, dtype=None)  # the caller's precision, as constraints see it
        check_model_width("X", X, model)
        if constraints is not None:
            if not isinstance(constraints, FeatureConstraints):
                raise TypeError(
                    f"constraints must be FeatureConstraints, got {type(constraints).__name__}"
                )
            constraints.check(X)
        # a copy: the caller's array may be read-only, and is never written to
        self.X = torch.tensor(X, dtype=self.dtype)
        self.lower = self.upper = self.mask = None
        if constraints is not None:
            as_tensor = lambda a: torch.as_tensor(a, dtype=self.dtype)  # noqa: E731
            if np.isfinite(constraints.lower).any() or np.isfinite(constraints.upper).any():
                self.lower, self.upper = as_tensor(constraints.lower), as_tensor(constraints.upper)
            if constraints.immutable:
                self.mask = as_tensor(constraints.mutable_mask)

    def labels(self, y: Any, x: Any) -> Any:
        torch = self.torch
        if y is None:
            with torch.no_grad():
                return self.model(x).argmax(dim=1)
        values = np.asarray(y)
        if values.shape != (len(x),):
            raise ValueError(f"y must hold one class per row of X ({len(x)}), got {values.shape}")
        if values.dtype.kind not in "iub" and not (
            values.dtype.kind == "f" and np.all(np.isfinite(values) & (values == np.round(values)))
        ):
            raise ValueError(f"y must hold class indices (whole numbers), got dtype {values.dtype}")
        with torch.no_grad():
            n_classes = self.model(x[:1]).shape[1]
        outside = (values < 0) | (values >= n_classes)
        if outside.any():
            raise ValueError(
                f"y must hold class indices 0..{n_classes - 1} (the model has {n_classes} "
                f"outputs), got {values[outside][0].item()!r}"
            )
        return torch.as_tensor(values).long()

    def gradient(self, x: Any, labels: Any, loss: str = "cross_entropy") -> Any:
        torch = self.torch
        x = x.detach().requires_grad_(True)
        logits = self.model(x)
        # summed, not averaged: each row's gradient is its own, whatever the batch size
        if loss == "margin":
            rows = torch.arange(len(labels))
            own = logits[rows, labels]
            others = logits.clone()
            others[rows, labels] = -torch.inf
            loss = (others.max(dim=1).values - own).sum()
        else:
            loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
        if self.mask is not None:
            grad = grad * self.mask
        return grad

    def clip(self, x: Any) -> Any:
        if self.lower is None:
            return x
        return self.torch.maximum(self.torch.minimum(x, self.upper), self.lower)


def _direction(grad: Any, norm: str, torch: Any) -> Any:
    if norm == "inf":
        return grad.sign()
    size = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    return grad * torch.where(size == 0, torch.zeros_like(size), 1 / size)


def _project(delta: Any, eps: float, norm: str, torch: Any) -> Any:
    if norm == "inf":
        return delta.clamp(-eps, eps)
    size = torch.linalg.vector_norm(delta, dim=1, keepdim=True)
    factor = torch.where(size == 0, torch.ones_like(size), (eps / size).clamp(max=1.0))
    return delta * factor


def _batches(n: int, batch_size: int | None) -> list[slice]:
    if batch_size is None:
        return [slice(0, n)]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    return [slice(start, start + batch_size) for start in range(0, n, batch_size)]


def _run(
    model: Any,
    X: Any,
    y: Any,
    *,
    eps: float,
    eps_step: float,
    steps: int,
    norm: str,
    random_init: bool,
    seed: int,
    constraints: FeatureConstraints | None,
    batch_size: int | None,
    loss: str = "cross_entropy",
) -> np.ndarray:
    setup = _Setup(model, X, constraints)
    torch, model = setup.torch, setup.model
    if y is not None and np.shape(y) != (len(setup.X),):
        # checked whole, before batching, so the message counts the rows of X, not of a batch
        raise ValueError(f"y must hold one class per row of X ({len(setup.X)}), got {np.shape(y)}")
    out = []
    # labels are checked per batch inside: a refusal there hands back the caller's modes
    with in_eval_mode(model):
        generator = torch.Generator().manual_seed(seed)
        for rows in _batches(len(setup.X), batch_size):
            x0 = setup.X[rows]
            labels = setup.labels(None if y is None else np.asarray(y)[rows], x0)
            x = x0.clone()
            if random_init:
                x = setup.clip(x0 + _random_start(x0, eps, norm, setup, generator))
            for _ in range(steps):
                grad = setup.gradient(x, labels, loss)
                with torch.no_grad():
                    x = setup.clip(x + eps_step * _direction(grad, norm, torch))
                    x = x0 + _project(x - x0, eps, norm, torch)
            out.append(x.detach())
    X_adv = torch.cat(out).numpy()
    if constraints is not None and (constraints.integer_steps or constraints.one_hot):
        X_adv = constraints.repair(setup.X.numpy(), X_adv, eps, norm)
    return X_adv


def _random_start(x0: Any, eps: float, norm: str, setup: _Setup, generator: Any) -> Any:
    torch = setup.torch
    shape = x0.shape
    if norm == "inf":
        start = (torch.rand(shape, generator=generator, dtype=setup.dtype) * 2 - 1) * eps
    else:
        # uniform in the ball: a uniform direction times a radius distributed as u^(1/d)
        direction = torch.randn(shape, generator=generator, dtype=setup.dtype)
        direction = direction / torch.linalg.vector_norm(direction, dim=1, keepdim=True)
        radius = torch.rand((shape[0], 1), generator=generator, dtype=setup.dtype)
        start = direction * eps * radius ** (1.0 / shape[1])
    return start if setup.mask is None else start * setup.mask


def fgsm(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    eps: float,
    norm: Any = "inf",
    constraints: FeatureConstraints | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Fast gradient sign method: one step of size ``eps`` up the loss of each row's label.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` mapping a float tensor (rows, features) to logits (rows, classes).
    X
        Rows to attack, shape (rows, features).
    y
        Each row's class; ``None`` (default) uses the model's predictions.
    eps
        The budget: largest change of a row in ``norm``.
    norm
        ``"inf"`` (each feature moves at most ``eps``) or ``2`` (L2 distance at most ``eps``).
    constraints
        Ranges, integer features, one-hot groups and immutable features to respect.
    batch_size
        Rows per forward/backward pass; ``None`` attacks all rows at once.

    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    ...     _ = model.bias.zero_()
    >>> fgsm(model, np.array([[1.0, 0.0]]), eps=0.25).tolist()  # class 0: x0 down, x1 up
    [[0.75, 0.25]]
    """
    eps = _check_eps("eps", eps)
    return _run(
        model,
        X,
        y,
        eps=eps,
        eps_step=eps,
        steps=1,
        norm=check_norm(norm),
        random_init=False,
        seed=0,
        constraints=constraints,
        batch_size=batch_size,
    )


def _checked_pgd(
    model: Any,
    X: Any,
    y: Any,
    *,
    eps: float,
    eps_step: float | None,
    steps: int,
    norm: Any,
    random_init: bool,
    seed: int,
    constraints: FeatureConstraints | None,
    batch_size: int | None,
    loss: str,
) -> np.ndarray:
    # pgd and margin_pgd: the same checks and defaults, up a different loss.
    eps = _check_eps("eps", eps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    eps_step = 2.5 * eps / steps if eps_step is None else _check_eps("eps_step", eps_step)
    seed = check_seed(seed)
    return _run(
        model,
        X,
        y,
        eps=eps,
        eps_step=eps_step,
        steps=steps,
        norm=check_norm(norm),
        random_init=bool(random_init),
        seed=seed,
        constraints=constraints,
        batch_size=batch_size,
        loss=loss,
    )


def pgd(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    eps: float,
    eps_step: float | None = None,
    steps: int = 40,
    norm: Any = "inf",
    random_init: bool = False,
    seed: int = 0,
    constraints: FeatureConstraints | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Projected gradient descent: ``steps`` gradient steps, each projected onto the ``eps``-ball.

    Parameters are those of :func:`fgsm`, plus:

    eps_step
        Size of one step; ``None`` (default) is ``2.5 * eps / steps`` (Madry et al.'s choice, so
        that the iterates can cross the ball and back).
    steps
        Number of steps (40 by default).
    random_init
        Start from a uniform random point of the ball instead of the row itself.
    seed
        Seed of the random start.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> X = np.random.default_rng(0).random((5, 4))
    >>> X_adv = pgd(model, X, eps=0.1, steps=10)
    >>> float(np.abs(X_adv - X).max()) <= 0.1 + 1e-6
    True
    """
    return _checked_pgd(
        model,
        X,
        y,
        eps=eps,
        eps_step=eps_step,
        steps=steps,
        norm=norm,
        random_init=random_init,
        seed=seed,
        constraints=constraints,
        batch_size=batch_size,
        loss="cross_entropy",
    )


def margin_pgd(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    eps: float,
    eps_step: float | None = None,
    steps: int = 40,
    norm: Any = "inf",
    random_init: bool = False,
    seed: int = 0,
    constraints: FeatureConstraints | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """:func:`pgd` up the logit margin :math:`\\max_{k \\ne y} z_k - z_y` instead of the loss.

    This is Carlini and Wagner's (2017) objective: it is read off the logits, before the
    softmax, so it keeps its gradient where the softmax saturates and the cross-entropy's
    gradient is 0 in floating point. That saturation is why defensive distillation seemed to
    stop gradient attacks, and this loss is how Carlini and Wagner broke it. Parameters are
    those of :func:`pgd`.

    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]]))
    ...     _ = model.bias.zero_()
    >>> X = np.array([[1.0, 0.0]])  # class 0 with probability 1 in float32: saturated
    >>> pgd(model, X, eps=0.6, steps=5).tolist()  # the loss's gradient is 0: nothing moves
    [[1.0, 0.0]]
    >>> margin_pgd(model, X, eps=0.6, steps=5).round(6).tolist()
    [[0.4, 0.6]]
    """
    return _checked_pgd(
        model,
        X,
        y,
        eps=eps,
        eps_step=eps_step,
        steps=steps,
        norm=norm,
        random_init=random_init,
        seed=seed,
        constraints=constraints,
        batch_size=batch_size,
        loss="margin",
    )


def predict_classes(model: Any, X: Any, batch_size: int | None = None) -> np.ndarray:
    """The class with the largest logit of a torch classifier, for each row of ``X``.

    >>> import torch
    >>> predict_classes(torch.nn.Identity(), np.array([[0.1, 0.9], [2.0, 1.0]])).tolist()
    [1, 0]
    """
    torch = import_torch("white-box evasion")
    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    X = finite_rows("X", X, two_d=False, dtype=None)
    check_model_width("X", X, model)
    x = torch.as_tensor(X, dtype=dtype)
    with torch.no_grad():
        parts = [model(x[rows]).argmax(dim=1) for rows in _batches(len(x), batch_size)]
    return torch.cat(parts).numpy()


@dataclass(frozen=True)
class AttackCurve:
    """Accuracy of a model on attacked rows at each budget ``eps`` (``eps=0``: clean accuracy).

    ``mean_distance[i]`` is the mean distance (in ``norm``) of the attacked rows from the
    originals at ``eps[i]``.
    """

    attack: str
    norm: str
    eps: tuple[float, ...]
    accuracy: tuple[float, ...]
    mean_distance: tuple[float, ...]
    clean_accuracy: float
    rows: int

    def to_frame(self) -> pd.DataFrame:
        """One row per budget: ``eps``, ``accuracy``, ``mean_distance``."""
        return pd.DataFrame(
            {"eps": self.eps, "accuracy": self.accuracy, "mean_distance": self.mean_distance}
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "attack": self.attack,
            "norm": self.norm,
            "rows": self.rows,
            "clean_accuracy": self.clean_accuracy,
            "curve": self.to_frame().to_dict(orient="records"),
        }

    def _repr_html_(self) -> str:
        title = f"<p>{self.attack.upper()} ({self.norm}), clean accuracy {self.clean_accuracy:.3f}"
        return title + "</p>" + self.to_frame().to_html(index=False)


def accuracy_under_attack(
    model: Any,
    X: Any,
    y: Any,
    eps: Any,
    *,
    attack: str = "pgd",
    norm: Any = "inf",
    steps: int = 40,
    constraints: FeatureConstraints | None = None,
    batch_size: int | None = None,
) -> AttackCurve:
    """Accuracy on ``X`` attacked with :func:`fgsm`, :func:`pgd` or :func:`margin_pgd` at each
    budget in ``eps``.

    Rows are attacked against their true labels ``y``; PGD uses its default step
    ``2.5 * eps / steps``.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> X = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(int)
    >>> model = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[-5.0, 0.0], [5.0, 0.0]]))
    ...     _ = model.bias.zero_()
    >>> curve = accuracy_under_attack(model, X, y, [0.0, 0.5, 5.0], attack="fgsm")
    >>> curve.accuracy[0], curve.accuracy[-1]
    (1.0, 0.0)
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    norm = check_norm(norm)
    budgets = [_check_eps("eps", e) for e in np.atleast_1d(np.asarray(eps, dtype=float))]
    y = np.asarray(y)
    X = finite_rows("X", X, dtype=None)
    clean = float(np.mean(predict_classes(model, X, batch_size) == y))
    accuracy, distance = [], []
    for budget in budgets:
        if budget == 0:
            accuracy.append(clean)
            distance.append(0.0)
            continue
        if attack == "fgsm":
            X_adv = fgsm(
                model, X, y, eps=budget, norm=norm, constraints=constraints, batch_size=batch_size
            )
        else:
            X_adv = (pgd if attack == "pgd" else margin_pgd)(
                model,
                X,
                y,
                eps=budget,
                steps=steps,
                norm=norm,
                constraints=constraints,
                batch_size=batch_size,
            )
        accuracy.append(float(np.mean(predict_classes(model, X_adv, batch_size) == y)))
        change = X_adv.astype(np.float64) - X
        size = np.abs(change).max(axis=1) if norm == "inf" else np.linalg.norm(change, axis=1)
        distance.append(float(size.mean()))
    return AttackCurve(
        attack=attack,
        norm=norm,
        eps=tuple(budgets),
        accuracy=tuple(accuracy),
        mean_distance=tuple(distance),
        clean_accuracy=clean,
        rows=len(X),
    )
