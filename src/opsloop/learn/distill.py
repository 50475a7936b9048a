"""Knowledge distillation: train a small PyTorch student to imitate a larger teacher.

The loss is Hinton, Vinyals and Dean's (2015): with teacher and student distributions softened at
temperature :math:`T`,

.. math:: L = \\alpha\\, T^2\\, \\mathrm{KL}(p_T^{teacher} \\,\\|\\, p_T^{student})
          + (1 - \\alpha)\\, \\mathrm{CE}(y, p_1^{student})

The :math:`T^2` keeps the soft term's gradients on the scale of the hard term's as :math:`T`
grows. A teacher is a torch module returning logits or a fitted scikit-learn classifier with
``predict_proba``; for the latter the logits are the log-probabilities (softmax of
:math:`\\log p / T` is :math:`p^{1/T}` renormalised).

Given a run, :func:`distill` logs its hyperparameters, the mean training loss of every epoch
(``train_loss``), the teacher-vs-student numbers, the report ``distillation.json`` and the
student's weights ``student.pt``.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opsloop.learn.eval_mode import in_eval_mode
from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.model_size import count_parameters, median_latency_ms
from opsloop.learn.run_log import RunLog, checked_run, log_json, log_metrics, log_state_dict
from opsloop.learn.torch_import import import_torch


@dataclass(frozen=True)
class DistillationResult:
    """Teacher vs student: accuracy on the evaluation data, parameter count, latency per batch.

    The parameter counts are :func:`~opsloop.learn.model_size.count_parameters`'s: a torch
    module's weights, a tree ensemble's nodes (a forest's over all its trees), another
    scikit-learn estimator's learned numbers. ``size_ratio`` is ``None`` where the teacher
    counts 0 (nothing recognised as learned): no ratio is made up then.

    Accuracies are ``None`` when no evaluation data was given; ``latency_ms`` is the median time
    to predict one batch of the evaluation (or training) rows. ``epoch_losses[e]`` is the mean
    distillation loss over the rows of epoch ``e`` while training; ``final_loss`` the loss of the
    trained student over all training rows.
    """

    temperature: float
    alpha: float
    epochs: int
    teacher_accuracy: float | None
    student_accuracy: float | None
    teacher_parameters: int
    student_parameters: int
    teacher_latency_ms: float
    student_latency_ms: float
    final_loss: float
    epoch_losses: tuple[float, ...] = field(repr=False)
    student: Any = field(repr=False, compare=False)

    @property
    def accuracy_retained(self) -> float | None:
        """Student accuracy as a share of the teacher's."""
        if self.teacher_accuracy is None or self.student_accuracy is None:
            return None
        if self.teacher_accuracy == 0:
            return None
        return self.student_accuracy / self.teacher_accuracy

    @property
    def size_ratio(self) -> float | None:
        """Student parameters as a share of the teacher's; ``None`` (undefined) when the
        teacher's count is 0, a model :func:`~opsloop.learn.model_size.count_parameters`
        finds nothing learned in."""
        if self.teacher_parameters == 0:
            return None
        return self.student_parameters / self.teacher_parameters

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (the student model left out)."""
        return {
            "temperature": self.temperature,
            "alpha": self.alpha,
            "epochs": self.epochs,
            "teacher_accuracy": self.teacher_accuracy,
            "student_accuracy": self.student_accuracy,
            "accuracy_retained": self.accuracy_retained,
            "teacher_parameters": self.teacher_parameters,
            "student_parameters": self.student_parameters,
            "size_ratio": self.size_ratio,
            "teacher_latency_ms": self.teacher_latency_ms,
            "student_latency_ms": self.student_latency_ms,
            "final_loss": self.final_loss,
            "epoch_losses": list(self.epoch_losses),
        }


def distillation_loss(
    student_logits: Any, teacher_probs: Any, targets: Any, *, temperature: float, alpha: float
) -> Any:
    """The distillation loss (a torch scalar) of a batch, averaged over rows.

    ``teacher_probs`` are the teacher's probabilities already softened at ``temperature``.

    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> soft = torch.softmax(logits / 2.0, dim=1)
    >>> float(distillation_loss(logits, soft, torch.tensor([0]), temperature=2.0, alpha=1.0))
    0.0
    """
    torch = import_torch()
    functional = torch.nn.functional
    log_student = functional.log_softmax(student_logits / temperature, dim=1)
    soft = functional.kl_div(log_student, teacher_probs, reduction="batchmean")
    hard = functional.cross_entropy(student_logits, targets)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


def soft_targets(teacher: Any, X: np.ndarray, temperature: float) -> np.ndarray:
    """The teacher's class probabilities at ``temperature`` (rows sum to 1), as float32.

    >>> from sklearn.linear_model import LogisticRegression
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> X = np.array([[0.0], [1.0]])
    >>> np.allclose(soft_targets(teacher, X, 1.0), teacher.predict_proba(X))
    True
    """
    torch = import_torch()
    if isinstance(teacher, torch.nn.Module):
        logits = _eval_logits(teacher, X).double()
        return torch.softmax(logits / temperature, dim=1).numpy().astype(np.float32)
    if not hasattr(teacher, "predict_proba"):
        raise TypeError(
            f"teacher must be a torch module or have predict_proba, got {type(teacher).__name__}"
        )
    classes = getattr(teacher, "classes_", None)
    if classes is not None and not np.array_equal(classes, np.arange(len(classes))):
        raise ValueError(
            f"teacher.classes_ must be 0..n_classes-1 so that columns are class indices, "
            f"got {list(classes)[:10]}"
        )
    proba = np.asarray(teacher.predict_proba(X), dtype=float)
    logits = np.log(np.clip(proba, np.finfo(float).tiny, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _eval_logits(model: Any, X: np.ndarray) -> Any:
    # Read in eval mode (no dropout, frozen batch norm), then put each submodule back as it
    # was: the teacher is only read, and the caller may still be training it.
    torch = import_torch()
    with in_eval_mode(model), torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32))


def _teacher_predict(teacher: Any, X: np.ndarray) -> np.ndarray:
    # A torch teacher is put in eval mode once by the caller around every read (accuracy and
    # timing), so that no mode switch is timed as part of its latency.
    torch = import_torch()
    if isinstance(teacher, torch.nn.Module):
        with torch.no_grad():
            return teacher(torch.as_tensor(X, dtype=torch.float32)).argmax(dim=1).numpy()
    return np.asarray(teacher.predict_proba(X)).argmax(axis=1)


def _student_predict(student: Any, X: np.ndarray) -> np.ndarray:
    torch = import_torch()
    with torch.no_grad():
        return student(torch.as_tensor(X, dtype=torch.float32)).argmax(dim=1).numpy()


def _check_data(data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (X, y) of arrays")
    X = finite_rows(f"{name}: X", data[0], two_d=False, dtype=np.float32)
    y = np.asarray(data[1])
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"{name} must hold a 2-D X and a 1-D y of the same length, got {X.shape}, {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"{name}: y must hold class indices 0..n_classes-1")
    return X, y.astype(np.int64)


def distill(
    teacher: Any,
    student: Any,
    data: tuple[np.ndarray, np.ndarray],
    *,
    temperature: float = 4.0,
    alpha: float = 0.7,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-2,
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    random_state: int = 0,
    run: RunLog | None = None,
) -> DistillationResult:
    """Train ``student`` (a torch module returning logits) on ``data`` to imitate ``teacher``.

    ``data`` and ``test_data`` are pairs ``(X, y)`` with ``y`` the class index (the column of the
    teacher's ``predict_proba``). The student is trained in place with Adam at ``lr``, in
    shuffled batches of ``batch_size``; the teacher is only read. ``run`` (a run from
    ``opsloop.start_run``, see :class:`~opsloop.learn.run_log.RunLog`) receives the params,
    ``train_loss`` per epoch, the report's numbers, ``distillation.json`` and ``student.pt``.

    >>> import torch
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.r_[np.full((20, 2), -2.0), np.full((20, 2), 2.0)].astype("float32")
    >>> y = np.r_[np.zeros(20, int), np.ones(20, int)]
    >>> teacher = LogisticRegression().fit(X, y)
    >>> _ = torch.manual_seed(0)
    >>> result = distill(teacher, torch.nn.Linear(2, 2), (X, y), batch_size=8, test_data=(X, y))
    >>> result.teacher_accuracy, result.student_accuracy
    (1.0, 1.0)
    """
    torch = import_torch()
    run = checked_run(run)
    if not isinstance(student, torch.nn.Module):
        raise TypeError(f"student must be a torch.nn.Module, got {type(student).__name__}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha!r}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
    X, y = _check_data(data, "data")
    check_model_width("data: X", X, teacher, "teacher")
    check_model_width("data: X", X, student, "student")
    # test_data is checked before training, not after it
    X_eval, y_eval = X, y
    if test_data is not None:
        X_eval, y_eval = _check_data(test_data, "test_data")
        check_model_width("test_data: X", X_eval, teacher, "teacher")
        check_model_width("test_data: X", X_eval, student, "student")
    soft = torch.as_tensor(soft_targets(teacher, X, temperature))
    if y.max() >= soft.shape[1]:
        raise ValueError(f"data: y holds class {y.max()} but the teacher has {soft.shape[1]}")
    inputs, targets = torch.as_tensor(X), torch.as_tensor(y)
    if run is not None:
        run.log_params(
            {
                "temperature": temperature,
                "alpha": alpha,
                "epochs": epochs,
                "batch_size": batch_size,
                "lr": lr,
                "random_state": random_state,
                "teacher": type(teacher).__name__,
                "student": type(student).__name__,
                "n_rows": len(X),
            }
        )
    optimiser = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(random_state)
    student.train()
    epoch_losses = []
    for epoch in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        epoch_sum = 0.0
        for start in range(0, len(X), batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = distillation_loss(
                student(inputs[batch]),
                soft[batch],
                targets[batch],
                temperature=temperature,
                alpha=alpha,
            )
            loss.backward()
            optimiser.step()
            epoch_sum += float(loss.detach()) * len(batch)
        epoch_losses.append(epoch_sum / len(X))
        if run is not None:
            run.log_metric("train_loss", epoch_losses[-1], step=epoch)
    student.eval()
    with torch.no_grad():
        final = distillation_loss(
            student(inputs), soft, targets, temperature=temperature, alpha=alpha
        )

    teacher_acc = student_acc = None
    teacher_eval = in_eval_mode(teacher) if isinstance(teacher, torch.nn.Module) else nullcontext()
    with teacher_eval:
        if test_data is not None:
            teacher_acc = float((_teacher_predict(teacher, X_eval) == y_eval).mean())
            student_acc = float((_student_predict(student, X_eval) == y_eval).mean())
        teacher_latency = median_latency_ms(lambda: _teacher_predict(teacher, X_eval))
    result = DistillationResult(
        temperature=float(temperature),
        alpha=float(alpha),
        epochs=int(epochs),
        teacher_accuracy=teacher_acc,
        student_accuracy=student_acc,
        teacher_parameters=count_parameters(teacher),
        student_parameters=count_parameters(student),
        teacher_latency_ms=teacher_latency,
        student_latency_ms=median_latency_ms(lambda: _student_predict(student, X_eval)),
        final_loss=float(final),
        epoch_losses=tuple(epoch_losses),
        student=student,
    )
    if run is not None:
        summary = result.to_dict()
        log_metrics(
            run,
            {
                key: summary[key]
                for key in (
                    "teacher_accuracy",
                    "student_accuracy",
                    "accuracy_retained",
                    "teacher_parameters",
                    "student_parameters",
                    "size_ratio",
                    "teacher_latency_ms",
                    "student_latency_ms",
                    "final_loss",
                )
            },
        )
        log_json(run, summary, "distillation.json")
        log_state_dict(run, student, "student.pt")
    return result
