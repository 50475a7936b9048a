"""Which columns of a version's training data its reference keeps: the model's inputs.

A training frame often holds more than the inputs: the label (``X.assign(target=y)``), an
id, a weight. A request can never carry those (the signature refuses a field it does not
name), so a reference that kept one would count it missing in every monitored window. The
reference of a version keeps:

* the signature's input columns, in the signature's order, when the version has a
  signature: a training column it does not name is left out (and logged), and an input
  column missing from the training data is refused, since the inputs could not be compared;
* every column but the label when there is no signature;
* the column ``label_column`` names, apart, as the reference's labels (what the
  reference's own error and a labelled training window read), never as an input.

>>> import pandas as pd
>>> frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "target": [0, 1]})
>>> inputs, labels = training_inputs(frame, ["b", "a"], "target")
>>> list(inputs.columns), labels.tolist()
(['b', 'a'], [0, 1])
>>> list(training_inputs(frame, ["a", "b"], None)[0].columns)
['a', 'b']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from opsloop.errors import InvalidArgumentError

_log = logging.getLogger(__name__)
#: Names shown at most in a message about columns.
_NAMES_SHOWN = 10


def _names(columns: Sequence[object]) -> str:
    shown = ", ".join(repr(str(c)) for c in list(columns)[:_NAMES_SHOWN])
    more = len(columns) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def training_inputs(
    training_data: pd.DataFrame, inputs: Sequence[str] | None, label_column: str | None
) -> tuple[pd.DataFrame, pd.Series | None]:
    """``training_data``'s input columns (``inputs``, the signature's; every column but
    the label when ``None``) and its labels (the ``label_column``; ``None`` when not
    given), as the module says.

    >>> frame = pd.DataFrame({"a": [1.0], "target": [0]})
    >>> training_inputs(frame, ["a", "c"], "target")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: training_data: lacks the signature's input column 'c'
    >>> training_inputs(frame, ["a"], "y")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label_column: 'y' is not a column of training_data (columns: 'a', 'target')
    >>> training_inputs(frame, ["a", "target"], "target")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label_column: 'target' is an input of the signature, not a label
    """  # noqa: E501 - a doctest's expected output is one line
    columns = [str(c) for c in training_data.columns]
    frame = training_data.set_axis(columns, axis=1)
    labels = None
    if label_column is not None:
        if not isinstance(label_column, str):
            raise InvalidArgumentError(
                f"label_column: a column name, got {type(label_column).__name__}"
            )
        if label_column not in columns:
            raise InvalidArgumentError(
                f"label_column: {label_column!r} is not a column of training_data "
                f"(columns: {_names(columns)})"
            )
        if inputs is not None and label_column in inputs:
            raise InvalidArgumentError(
                f"label_column: {label_column!r} is an input of the signature, not a label"
            )
        labels = frame[label_column].reset_index(drop=True)
    if inputs is None:
        kept = [c for c in columns if c != label_column]
    else:
        missing = [c for c in inputs if c not in columns]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise InvalidArgumentError(
                f"training_data: lacks the signature's input column{plural} {_names(missing)}"
            )
        kept = list(inputs)
        left_out = [c for c in columns if c not in kept and c != label_column]
        if left_out:
            # Not an error: the frame a model was trained from often holds a label, an id
            # or a weight beside its inputs; no request can carry them.
            _log.warning(
                "training_data: the reference keeps the signature's inputs; left out %s "
                "(name a label with label_column to keep it as the reference's labels)",
                _names(left_out),
            )
    return frame[kept].reset_index(drop=True), labels
