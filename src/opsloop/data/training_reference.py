"""What live inputs (and outputs) are compared with, usually the training data: its profile,
its inferred schema (for out-of-schema rates) and a bounded seeded sample of its rows (for
exact two-sample tests), built from a DataFrame with no store.

Monitoring keeps one per deployment (:func:`opsloop.monitoring.reference.set_reference`); the
registry keeps one per model version registered with its training data, which monitoring
uses for a deployment with none set. Both are :func:`build_reference` of the same frame, so
they are equal. ``predictions`` (the model's outputs on ``frame``) add the reference of the
output distribution, ``labels`` the reference's own error, and a classifier's
``probabilities`` (with the labels) what the estimate of a window's metrics is calibrated on
(:class:`~opsloop.data.reference_scores.ReferenceScores`).

>>> import pandas as pd
>>> ref = build_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
>>> ref.features, ref.profile["x"].numeric.mean, len(ref.sample), ref.has_labels
(('x', 'c'), 2.0, 3, False)
>>> decode_reference(encode_reference(ref), "training_reference").to_bytes() == ref.to_bytes()
True
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from opsloop.data.drift import ReferenceProfile
from opsloop.data.profile import Profile, profile
from opsloop.data.reference_scores import ReferenceScores
from opsloop.data.row_sample import RowSample
from opsloop.data.schema import Schema, infer_schema
from opsloop.errors import InvalidArgumentError

#: Rows of the reference kept for exact tests, unless ``sample_size`` says otherwise.
REFERENCE_SAMPLE_SIZE = 5000
#: The column that holds the model's output among a window's (and a reference's) rows.
PREDICTION_COLUMN = "prediction"
#: The sample's column of the reference's labels (a name no input will have).
LABEL_COLUMN = "__label__"
#: The most bytes an encoded reference (and the sample in it) may unpack to: a sample of
#: :data:`REFERENCE_SAMPLE_SIZE` rows of a few hundred columns, with its profile. A client's
#: few compressed bytes never unpack to more.
MAX_DECODED_BYTES = 64 * 1024 * 1024
#: What rebuilding a part from a client's malformed state raises.
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError)


@dataclass(frozen=True)
class Reference:
    """The reference's input ``features``, ``profile`` (inputs, and the
    :data:`PREDICTION_COLUMN` when ``has_predictions``), ``schema`` of the inputs and
    ``sample`` of rows (with the :data:`LABEL_COLUMN` when ``has_labels``), and the model's
    ``scores`` on it with the labels (``None`` unless probabilities were given)."""

    features: tuple[str, ...]
    profile: Profile
    schema: Schema
    sample: RowSample
    has_predictions: bool
    has_labels: bool = False
    scores: ReferenceScores | None = None

    @cached_property
    def drift_profile(self) -> ReferenceProfile:
        """The sample's inputs (and the :data:`PREDICTION_COLUMN` when ``has_predictions``)
        summarised for the drift tests: numbers sorted, categories counted. Built on first
        use and kept, so that the windows compared with one reference share one summary
        instead of sorting the reference's columns again for each window; equal to what
        :func:`opsloop.data.drift.compare` summarises from :meth:`RowSample.frame`.

        >>> import pandas as pd
        >>> ref = build_reference(pd.DataFrame({"x": [3.0, 1.0, 2.0]}))
        >>> ref.drift_profile["x"].sample.values.tolist()
        [1.0, 2.0, 3.0]
        >>> ref.drift_profile is ref.drift_profile
        True
        """
        columns = list(self.features) + ([PREDICTION_COLUMN] if self.has_predictions else [])
        return ReferenceProfile.from_frame(self.sample.frame(), columns)

    def classes_json(self) -> str:
        """The classes of the probabilities it keeps, as JSON as :meth:`to_bytes` writes
        them (``"null"`` when it keeps none): what a store keeps beside the bytes, so that
        the classes are read without the sample (:func:`classes_from_json` reads it back).

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
        >>> ref = build_reference(frame, labels=["no", "yes", "no", "yes"],
        ...                       probabilities=[0.2, 0.9, 0.4, 0.6], classes=["no", "yes"])
        >>> ref.classes_json(), build_reference(frame).classes_json()
        ('["no","yes"]', 'null')
        """
        classes = None if self.scores is None else list(self.scores.classes)
        return json.dumps(classes, separators=(",", ":"), default=str)

    def to_bytes(self) -> bytes:
        """Compressed JSON of everything (:meth:`from_bytes` reads it back)."""
        state = {
            "features": list(self.features),
            "profile": self.profile.to_state(),
            "schema": self.schema.to_dict(),
            "sample": base64.b64encode(self.sample.to_bytes()).decode(),
            "has_predictions": self.has_predictions,
            "has_labels": self.has_labels,
            "scores": None if self.scores is None else self.scores.to_state(),
        }
        return zlib.compress(json.dumps(state, separators=(",", ":"), default=str).encode(), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        """Rebuild from :meth:`to_bytes`."""
        state = json.loads(zlib.decompress(data))
        return cls(
            tuple(state["features"]),
            Profile.from_state(state["profile"]),
            Schema.from_dict(state["schema"]),
            RowSample.from_bytes(base64.b64decode(state["sample"])),
            bool(state["has_predictions"]),
            bool(state.get("has_labels", False)),  # references set before labels were kept
            None if state.get("scores") is None else ReferenceScores.from_state(state["scores"]),
        )


def classes_from_json(text: str) -> tuple | None:
    """The classes :meth:`Reference.classes_json` wrote, as the reference read from its
    bytes holds them (``None`` when it keeps no probabilities).

    >>> classes_from_json('["no","yes"]'), classes_from_json("null")
    (('no', 'yes'), None)
    """
    classes = json.loads(text)
    return None if classes is None else tuple(classes)


def build_reference(
    frame: pd.DataFrame,
    *,
    predictions: Sequence | np.ndarray | None = None,
    labels: Sequence | np.ndarray | None = None,
    probabilities: Sequence | np.ndarray | None = None,
    classes: Sequence | None = None,
    sample_size: int = REFERENCE_SAMPLE_SIZE,
    seed: int = 0,
) -> Reference:
    """The reference of ``frame`` (and of the model's ``predictions`` on it), keeping a
    seeded sample of at most ``sample_size`` rows. ``probabilities`` (one row per row of
    ``frame``, one column per class of ``classes``, default ``0 .. k-1``) need the
    ``labels``.

    >>> build_reference(pd.DataFrame())
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: frame: the reference needs at least one row and column
    >>> len(build_reference(pd.DataFrame({"x": range(10)}), sample_size=4).sample)
    4
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgumentError(f"frame: a pandas DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise InvalidArgumentError("frame: the reference needs at least one row and column")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise InvalidArgumentError(f"sample_size: a whole number of rows >= 1, got {sample_size!r}")
    frame = frame.rename(columns=str).reset_index(drop=True)
    for kept, what in ((PREDICTION_COLUMN, "the model's output"), (LABEL_COLUMN, "labels")):
        if kept in frame.columns:
            raise InvalidArgumentError(f"frame: the column name {kept!r} is kept for {what}")
    scores = None
    if probabilities is not None:
        if labels is None:
            raise InvalidArgumentError(
                "labels: the probabilities calibrate the estimate against the true labels; "
                "give the labels too"
            )
        if len(probabilities) != len(frame):
            raise InvalidArgumentError(
                f"probabilities: {len(probabilities)} rows for {len(frame)} rows; give one per row"
            )
        scores = ReferenceScores.of(probabilities, labels, classes, inputs=frame, seed=seed)
    elif classes is not None:
        raise InvalidArgumentError("classes: name the columns of probabilities; give those too")
    schema = infer_schema(frame)
    rows = frame
    for field, values, column in (
        ("predictions", predictions, PREDICTION_COLUMN),
        ("labels", labels, LABEL_COLUMN),
    ):
        if values is None:
            continue
        values = np.asarray(values).reshape(-1)
        if len(values) != len(frame):
            raise InvalidArgumentError(
                f"{field}: {len(values)} values for {len(frame)} rows; give one per row"
            )
        rows = rows.assign(**{column: values})
    ids = [str(i) for i in range(len(rows))]
    return Reference(
        tuple(frame.columns),
        profile(rows),
        schema,
        RowSample.of(rows, ids, sample_size, seed),
        predictions is not None,
        labels is not None,
        scores,
    )


def encode_reference(reference: Reference) -> str:
    """``reference`` as text (base64 of :meth:`Reference.to_bytes`), for JSON on the wire;
    :func:`decode_reference` reads it back."""
    return base64.b64encode(reference.to_bytes()).decode()


def decode_reference(
    text: str, field: str, *, max_sample: int = REFERENCE_SAMPLE_SIZE
) -> Reference:
    """The reference in ``text`` (from :func:`encode_reference`), checked as one sent by a
    client is: each mistake an :class:`~opsloop.errors.InvalidArgumentError` that names
    ``field``, and a sample of more than ``max_sample`` rows refused.

    >>> decode_reference("bm90IHppcA==", "training_reference")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: training_reference: not an encoded reference (zlib: ...)
    >>> ref = build_reference(pd.DataFrame({"x": range(10)}))
    >>> decode_reference(encode_reference(ref), "r", max_sample=5)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: r.sample: 10 rows, more than the 5 a reference keeps
    """
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{field}: base64 text, got {type(text).__name__}")
    try:
        packed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidArgumentError(f"{field}: not base64 ({error})") from None
    data = _unpacked(packed, field)
    try:
        state = json.loads(data)
    except ValueError as error:
        raise InvalidArgumentError(f"{field}: not JSON ({error})") from None
    if not isinstance(state, dict):
        raise InvalidArgumentError(f"{field}: a JSON object, got {type(state).__name__}")
    parts = ("features", "profile", "schema", "sample", "has_predictions")
    missing = [part for part in parts if part not in state]
    if missing:
        raise InvalidArgumentError(f"{field}.{missing[0]}: missing")
    features = state["features"]
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) for f in features)
    ):
        raise InvalidArgumentError(f"{field}.features: a non-empty list of column names")
    for flag in ("has_predictions", "has_labels"):
        if not isinstance(state.get(flag, False), bool):
            raise InvalidArgumentError(f"{field}.{flag}: true or false")
    # Each part rebuilt on its own, so that the error names the part that is wrong.
    try:
        profile_state = Profile.from_state(state["profile"])
    except _MALFORMED as error:
        raise InvalidArgumentError(f"{field}.profile: not a profile ({error!r})") from None
    try:
        schema = Schema.from_dict(state["schema"])
    except _MALFORMED as error:
        raise InvalidArgumentError(f"{field}.schema: not a schema ({error!r})") from None
    try:
        packed_sample = base64.b64decode(state["sample"], validate=True)
    except (TypeError, binascii.Error, ValueError) as error:
        raise InvalidArgumentError(f"{field}.sample: not base64 ({error})") from None
    _unpacked(packed_sample, f"{field}.sample")
    try:
        sample = RowSample.from_bytes(packed_sample)
    except (*_MALFORMED, zlib.error) as error:
        raise InvalidArgumentError(f"{field}.sample: not a row sample ({error!r})") from None
    scores = None
    if state.get("scores") is not None:
        try:
            scores = ReferenceScores.from_state(state["scores"])
        except _MALFORMED as error:
            raise InvalidArgumentError(
                f"{field}.scores: not reference scores ({error!r})"
            ) from None
    reference = Reference(
        tuple(features),
        profile_state,
        schema,
        sample,
        state["has_predictions"],
        state.get("has_labels", False),
        scores,
    )
    _check_consistent(reference, field, max_sample)
    return reference


def _unpacked(packed: bytes, field: str) -> bytes:
    unpacker = zlib.decompressobj()
    try:
        data = unpacker.decompress(packed, MAX_DECODED_BYTES)
    except zlib.error as error:
        raise InvalidArgumentError(f"{field}: not an encoded reference (zlib: {error})") from None
    if unpacker.unconsumed_tail:
        raise InvalidArgumentError(
            f"{field}: unpacks to more than {MAX_DECODED_BYTES} bytes; send a smaller sample"
        )
    return data


def _check_consistent(reference: Reference, field: str, max_sample: int) -> None:
    if len(reference.sample) > max_sample:
        raise InvalidArgumentError(
            f"{field}.sample: {len(reference.sample)} rows, more than the {max_sample} a "
            "reference keeps"
        )
    features = list(reference.features)
    expected = features + [PREDICTION_COLUMN] * reference.has_predictions
    expected += [LABEL_COLUMN] * reference.has_labels
    sampled = list(reference.sample.frame().columns)
    if sampled != expected:
        raise InvalidArgumentError(f"{field}.sample: columns {sampled}, expected {expected}")
    schema_columns = [column.name for column in reference.schema.columns]
    if schema_columns != features:
        raise InvalidArgumentError(
            f"{field}.schema: columns {schema_columns}, expected the features {features}"
        )
    if reference.profile.n_rows < len(reference.sample):
        raise InvalidArgumentError(
            f"{field}.profile: {reference.profile.n_rows} rows, fewer than the sample's "
            f"{len(reference.sample)}"
        )
