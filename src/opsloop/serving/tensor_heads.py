"""How a tensor model's output becomes an answer: class labels and probabilities, or one
value per row. ONNX and PyTorch variants (:mod:`.onnx_variant`, :mod:`.torch_variant`) share
these rules, so a classifier answers alike whichever format it was registered in.

A version declares what its single output tensor means with its signature's output type
(``register(..., output_type="logits")``): ``"logits"`` makes it a classifier whose rows are
unnormalised scores, one per class (the softmax gives the probabilities) or one per row for
two classes (the logistic function gives the second class's probability). Any other output
type is one value per row (a regressor, or a score). The class labels come from the
version's ``classes`` tag, a JSON list (``tags={"classes": '["no", "yes"]'}``), in the order
of the output's columns; without it they are ``0 .. k-1``.

>>> labels, probabilities = logit_answer(np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([7, 9]))
>>> labels, [round(p, 6) for p in probabilities[0]]
([7, 7], [0.880797, 0.119203])
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from opsloop.errors import InvalidArgumentError

#: The output type that declares a classifier's logits.
LOGITS = "logits"


def plain(values: np.ndarray) -> list:
    """An array as plain Python values (numpy scalars and bytes do not go to JSON).

    >>> plain(np.array([b"a", b"b"])), plain(np.array([1, 2], dtype=np.int64))
    (['a', 'b'], [1, 2])
    """
    if values.dtype.kind == "S":
        return [v.decode() for v in values.tolist()]
    return values.tolist()


def declared_classes(tags: Mapping[str, str] | None, where: str) -> np.ndarray | None:
    """The class labels the version's ``classes`` tag declares (a JSON list of distinct
    strings or of distinct integers), ``None`` without the tag.

    >>> declared_classes({"classes": '["no", "yes"]'}, "m").tolist()
    ['no', 'yes']
    >>> declared_classes({"classes": "no,yes"}, "models:/m/1")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: models:/m/1: tag 'classes' must be a JSON list of ...
    """
    text = (tags or {}).get("classes")
    if text is None:
        return None
    try:
        classes = json.loads(text)
    except ValueError:
        classes = None
    kinds = {type(c) for c in classes} if isinstance(classes, list) else set()
    if not classes or len(kinds) != 1 or kinds - {str, int} or len(set(classes)) != len(classes):
        raise InvalidArgumentError(
            f"{where}: tag 'classes' must be a JSON list of distinct strings or of distinct "
            f"integers, one per output column, got {text[:200]!r}"
        )
    return np.array(classes, dtype=object if str in kinds else np.int64)


def logit_classes(declared: np.ndarray | None, width: int, where: str) -> np.ndarray:
    """The classes of a logits output ``width`` columns wide (1: two classes): the declared
    ones, which must be as many, or ``0 .. k-1``.

    >>> logit_classes(None, 1, "m").tolist(), logit_classes(None, 3, "m").tolist()
    ([0, 1], [0, 1, 2])
    >>> logit_classes(np.array([0, 1, 2]), 2, "models:/m/1")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: models:/m/1: tag 'classes' names 3 classes, the ...
    """
    count = 2 if width == 1 else width
    if declared is None:
        return np.arange(count, dtype=np.int64)
    if len(declared) != count:
        raise InvalidArgumentError(
            f"{where}: tag 'classes' names {len(declared)} classes, the model's logits output "
            f"has {width} column{'s' if width != 1 else ''} ({count} classes)"
        )
    return declared


def logit_answer(logits: np.ndarray, classes: np.ndarray) -> tuple[list, list[list[float]]]:
    """The labels and probabilities of ``logits`` (rows of class scores, or one score per
    row for two classes), computed in float64: one column (or none), the second class where
    the score is positive and probabilities ``[1 - expit(s), expit(s)]``; more, the class of
    the highest score (the first of equal ones) and the softmax. The labels come from the
    scores, which can differ where rounded probabilities tie.

    >>> labels, probabilities = logit_answer(np.array([0.0, 3.0]), np.array([0, 1]))
    >>> labels, [round(p, 6) for p in probabilities[1]]
    ([0, 1], [0.047426, 0.952574])
    """
    from scipy.special import expit, softmax

    scores = np.asarray(logits, dtype=np.float64)
    if scores.ndim == 1 or scores.shape[1] == 1:
        scores = scores.reshape(-1)
        positive = expit(scores)
        indices = (scores > 0).astype(np.intp)
        probabilities = np.stack([1 - positive, positive], axis=1)
    else:
        indices = np.argmax(scores, axis=1)
        probabilities = softmax(scores, axis=1)
    return plain(classes.take(indices)), probabilities.tolist()


def value_answer(output: np.ndarray) -> list:
    """One value per row from an output of shape ``[n]`` or ``[n, 1]``, as Python floats.

    >>> value_answer(np.array([[1.5], [2.0]], dtype=np.float32))
    [1.5, 2.0]
    """
    return np.asarray(output, dtype=np.float64).reshape(-1).tolist()


def output_width(shape: tuple[int, ...], rows: int, what: str, where: str) -> int:
    """The columns of an output of shape ``[rows]`` (1) or ``[rows, k]`` (k); anything else
    is refused, naming the output and the shape found.

    >>> output_width((4, 3), 4, "output 'y'", "m"), output_width((4,), 4, "output 'y'", "m")
    (3, 1)
    >>> output_width((4, 3, 2), 4, "output 'y'", "models:/m/1")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: models:/m/1: output 'y' has shape (4, 3, 2) for 4 ...
    """
    if len(shape) in (1, 2) and shape[0] == rows and (len(shape) == 1 or shape[1] >= 1):
        return 1 if len(shape) == 1 else int(shape[1])
    raise InvalidArgumentError(
        f"{where}: {what} has shape {tuple(shape)} for {rows} rows; the serving runtime "
        f"takes [rows] or [rows, columns]"
    )
