"""Which stored labels of a window are used: one rule for the evaluation, which scores them,
and the training window, which learns from them, so the window that triggers a retraining
and the data the retraining learns from hold the same labels. A window is one evaluation
window: a training range of several is judged window by window
(:func:`.training_window.labelled_inputs`).

Each label has passed its own answer's check first
(:func:`~opsloop.store.label_values.answer_label`). A window may still mix answers of
several kinds (a version answering text classes, the next one numbers): the window is then
judged as one kind, as the task metric scores it. Where a pair of a prediction and its
label has a text prediction, the window is of **text classes**: a label that is no class
(``0.5``), or whose prediction is no class, is left out. Where every pair is a class pair,
every label is kept. Otherwise the window is of **numbers**, and a text label, which cannot
be subtracted, is left out. A known label whose prediction is not known (an answer that
gave none) is judged by the label alone.

>>> usable_labels(["a", 2.5, "b"], ["a", 3.0, "b"], [0, 1, 2])
([True, False, True], 1)
>>> usable_labels([2.5, 1.0], [3.0, "b"], [0, 1])
([True, False], 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _is_class(value: object) -> bool:
    """Whether ``value`` can be a class: a text, an integer, a bool or a whole float."""
    return isinstance(value, int | str | bool) or (isinstance(value, float) and value.is_integer())


def _class_label(value: object) -> bool:
    return isinstance(value, int | str | bool)


def usable_labels(
    predictions: Sequence[Any], labels: Sequence[Any], answers: Sequence[int]
) -> tuple[list[bool], int]:
    """Per value of a window (the ``predictions`` and ``labels`` of its answers, one per
    record, in order; ``answers`` says which answer each value belongs to), whether its
    label is used (see the module docstring; an unknown label, ``None``, is not), and how
    many answers have a known label that is not: each counted once.

    >>> usable_labels([0, 1, None], [1, None, 2], [0, 0, 1])
    ([True, False, True], 0)
    >>> usable_labels(["a", "b", None], ["a", 0.5, 0.5], [0, 1, 2])
    ([True, False, False], 2)
    """
    pairs = [
        (p, y) for p, y in zip(predictions, labels, strict=True) if p is not None and y is not None
    ]
    if any(isinstance(p, str) for p, _ in pairs):
        keep = [
            y is not None and _class_label(y) and (p is None or _is_class(p))
            for p, y in zip(predictions, labels, strict=True)
        ]
    elif all(_is_class(p) and _class_label(y) for p, y in pairs):
        keep = [y is not None for y in labels]
    else:
        keep = [y is not None and not isinstance(y, str) for y in labels]
    left_out = {
        answer
        for answer, y, k in zip(answers, labels, keep, strict=True)
        if y is not None and not k
    }
    return keep, len(left_out)


__all__ = ["usable_labels"]
