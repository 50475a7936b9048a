"""Adversarial training (Madry et al., 2018): train on PGD examples of the model being trained.

Each batch, a share ``ratio`` of its rows is replaced by :func:`~.evasion.pgd` examples against
the current weights and the true labels, then the model takes one Adam step on the mean
cross-entropy of the batch. With ``ratio=1`` this is Madry et al.'s min-max training; a smaller
ratio mixes clean rows in, as Goodfellow et al. (2015) and ART's ``AdversarialTrainer`` do.
With ``ratio=1``, full batches and PGD without a random start, the weights equal those of ART's
``AdversarialTrainer`` with the same PGD, optimiser and epochs (the tests compare).

:func:`adversarial_training` trains a copy of an already trained model (the model given is left
as it is) and reports, on held-out rows, clean accuracy and accuracy under FGSM and PGD at the
training budget, before and after, as a :class:`~.defence_effect.DefenceEffect`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.labelled_rows import labelled_rows
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.defence_effect import DefenceEffect
from opsloop.learn.robustness.evasion import (
    SEED_LIMIT,
    accuracy_under_attack,
    check_norm,
    check_seed,
    pgd,
)
from opsloop.learn.torch_import import import_torch


def _pair(name: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
    X, y = labelled_rows(name, value)
    X = finite_rows(f"{name}: X", X, dtype=np.float32)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"{name}: y must hold class indices 0..n_classes-1")
    return X, y.astype(np.int64)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def robustness_measures(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    norm: str,
    steps: int,
    constraints: FeatureConstraints | None,
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Clean accuracy and accuracy under FGSM and ``steps``-step PGD at ``eps``, with names."""
    names, values = ["clean accuracy"], []
    for attack in ("fgsm", "pgd"):
        curve = accuracy_under_attack(
            model, X, y, [eps], attack=attack, norm=norm, steps=steps, constraints=constraints
        )
        if not values:
            values.append(curve.clean_accuracy)
        label = "FGSM" if attack == "fgsm" else f"PGD-{steps}"
        names.append(f"accuracy under {label} ({norm}, eps {eps:g})")
        values.append(curve.accuracy[0])
    return tuple(names), tuple(values)


def adversarial_training(
    model: Any,
    train: Any,
    test: Any,
    *,
    eps: float,
    norm: Any = "inf",
    steps: int = 10,
    eps_step: float | None = None,
    ratio: float = 0.5,
    random_init: bool = True,
    epochs: int = 10,
    batch_size: int | None = 128,
    lr: float = 1e-3,
    eval_steps: int = 20,
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
) -> DefenceEffect:
    """Fine-tune a copy of a trained torch classifier on PGD examples; measure before and after.

    Parameters
    ----------
    model
        A trained ``torch.nn.Module`` returning logits; it is not changed.
    train, test
        Pairs ``(X, y)`` with ``y`` the class index: the rows to train on, and held-out rows
        the measures are taken on.
    eps, norm, steps, eps_step, random_init
        The PGD of training (see :func:`~.evasion.pgd`); ``eps_step=None`` is
        ``2.5 * eps / steps``. ``random_init`` starts each PGD from a random point of the ball,
        as Madry et al. do.
    ratio
        Share of each batch replaced by adversarial examples (``0 < ratio <= 1``).
    epochs, batch_size, lr
        Passes over ``train``, rows per step (``None``: all rows), and Adam's learning rate.
    eval_steps
        Steps of the PGD the measures are taken with.
    constraints
        The domain the examples stay in, in training and in the measures.
    seed
        Seeds the order of rows, the adversarial rows of each batch and PGD's random starts.

    >>> from sklearn.datasets import load_digits
    >>> from opsloop.learn.mlp import mlp
    >>> from opsloop.learn.robustness.defensive_distillation import train_at_temperature
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> model = train_at_temperature(mlp([64, 32, 10]), X[:1000], y[:1000], temperature=1.0,
    ...                              epochs=20, lr=0.01)
    >>> effect = adversarial_training(model, (X[:1000], y[:1000]), (X[1000:1400], y[1000:1400]),
    ...                               eps=0.1, epochs=10, lr=0.01)
    >>> effect.to_frame()[["before", "after"]].round(2).values.tolist()
    [[0.97, 0.96], [0.17, 0.64], [0.14, 0.6]]

    Clean accuracy, then accuracy under FGSM and PGD at eps 0.1: a point of clean accuracy buys
    about 45 points under attack.
    """
    torch = import_torch("adversarial training")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    X_train, y_train = _pair("train", train)
    X_test, y_test = _pair("test", test)
    check_model_width("train: X", X_train, model)
    check_model_width("test: X", X_test, model)
    seed = check_seed(seed)
    norm = check_norm(norm)
    eps = float(eps)
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be finite and above 0, got {eps}")
    if not (isinstance(ratio, int | float) and 0 < ratio <= 1):
        raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
    _positive_int("steps", steps)
    _positive_int("epochs", epochs)
    _positive_int("eval_steps", eval_steps)
    if batch_size is not None:
        _positive_int("batch_size", batch_size)
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be finite and above 0, got {lr!r}")
    eps_step = 2.5 * eps / steps if eps_step is None else float(eps_step)

    measured = dict(eps=eps, norm=norm, steps=eval_steps, constraints=constraints)
    names, before = robustness_measures(model, X_test, y_test, **measured)
    defended = copy.deepcopy(model)
    parameter = next(iter(defended.parameters()), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    inputs, targets = torch.as_tensor(X_train, dtype=dtype), torch.as_tensor(y_train)
    optimiser = torch.optim.Adam(defended.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    size = len(inputs) if batch_size is None else batch_size
    defended.train()
    for epoch in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for batch, start in enumerate(range(0, len(inputs), size)):
            rows = order[start : start + size]
            x, labels = inputs[rows].clone(), targets[rows]
            n_adv = math.ceil(ratio * len(rows))
            adv = torch.randperm(len(rows), generator=generator)[:n_adv]
            x[adv] = torch.as_tensor(
                pgd(
                    defended,
                    x[adv].numpy(),
                    labels[adv].numpy(),
                    eps=eps,
                    eps_step=eps_step,
                    steps=steps,
                    norm=norm,
                    random_init=random_init,
                    seed=(seed + epoch * 100_003 + batch) % SEED_LIMIT,
                    constraints=constraints,
                ),
                dtype=dtype,
            )
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(defended(x), labels).backward()
            optimiser.step()
    defended.eval()
    _, after = robustness_measures(defended, X_test, y_test, **measured)
    return DefenceEffect(
        defence="adversarial training",
        settings=(
            ("eps", eps),
            ("norm", norm),
            ("steps", steps),
            ("eps_step", eps_step),
            ("ratio", float(ratio)),
            ("random_init", bool(random_init)),
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("lr", lr),
        ),
        measures=names,
        before=before,
        after=after,
        model=defended,
    )
