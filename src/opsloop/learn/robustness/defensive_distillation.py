"""Defensive distillation (Papernot et al., 2016), and the attack that breaks it.

A teacher is trained with its softmax at temperature :math:`T` (cross-entropy of
:math:`\\mathrm{softmax}(z / T)`); a student of the same shape learns the teacher's soft labels at
the same temperature (:func:`opsloop.learn.distill.distill` with ``alpha=1``: the soft term only)
and is then served at temperature 1. Its logits come out about :math:`T` times larger, so its
softmax saturates: the cross-entropy's gradient is 0 in floating point on most rows, and
gradient attacks on the loss (FGSM, PGD) stall, and the model looks more robust than it is.
Carlini and Wagner
(2016, "Defensive distillation is not robust to adversarial examples") attacked the logits
instead, and :func:`~.evasion.margin_pgd` does the same. :func:`defensive_distillation` reports
both numbers, so that the first is never read alone.

The student's training step is ART's ``DefensiveDistillation``: with the same teacher, student,
full batches and Adam, and ART's student given the loss :math:`T^2` times the cross-entropy
against the soft labels, the weights agree to 1e-4 (the tests compare). That loss differs from
the :math:`T^2`-scaled KL divergence used here by a constant; without the :math:`T^2` its
gradients are :math:`T^2` times smaller, and Adam's :math:`\\epsilon` damps them.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from opsloop.learn.distill import distill
from opsloop.learn.feature_rows import check_model_width
from opsloop.learn.robustness.adversarial_training import _pair, _positive_int, robustness_measures
from opsloop.learn.robustness.constraints import FeatureConstraints
from opsloop.learn.robustness.defence_effect import DefenceEffect
from opsloop.learn.robustness.evasion import accuracy_under_attack, check_norm
from opsloop.learn.torch_import import import_torch

NOTE = (
    "Carlini and Wagner (2016) broke defensive distillation: its softmax saturates, so attacks "
    "on the cross-entropy find no gradient, while an attack on the logit margin (margin PGD) "
    "still does. Read robustness from the margin-PGD row."
)


def fresh_copy(model: Any, seed: int) -> Any:
    """A copy of ``model`` with every layer that has ``reset_parameters`` re-initialised.

    The global torch random state is left as it was.

    >>> import torch
    >>> _ = torch.manual_seed(1)
    >>> model = torch.nn.Linear(3, 2)
    >>> a, b = fresh_copy(model, 0), fresh_copy(model, 0)
    >>> bool(torch.equal(a.weight, b.weight)), bool(torch.equal(a.weight, model.weight))
    (True, False)
    """
    torch = import_torch("defensive distillation")
    copied = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in copied.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return copied


def train_at_temperature(
    model: Any,
    X: Any,
    y: Any,
    *,
    temperature: float,
    epochs: int = 30,
    batch_size: int | None = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> Any:
    """Train ``model`` in place on the cross-entropy of ``softmax(model(x) / temperature)``.

    Adam at ``lr``, ``epochs`` passes in shuffled batches of ``batch_size`` (``None``: all
    rows); returns the model in eval mode.

    >>> import torch
    >>> X = np.r_[np.full((10, 1), -1.0), np.full((10, 1), 1.0)].astype("float32")
    >>> y = np.r_[np.zeros(10, int), np.ones(10, int)]
    >>> model = train_at_temperature(fresh_copy(torch.nn.Linear(1, 2), 0), X, y,
    ...                              temperature=10.0, epochs=50, lr=0.1)
    >>> model(torch.tensor([[-1.0], [1.0]])).argmax(dim=1).tolist()
    [0, 1]
    """
    torch = import_torch("defensive distillation")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be finite and above 0, got {temperature!r}")
    inputs = torch.as_tensor(np.asarray(X, dtype=np.float32))
    targets = torch.as_tensor(np.asarray(y, dtype=np.int64))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    size = len(inputs) if batch_size is None else batch_size
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), size):
            rows = order[start : start + size]
            optimiser.zero_grad()
            logits = model(inputs[rows]) / temperature
            torch.nn.functional.cross_entropy(logits, targets[rows]).backward()
            optimiser.step()
    return model.eval()


def defensive_distillation(
    model: Any,
    train: Any,
    test: Any,
    *,
    eps: float,
    temperature: float = 20.0,
    norm: Any = "inf",
    epochs: int = 30,
    batch_size: int | None = 64,
    lr: float = 1e-3,
    eval_steps: int = 20,
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
) -> DefenceEffect:
    """Distil a network of ``model``'s shape at ``temperature``; measure it against ``model``.

    Parameters
    ----------
    model
        The undefended ``torch.nn.Module`` (trained as usual); the teacher and the student are
        fresh copies of its shape (:func:`fresh_copy`), and it is not changed.
    train, test
        Pairs ``(X, y)`` with ``y`` the class index.
    eps, norm, eval_steps, constraints
        The budget of the attacks the measures are taken with.
    temperature
        :math:`T`; Papernot et al. used 20 to 100.
    epochs, batch_size, lr
        Training of the teacher and of the student (Adam).
    seed
        Seeds the initial weights (teacher ``seed``, student ``seed + 1``) and the batches.

    Measures, on ``test``: clean accuracy; accuracy under FGSM and PGD on the cross-entropy;
    accuracy under :func:`~.evasion.margin_pgd`. ``note`` says that the margin attack's
    number is the one to believe.

    >>> from sklearn.datasets import load_digits
    >>> from opsloop.learn.mlp import mlp
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> model = train_at_temperature(mlp([64, 32, 10]), X[:1000], y[:1000], temperature=1.0,
    ...                              epochs=20, lr=0.01)
    >>> effect = defensive_distillation(model, (X[:1000], y[:1000]), (X[1000:1400], y[1000:1400]),
    ...                                 eps=0.1, temperature=50.0, epochs=20, lr=0.01)
    >>> effect.to_frame()[["before", "after"]].round(2).values.tolist()
    [[0.97, 0.88], [0.17, 0.62], [0.14, 0.56], [0.15, 0.23]]

    Clean accuracy, FGSM and PGD on the loss, PGD on the margin: the loss attacks lose most of
    their effect on the distilled network, the margin attack little of it.
    """
    torch = import_torch("defensive distillation")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    X_train, y_train = _pair("train", train)
    X_test, y_test = _pair("test", test)
    check_model_width("train: X", X_train, model)
    check_model_width("test: X", X_test, model)
    norm = check_norm(norm)
    eps = float(eps)
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be finite and above 0, got {eps}")
    temperature = float(temperature)
    _positive_int("epochs", epochs)
    _positive_int("eval_steps", eval_steps)
    if batch_size is not None:
        _positive_int("batch_size", batch_size)
    size = len(X_train) if batch_size is None else batch_size
    teacher = train_at_temperature(
        fresh_copy(model, seed),
        X_train,
        y_train,
        temperature=temperature,
        epochs=epochs,
        batch_size=size,
        lr=lr,
        seed=seed,
    )
    student = distill(
        teacher,
        fresh_copy(model, seed + 1),
        (X_train, y_train),
        temperature=temperature,
        alpha=1.0,
        epochs=epochs,
        batch_size=size,
        lr=lr,
        random_state=seed,
    ).student.eval()

    def measure(network: Any) -> tuple[tuple[str, ...], tuple[float, ...]]:
        names, values = robustness_measures(
            network, X_test, y_test, eps=eps, norm=norm, steps=eval_steps, constraints=constraints
        )
        curve = accuracy_under_attack(
            network,
            X_test,
            y_test,
            [eps],
            attack="margin_pgd",
            norm=norm,
            steps=eval_steps,
            constraints=constraints,
        )
        name = f"accuracy under margin PGD-{eval_steps} ({norm}, eps {eps:g})"
        return (*names, name), (*values, curve.accuracy[0])

    names, before = measure(model)
    _, after = measure(student)
    return DefenceEffect(
        defence="defensive distillation",
        settings=(
            ("temperature", temperature),
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("lr", lr),
            ("eps", eps),
            ("norm", norm),
        ),
        measures=names,
        before=before,
        after=after,
        note=NOTE,
        model=student,
    )
