"""A deployment's reference: what its live inputs (and outputs) are compared with, usually
the training data. Its profile, its inferred schema (for out-of-schema rates) and a bounded
seeded sample of its rows (for exact two-sample tests) are kept in the store.

``set_reference(db, deployment, frame)`` sets it explicitly; ``predictions`` (the model's
outputs on ``frame``) add the reference of the output distribution, and ``labels`` (the true
answers) the reference's own error, against which a window's error is judged
(:mod:`.decay_kind`), and rows a retraining may mix in (:mod:`.training_window`). A
classifier's ``probabilities`` on ``frame`` (one column per class, in the order of
``classes``), with the ``labels`` and the same rows' numeric inputs, are kept as
:class:`~.reference_scores.ReferenceScores`: what the estimate of a window's metrics before
its labels arrive is calibrated on, reweighted by the density ratio of the window's inputs
(:mod:`.window_estimate`). Setting it is recorded in the audit log (entity
``monitor:DEPLOYMENT``).

>>> import pandas as pd
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
>>> _ = set_reference(db, "api", frame, predictions=[0, 1, 0], labels=[0, 1, 1])
>>> ref = get_reference(db, "api")
>>> ref.features, ref.profile["x"].numeric.mean, len(ref.sample), ref.has_labels
(('x', 'c'), 2.0, 3, True)
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.data.drift import ReferenceProfile
from opsloop.data.profile import Profile, profile
from opsloop.data.schema import Schema, infer_schema
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.reference_scores import ReferenceScores
from opsloop.monitoring.reservoir import RowSample
from opsloop.monitoring.window_part import PREDICTION_COLUMN
from opsloop.registry.audit import append_audit
from opsloop.store import tables
from opsloop.store.database import Database, clock_of

_references = tables.monitoring_references
#: Rows of the reference kept for exact tests, unless ``sample_size`` says otherwise.
REFERENCE_SAMPLE_SIZE = 5000
#: The sample's column of the reference's labels (a name no input will have).
LABEL_COLUMN = "__label__"
#: Decoded references kept in this process, by the digest of their stored bytes.
DECODED_KEPT = 8
_decoded: OrderedDict[bytes, Reference] = OrderedDict()
_decoded_lock = threading.Lock()


@dataclass(frozen=True)
class Reference:
    """The reference's input ``features``, ``profile`` (inputs, and the
    :data:`~opsloop.monitoring.window_part.PREDICTION_COLUMN` when ``has_predictions``),
    ``schema`` of the inputs and ``sample`` of rows (with the :data:`LABEL_COLUMN` when
    ``has_labels``), and the model's ``scores`` on it with the labels (``None`` unless
    probabilities were given)."""

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
        >>> ref = set_reference(db, "api", pd.DataFrame({"x": [3.0, 1.0, 2.0]}))
        >>> ref.drift_profile["x"].sample.values.tolist()
        [1.0, 2.0, 3.0]
        >>> ref.drift_profile is ref.drift_profile
        True
        """
        columns = list(self.features) + ([PREDICTION_COLUMN] if self.has_predictions else [])
        return ReferenceProfile.from_frame(self.sample.frame(), columns)

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


@dataclass(frozen=True)
class ReferenceSummary:
    """What a reference holds, without its data: the input ``features``, how many ``rows``
    it was made of, how many of them its ``sample`` keeps, whether it ``has_predictions`` and
    ``has_labels``, and how many rows' probabilities it keeps to calibrate the estimate on
    (``scored_rows``).

    >>> import pandas as pd
    >>> ref = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0, 3.0]}), sample_size=2)
    >>> ReferenceSummary.of(ref)
    ReferenceSummary(features=('x',), rows=3, sample=2, has_predictions=False, has_labels=False, scored_rows=0)
    """  # noqa: E501 - a doctest's expected output is one line

    features: tuple[str, ...]
    rows: int
    sample: int
    has_predictions: bool
    has_labels: bool = False
    scored_rows: int = 0

    @classmethod
    def of(cls, reference: Reference) -> ReferenceSummary:
        """The summary of ``reference``."""
        return cls(
            reference.features,
            reference.profile.n_rows,
            len(reference.sample),
            reference.has_predictions,
            reference.has_labels,
            0 if reference.scores is None else len(reference.scores.labels),
        )

    def to_dict(self) -> dict:
        """The summary as a JSON-safe dict (:meth:`from_dict` reads it back)."""
        return {**asdict(self), "features": list(self.features)}

    @classmethod
    def from_dict(cls, document: dict) -> ReferenceSummary:
        """Rebuild from :meth:`to_dict`.

        >>> summary = ReferenceSummary(("x", "c"), 10, 5, True)
        >>> ReferenceSummary.from_dict(summary.to_dict()) == summary
        True
        """
        return cls(**{**document, "features": tuple(document["features"])})


def set_reference(
    db: Database,
    deployment: str,
    frame: pd.DataFrame,
    *,
    predictions: Sequence | np.ndarray | None = None,
    labels: Sequence | np.ndarray | None = None,
    probabilities: Sequence | np.ndarray | None = None,
    classes: Sequence | None = None,
    sample_size: int = REFERENCE_SAMPLE_SIZE,
    seed: int = 0,
    actor: str = "monitoring",
) -> Reference:
    """Make ``frame`` (and the model's ``predictions`` on it) ``deployment``'s reference,
    replacing any earlier one. ``probabilities`` (one row per row of ``frame``, one column
    per class of ``classes``, default ``0 .. k-1``) need the ``labels``.

    >>> set_reference(db, "api", pd.DataFrame())
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: frame: the reference needs at least one row and column
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgumentError(f"frame: a pandas DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise InvalidArgumentError("frame: the reference needs at least one row and column")
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
    reference = Reference(
        tuple(frame.columns),
        profile(rows),
        schema,
        RowSample.of(rows, ids, sample_size, seed),
        predictions is not None,
        labels is not None,
        scores,
    )
    with db.write() as connection:
        now = clock_of(connection)
        connection.execute(_references.delete().where(_references.c.deployment == deployment))
        connection.execute(
            _references.insert().values(
                deployment=deployment,
                reference=reference.to_bytes(),
                created_ms=now,
                created_by=actor,
            )
        )
        append_audit(
            connection,
            actor,
            "set_reference",
            f"monitor:{deployment}",
            None,
            None,
            {
                "rows": len(frame),
                "features": list(frame.columns),
                "sample": len(reference.sample),
                "scored_rows": 0 if scores is None else len(scores.labels),
            },
            at_ms=now,
        )
    return reference


def get_reference(db: Database, deployment: str) -> Reference:
    """``deployment``'s reference. A reference whose stored bytes were decoded before in
    this process (one of the last :data:`DECODED_KEPT`) is that same object: treat it as
    read-only.

    >>> ref = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> get_reference(db, "api") is get_reference(db, "api")
    True
    >>> get_reference(db, "nowhere")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: deployment 'nowhere' has no monitoring reference; set one with set_reference
    """  # noqa: E501 - a doctest's expected output is one line
    with db.read() as connection:
        data = connection.execute(
            sa.select(_references.c.reference).where(_references.c.deployment == deployment)
        ).scalar()
    if data is None:
        raise NotFoundError(
            f"deployment {deployment!r} has no monitoring reference; set one with set_reference"
        )
    # Decoding the sample costs more than a window's drift, and each evaluation reads the
    # reference anew: the same stored bytes give back the reference already decoded (and
    # the summary of its columns that the drift tests keep on it).
    key = hashlib.blake2b(bytes(data), digest_size=32).digest()
    with _decoded_lock:
        reference = _decoded.get(key)
        if reference is not None:
            _decoded.move_to_end(key)
            return reference
    reference = Reference.from_bytes(data)
    with _decoded_lock:
        _decoded[key] = reference
        while len(_decoded) > DECODED_KEPT:
            _decoded.popitem(last=False)
    return reference
