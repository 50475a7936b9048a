"""What a label may be, checked where a label comes in and where a stored one is read.

A label is the true outcome of an answered request. An answer to **one record** takes one
scalar: a finite number, a bool, or a text of at most :data:`MAX_LABEL_CHARACTERS`
characters (a list of that one scalar is read the same). An answer to **several records**
takes a list with one such scalar per record, in the request's order; ``null`` in the list
says that record's outcome is not known. Anything else (an object, a nested list, NaN, a
list whose length is not the number of records) is refused with the rule named:

>>> checked_label(1), checked_label("malignant"), checked_label([1, None, 0], records=3)
(1, 'malignant', [1, None, 0])
>>> checked_label({"a": 1})
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: label: must be a finite number, a bool or a text of at most 1000 characters, or a list of them (one per record), got an object
>>> checked_label([1, 0, 1], records=2)
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: label: expected 2 values, one per record, got 3

It lives in the state layer beside :mod:`.label_join`, for the same reason: the serving
layer's feedback and the monitoring's ``log_labels`` take labels, and the monitoring reads
them back (:func:`per_record_labels`), so all three hold one rule. A label kept before the
rule existed is read back as unusable (``None``) rather than breaking the reader.
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from opsloop.errors import InvalidArgumentError

#: The longest text label kept (a class name, not a document).
MAX_LABEL_CHARACTERS = 1_000
#: The key of an answer's output that says, when false, that its ``"classes"`` are not the
#: model's classes but the probability columns' positions (``0 .. k-1``).
CLASSES_NAMED = "classes_named"
#: The most values of one label: the most records one request may hold.
MAX_LABEL_VALUES = 10_000
# Integers beyond 64 bits are refused: the monitoring reads labels into numpy arrays.
_INT_RANGE = (-(2**63), 2**63 - 1)

_RULE = (
    f"must be a finite number, a bool or a text of at most {MAX_LABEL_CHARACTERS} "
    "characters, or a list of them (one per record)"
)


def _scalar_problem(value: Any) -> str | None:
    """Why ``value`` is not one record's label, or ``None`` when it is one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        low, high = _INT_RANGE
        if low <= value <= high:
            return None
        # Excerpted: a label of thousands of digits is not repeated whole in the refusal.
        digits = str(abs(value)) if value.bit_length() < 4_000 else None
        shown = (
            f"{digits[:8]}... ({len(digits)} digits)"
            if digits
            else f"an integer of {value.bit_length()} bits"
        )
        return f"{_RULE}; {'-' if value < 0 else ''}{shown} is beyond 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be finite, got {value}"
    if isinstance(value, str):
        if len(value) <= MAX_LABEL_CHARACTERS:
            return None
        return f"{_RULE}; got a text of {len(value)} characters"
    kinds: dict[type, str] = {dict: "an object", list: "a nested list"}
    kind = kinds.get(type(value), type(value).__name__)
    return f"{_RULE}, got {kind}"


def plain_label(label: Any) -> Any:
    """``label`` as JSON holds it: a numpy scalar as its Python value (``.item()``), a
    tuple or a 1-d numpy array as a list, each value of a list likewise; anything else as it is, for
    :func:`checked_label` to judge. A float NaN stays NaN (refused there).

    >>> plain_label(np.int64(3)), plain_label((np.bool_(True), np.float32(0.5), None))
    (3, [True, 0.5, None])
    """
    if isinstance(label, np.generic):
        return label.item()
    if isinstance(label, np.ndarray) and label.ndim == 1:
        label = label.tolist()
    if isinstance(label, tuple | list):
        return [v.item() if isinstance(v, np.generic) else v for v in label]
    return label


def checked_label(label: Any, records: int | None = None, *, field: str = "label") -> Any:
    """``label`` when it is a label for an answer to ``records`` records (``None``: the
    count is not known here, only the shape is checked); else
    :class:`~opsloop.errors.InvalidArgumentError` naming ``field`` and the rule.

    >>> checked_label(float("nan"))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label: must be finite, got nan
    >>> checked_label(0, records=2)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label: the answer has 2 records; give a list of 2 values, one per record
    >>> checked_label([[1], [0]])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label[0]: must be a finite number, a bool or a text of at most 1000 characters, or a list of them (one per record), got a nested list
    """  # noqa: E501 - a doctest's expected output is one line
    if label is None:
        raise InvalidArgumentError(f"{field}: must not be null")
    if not isinstance(label, list):
        problem = _scalar_problem(label)
        if problem is not None:
            raise InvalidArgumentError(f"{field}: {problem}")
        if records is not None and records > 1:
            raise InvalidArgumentError(
                f"{field}: the answer has {records} records; give a list of {records} "
                "values, one per record"
            )
        return label
    if len(label) > MAX_LABEL_VALUES:
        raise InvalidArgumentError(
            f"{field}: at most {MAX_LABEL_VALUES} values (one per record), got {len(label)}"
        )
    if records is not None and len(label) != records:
        raise InvalidArgumentError(
            f"{field}: expected {records} values, one per record, got {len(label)}"
        )
    for at, value in enumerate(label):
        problem = None if value is None else _scalar_problem(value)
        if problem is not None:
            raise InvalidArgumentError(f"{field}[{at}]: {problem}")
    return label


@dataclass(frozen=True)
class _ClassList:
    """What one class list says, worked out once per distinct list: the classes without
    nulls (``named``), each class by itself (``index``: a value equal to one, as Python
    compares them, finds it) when every class is a scalar, else ``None``; whether a class
    is a text (``text``) and whether every class is an integer or a bool (``integers``)."""

    named: tuple[Any, ...]
    index: dict[Any, Any] | None
    text: bool
    integers: bool


def _worked_out(classes: tuple[Any, ...]) -> _ClassList:
    named = tuple(c for c in classes if c is not None)
    scalar = all(isinstance(c, str | int | float) for c in named)
    return _ClassList(
        named,
        dict(zip(named, named, strict=True)) if named and scalar else None,
        any(isinstance(c, str) for c in named),
        all(isinstance(c, int) for c in named),
    )


# Keyed by the classes and their types: 1, 1.0 and True are equal and hash alike, but
# the classes [0, 1] are integer classes and [0.0, 1.0] are numbers.
@functools.lru_cache(maxsize=32)
def _cached(classes: tuple[Any, ...], types: tuple[type, ...]) -> _ClassList:
    return _worked_out(classes)


def _class_list(classes: list[Any] | None) -> _ClassList | None:
    """:class:`_ClassList` of ``classes`` (``None`` for none). Every label of an answer is
    judged by its answer's classes, and a batch's answers mostly carry one list (a model
    may have thousands of classes): that list is worked out once, not per label."""
    if classes is None:
        return None
    try:
        return _cached(tuple(classes), tuple(map(type, classes)))
    except TypeError:  # a class that is a list (a multi-output model's): not hashable
        return _worked_out(tuple(classes))


def answer_kind(predictions: list[Any], classes: list[Any] | None = None) -> str | None:
    """What kind of label an answer with ``predictions`` (one per record) takes, where
    ``classes`` is the class list its output carries (a classifier's, beside its
    probabilities; ``None`` when it carries none, an empty list when their names are not
    known): ``"text"`` when the model answers text classes, ``"classes"`` when it answers
    integer (or bool) classes, ``"numbers"`` otherwise (a regression, even one answering
    integers such as a count; or classes kept as floats: a number cannot be told from a
    class there). ``None`` when the answer says nothing about its kind: every prediction
    is null and it carries no classes.

    >>> answer_kind(["setosa", None]), answer_kind([0, 2], [0, 1, 2]), answer_kind([3, 5])
    ('text', 'classes', 'numbers')
    >>> answer_kind([None]), answer_kind([None], ["no", "yes"]), answer_kind([1.0], [0.0, 1.0])
    (None, 'text', 'numbers')
    >>> answer_kind([-1], [])
    'classes'
    """
    return _kind(predictions, _class_list(classes))


def _kind(predictions: list[Any], listed: _ClassList | None) -> str | None:
    known = [p for p in predictions if p is not None]
    if (listed is not None and listed.text) or any(isinstance(v, str) for v in known):
        return "text"
    if not known and (listed is None or not listed.named):
        return None
    # Integers alone are no classes: a count regression answers them too. Only an answer
    # that carries class information (its classes, beside the probabilities) is judged so.
    if listed is not None and listed.integers and all(isinstance(v, int) for v in known):
        return "classes"  # bool is an int
    return "numbers"


#: The most classes a refusal lists (a model may have thousands).
_SHOWN_CLASSES = 10


def answer_classes(predictions: list[Any], classes: list[Any] | None) -> list[Any] | None:
    """The classes a label of an answer with ``predictions`` must be one of: the class
    list the answer carries (``classes``), when it names them, each a scalar, and holds
    every known prediction (a classifier answers one of its classes); else ``None``, and
    any value of the answer's kind is taken. Probabilities logged without ``classes=`` and
    without a reference to name their columns carry no names (:func:`answer_of` reads
    them as ``[]``); a list that does not hold the predictions does not name the model's
    classes either (columns named ``0 .. k-1`` before that was recorded), nor does a
    multi-output model's (one list per output).

    >>> answer_classes(["b", None], ["a", "b"]), answer_classes([None], [0, 1, 2])
    (['a', 'b'], [0, 1, 2])
    >>> answer_classes(["no"], [0, 1]), answer_classes([3.5], None), answer_classes([1], [])
    (None, None, None)
    >>> answer_classes([[1, 0]], [[0, 1], [0, 1]]) is None
    True
    """
    listed = _members(predictions, _class_list(classes))
    return None if listed is None else list(listed.named)


def _members(predictions: list[Any], listed: _ClassList | None) -> _ClassList | None:
    """``listed`` when a label must be one of its classes (:func:`answer_classes`)."""
    if listed is None or listed.index is None:
        return None
    index = listed.index
    for p in predictions:
        if p is not None and not (isinstance(p, str | int | float) and p in index):
            return None
    return listed


def _value_problem(value: Any, kind: str | None, listed: _ClassList | None) -> str | None:
    """Why the scalar ``value`` is not a label of an answer of ``kind`` whose classes are
    ``listed`` (:func:`_members`), or ``None``."""
    if kind is None:
        return None  # an answer with no prediction says nothing about its label's kind
    if kind == "text":
        if not isinstance(value, str):
            return f"the model answers text classes; give a class as a text, got {value!r}"
    elif kind == "classes":
        if isinstance(value, str):
            return (
                f"the model answers classes (integers); give a class, got the text {value[:40]!r}"
            )
        if isinstance(value, float) and not value.is_integer():
            return f"the model answers classes (integers); give a class, got {value!r}"
    elif isinstance(value, str):
        return f"the model answers numbers; give a number, got the text {value[:40]!r}"
    # Python's equality, as numpy compares labels with predictions: 1.0 and True are 1.
    if listed is None or listed.index is None or value in listed.index:
        return None
    named = listed.named
    shown = ", ".join(repr(c) for c in named[:_SHOWN_CLASSES])
    if len(named) > _SHOWN_CLASSES:
        shown += ", ..."
    got = repr(value[:40]) if isinstance(value, str) else repr(value)
    return (
        f"the model answers one of its {len(named)} classes ({shown}); give one of them, got {got}"
    )


def _as_class(value: Any, kind: str | None, listed: _ClassList | None, predictions: list) -> Any:
    """A label ``value`` that fits an answer of integer classes, as the class it equals:
    the class the answer names, else a prediction it equals, else a whole float as the
    integer (``0.0`` is the class ``0``). The task metric and the retraining then see a
    class, not a number: ``0.0`` beside ``1`` would turn accuracy into a mean error."""
    if kind != "classes" or value is None or isinstance(value, str):
        return value
    if listed is not None and listed.index is not None and value in listed.index:
        return listed.index[value]
    for p in predictions:
        if p is not None and not isinstance(p, str) and p == value:
            return p
    return int(value) if isinstance(value, float) else value


def label_for_answer(
    label: Any,
    records: int | None = None,
    predictions: list[Any] | None = None,
    *,
    classes: list[Any] | None = None,
    field: str = "label",
) -> Any:
    """``label`` as it is kept, when it is a label of an answer to ``records`` records
    whose ``predictions`` are those given (either ``None``: not known where the label
    comes in, so not checked) and that carries ``classes`` (``None``: none, see
    :func:`answer_kind`); else :class:`~opsloop.errors.InvalidArgumentError` naming
    ``field`` (and the record's position) and the rule. This is the one check of every
    way a label comes in (the feedback, :func:`opsloop.monitoring.log_labels`, a review
    answer): its shape and count (:func:`checked_label`), each known value's kind against
    the answer's (:func:`answer_kind`): a text for text classes, an integer (or a whole
    float) or a bool for integer classes, a number or a bool for numbers; and, where the
    answer names its classes (:func:`answer_classes`), one of them. A value of an answer
    of integer classes is kept as the class it equals (``2.0`` and ``True`` as the
    classes ``2`` and ``1``).

    >>> label_for_answer([1, None], 2, [0, 1]), label_for_answer(3.5, 1, [3])
    ([1, None], 3.5)
    >>> label_for_answer([1, 0.5], 2, [0, 1], classes=[0, 1], field="labels[3]")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: labels[3][1]: the model answers classes (integers); give a class, got 0.5
    >>> label_for_answer("high", 1, [148.3])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label: the model answers numbers; give a number, got the text 'high'
    >>> label_for_answer(0, 1, ["setosa"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label: the model answers text classes; give a class as a text, got 0
    >>> label_for_answer("zinfandel", 1, ["class_1"], classes=["class_0", "class_1", "class_2"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label: the model answers one of its 3 classes ('class_0', 'class_1', 'class_2'); give one of them, got 'zinfandel'
    >>> label_for_answer([2.0, True], 2, [0, 2], classes=[0, 1, 2]), label_for_answer(-1.0, 1, [1], classes=[])
    ([2, 1], -1)
    """  # noqa: E501 - a doctest's expected output is one line
    label = checked_label(label, records, field=field)
    if predictions is None:
        return label
    listed = _class_list(classes)
    kind, members = _kind(predictions, listed), _members(predictions, listed)
    values = label if isinstance(label, list) else [label]
    for at, value in enumerate(values):
        problem = None if value is None else _value_problem(value, kind, members)
        if problem is not None:
            where = f"{field}[{at}]" if isinstance(label, list) else field
            raise InvalidArgumentError(f"{where}: {problem}")
    kept = [_as_class(v, kind, members, predictions) for v in values]
    if all(k is v for k, v in zip(kept, values, strict=True)):
        return label  # as given: the caller keeps the text it has
    return kept if isinstance(label, list) else kept[0]


def answer_label(
    label: list[Any], predictions: list[Any], classes: list[Any] | None = None
) -> list[Any] | None:
    """The stored label ``label`` (one value per record, ``None`` where not known) as it
    is used, when it is of the kind of the answer ``predictions`` carrying ``classes`` and
    one of those classes where it names them (:func:`label_for_answer`'s rule, and its
    values as the classes they equal); ``None`` when it does not fit. The monitoring's
    evaluation and its training window read a stored label by this one rule, the one
    labels coming in are checked by, so the window that triggers a retraining and the
    data it learns from agree; a label kept before that rule existed is read as a label
    that comes in now would be kept.

    >>> answer_label([1, None], [0, 1]), answer_label([0.0, True], [0, 1], [0, 1, 2])
    ([1, None], [0, 1])
    >>> answer_label(["malignant", 0], [1, 0]), answer_label([3], [0, 1], [0, 1])
    (None, None)
    """
    listed = _class_list(classes)
    kind, members = _kind(predictions, listed), _members(predictions, listed)
    if any(v is not None and _value_problem(v, kind, members) is not None for v in label):
        return None
    return label if kind != "classes" else [_as_class(v, kind, members, predictions) for v in label]


def fits_answer(label: list[Any], predictions: list[Any], classes: list[Any] | None = None) -> bool:
    """Whether the label ``label`` (one value per record, ``None`` where not known) is of
    the kind of the answer ``predictions`` carrying ``classes``, and one of those classes
    where it names them (:func:`answer_label` is not ``None``).

    >>> fits_answer([1, None], [0, 1]), fits_answer(["b"], ["a"]), fits_answer([0.5], [0, 1])
    (True, True, True)
    >>> fits_answer(["malignant", 0], [1, 0]), fits_answer([0.5], ["a"])
    (False, False)
    >>> fits_answer([0.5], [0, 1], [0, 1]), fits_answer(["b"], [None])
    (False, True)
    >>> fits_answer([3], [0, 1], [0, 1]), fits_answer(["c"], ["a"], ["a", "b"])
    (False, False)
    """
    return answer_label(label, predictions, classes) is not None


def per_record_labels(label_json: str, records: int) -> list[Any] | None:
    """The stored label ``label_json`` as one value per record of an answer to ``records``
    records (``None`` for a record whose outcome is not known), or ``None`` when it is not
    a label of that answer: a shape :func:`checked_label` refuses, kept before it did.

    >>> per_record_labels("1", 1), per_record_labels("[1, null]", 2)
    ([1], [1, None])
    >>> per_record_labels('[[1], [0]]', 2), per_record_labels("NaN", 1), per_record_labels("[1]", 2)
    (None, None, None)
    """
    try:
        label = json.loads(label_json)
    except ValueError:
        return None
    if records == 1 and not isinstance(label, list):
        label = [label]
    try:
        checked_label(label, records)
    except InvalidArgumentError:
        return None
    return label


def answer_of(output: Any) -> tuple[list[Any] | None, list[Any] | None]:
    """The predictions (one per record) and the classes of an answer's ``output`` (its
    dictionary, as the serving runtime records it), each ``None`` when the output does not
    say. An output with probabilities but no class names carries classes all the same
    (an empty list: their names are not known), and so does one whose column names are
    only positions (``"classes_named": false``, :data:`CLASSES_NAMED`): probabilities
    logged without ``classes=``, whose columns are named ``0 .. k-1`` for the reads that
    match them by position, say nothing about which labels the model's classes are.

    >>> answer_of({"predictions": [1], "probabilities": [[0.2, 0.8]], "classes": [0, 1]})
    ([1], [0, 1])
    >>> answer_of({"predictions": [1], "probabilities": [[0.2, 0.8]]}), answer_of([1])
    (([1], []), (None, None))
    >>> answer_of({"predictions": [-1], "probabilities": [[0.6, 0.4]], "classes": [0, 1],
    ...            "classes_named": False})
    ([-1], [])
    """
    if not isinstance(output, dict):
        return None, None
    values, classes = output.get("predictions"), output.get("classes")
    if not isinstance(classes, list) or output.get(CLASSES_NAMED) is False:
        classes = [] if isinstance(output.get("probabilities"), list) else None
    return (values if isinstance(values, list) else None), classes


def recorded_answer(output_json: str | None) -> tuple[list[Any] | None, list[Any] | None]:
    """:func:`answer_of` a stored answer's ``output_json`` (``(None, None)`` without one).

    >>> recorded_answer('{"predictions": [3, 5], "probabilities": null, "classes": null}')
    ([3, 5], None)
    """
    if output_json is None:
        return None, None
    try:
        return answer_of(json.loads(output_json))
    except ValueError:
        return None, None


def answer_predictions(output_json: str | None) -> list[Any] | None:
    """The predictions of a stored answer, one per record, or ``None`` when the answer
    does not say.

    >>> answer_predictions('{"predictions": [0, 1, 1]}'), answer_predictions(None)
    ([0, 1, 1], None)
    """
    return recorded_answer(output_json)[0]


__all__ = [
    "CLASSES_NAMED",
    "MAX_LABEL_CHARACTERS",
    "MAX_LABEL_VALUES",
    "answer_classes",
    "answer_kind",
    "answer_label",
    "answer_of",
    "answer_predictions",
    "checked_label",
    "fits_answer",
    "label_for_answer",
    "per_record_labels",
    "plain_label",
    "recorded_answer",
]
