"""A deployment's reference: what its live inputs (and outputs) are compared with, usually
the training data (:class:`opsloop.data.training_reference.Reference`: its profile, schema
and a bounded seeded sample of its rows), kept in the store.

``set_reference(db, deployment, frame)`` sets it explicitly; ``predictions`` (the model's
outputs on ``frame``) add the reference of the output distribution, and ``labels`` (the true
answers) the reference's own error, against which a window's error is judged
(:mod:`.decay_kind`), and rows a retraining may mix in (:mod:`.training_window`). A
classifier's ``probabilities`` on ``frame`` (one column per class, in the order of
``classes``), with the ``labels`` and the same rows' numeric inputs, are kept as
:class:`~opsloop.data.reference_scores.ReferenceScores`: what the estimate of a window's
metrics before its labels arrive is calibrated on, reweighted by the density ratio of the
window's inputs (:mod:`.window_estimate`). Setting it is recorded in the audit log (entity
``monitor:DEPLOYMENT``).

``predicted_by`` (``(model, version)``) names the model version whose ``predictions`` the
reference keeps: a window another version answered is then judged against that version's
errors on the reference rows, predicted again (:mod:`.reference_predictions`), not against
the errors of the version that made the reference's predictions. A reference that does not
name it (one set before it was kept, or set without it) is taken as the prediction of
whichever version answers.

A deployment with no reference set uses the one registered with the model version its
primary variant serves now (the stable variant while a canary ramps), when that version was
registered with its training data (``ModelRegistry.register(..., training_data=frame)``);
:func:`reference_origin` says which. A set reference wins.

>>> import pandas as pd
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
>>> _ = set_reference(db, "api", frame, predictions=[0, 1, 0], labels=[0, 1, 1])
>>> ref = get_reference(db, "api")
>>> ref.features, ref.profile["x"].numeric.mean, len(ref.sample), ref.has_labels
(('x', 'c'), 2.0, 3, True)
"""

from __future__ import annotations

import hashlib
import operator
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from opsloop.data.training_reference import (
    LABEL_COLUMN,
    REFERENCE_SAMPLE_SIZE,
    Reference,
    build_reference,
    classes_from_json,
)
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.registry.audit import append_audit
from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.tracking.limits import INT32_MAX

_references = tables.monitoring_references
#: Where a reference set with :func:`set_reference` came from, in :func:`reference_origin`.
SET_EXPLICITLY = "set explicitly"
#: Decoded references kept in this process, by the digest of their stored bytes.
DECODED_KEPT = 8
_decoded: OrderedDict[bytes, Reference] = OrderedDict()
_decoded_lock = threading.Lock()


@dataclass(frozen=True)
class ReferenceSummary:
    """What a reference holds, without its data: the input ``features``, how many ``rows``
    it was made of, how many of them its ``sample`` keeps, whether it ``has_predictions`` and
    ``has_labels``, how many rows' probabilities it keeps to calibrate the estimate on
    (``scored_rows``), where it came from (``origin``, see :func:`reference_origin`), and
    the model version whose predictions it keeps (``predicted_model`` and
    ``predicted_version``; ``None`` when that was not said).

    >>> import pandas as pd
    >>> ref = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0, 3.0]}), sample_size=2)
    >>> ReferenceSummary.of(ref)
    ReferenceSummary(features=('x',), rows=3, sample=2, has_predictions=False, has_labels=False, scored_rows=0, origin='set explicitly', predicted_model=None, predicted_version=None)
    >>> ReferenceSummary.of(ref, predicted_by=("credit", 3)).predicted_version
    3
    """  # noqa: E501 - a doctest's expected output is one line

    features: tuple[str, ...]
    rows: int
    sample: int
    has_predictions: bool
    has_labels: bool = False
    scored_rows: int = 0
    origin: str = SET_EXPLICITLY
    predicted_model: str | None = None
    predicted_version: int | None = None

    @classmethod
    def of(
        cls,
        reference: Reference,
        origin: str = SET_EXPLICITLY,
        predicted_by: tuple[str, int] | None = None,
    ) -> ReferenceSummary:
        """The summary of ``reference`` (which came from ``origin``, with the predictions
        of ``predicted_by``, ``(model, version)``, when known)."""
        return cls(
            reference.features,
            reference.profile.n_rows,
            len(reference.sample),
            reference.has_predictions,
            reference.has_labels,
            0 if reference.scores is None else len(reference.scores.labels),
            origin,
            None if predicted_by is None else predicted_by[0],
            None if predicted_by is None else predicted_by[1],
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
    predicted_by: tuple[str, int] | None = None,
) -> Reference:
    """Make ``frame`` (and the model's ``predictions`` on it, made by the model version
    ``predicted_by``, ``(model, version)``, when given) ``deployment``'s reference,
    replacing any earlier one. ``probabilities`` (one row per row of ``frame``, one column
    per class of ``classes``, default ``0 .. k-1``) need the ``labels``.

    >>> set_reference(db, "api", pd.DataFrame())
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: frame: the reference needs at least one row and column
    >>> set_reference(db, "api", pd.DataFrame({"x": [1.0]}), predicted_by=("m", 1))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: predicted_by: names the model version whose predictions the reference keeps; give the predictions
    """  # noqa: E501 - a doctest's expected output is one line
    by = checked_predicted_by(predicted_by)
    if by is not None and predictions is None:
        raise InvalidArgumentError(
            "predicted_by: names the model version whose predictions the reference keeps; "
            "give the predictions"
        )
    reference = build_reference(
        frame,
        predictions=predictions,
        labels=labels,
        probabilities=probabilities,
        classes=classes,
        sample_size=sample_size,
        seed=seed,
    )
    scores = reference.scores
    with db.write() as connection:
        now = clock_of(connection)
        connection.execute(_references.delete().where(_references.c.deployment == deployment))
        connection.execute(
            _references.insert().values(
                deployment=deployment,
                reference=reference.to_bytes(),
                created_ms=now,
                created_by=actor,
                predicted_model=None if by is None else by[0],
                predicted_version=None if by is None else by[1],
                scored_classes=reference.classes_json(),
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
                "rows": reference.profile.n_rows,
                "features": list(reference.features),
                "sample": len(reference.sample),
                "scored_rows": 0 if scores is None else len(scores.labels),
                "predicted_by": None if by is None else {"model": by[0], "version": by[1]},
            },
            at_ms=now,
        )
    return reference


def checked_predicted_by(value: object) -> tuple[str, int] | None:
    """``value`` as a ``(model, version)`` pair, or an error naming ``predicted_by`` and
    what it takes: the rule of the wire's ``PredictedBy`` (a name of 1 to 250 characters
    without NUL, a whole version from 0 to 2**31 - 1, what the store's column holds), with
    any integer type (a NumPy one too) taken as the whole number it is.

    >>> import numpy as np
    >>> checked_predicted_by(["credit", 2]), checked_predicted_by(None)
    (('credit', 2), None)
    >>> checked_predicted_by(("credit", np.int64(3)))
    ('credit', 3)
    >>> checked_predicted_by(("credit", 2**31))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: predicted_by: a (model name, version) pair with a name of 1 to 250 characters without NUL and a whole version from 0 to 2147483647, got ('credit', 2147483648)
    """  # noqa: E501 - a doctest's expected output is one line
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        name, version = value
        try:
            number = None if isinstance(version, bool) else operator.index(version)
        except TypeError:
            number = None
        if (
            isinstance(name, str)
            and 0 < len(name) <= 250
            and "\x00" not in name
            and number is not None
            and 0 <= number <= INT32_MAX
        ):
            return name, number
    raise InvalidArgumentError(
        "predicted_by: a (model name, version) pair with a name of 1 to 250 characters "
        f"without NUL and a whole version from 0 to {INT32_MAX}, got {str(value)[:100]}"
    )


@dataclass(frozen=True)
class StoredReference:
    """A deployment's ``reference``, where it came from (``origin``, see
    :func:`reference_origin`), the model version whose predictions it keeps
    (``predicted_by``, ``(model, version)``; ``None`` when not said) and the ``digest`` of
    its stored bytes (what the predictions made again are kept by)."""

    reference: Reference
    origin: str
    predicted_by: tuple[str, int] | None
    digest: bytes


def _stored(db: Database, deployment: str) -> tuple[bytes, str, tuple[str, int] | None] | None:
    """The stored bytes of ``deployment``'s reference, where it came from and the version
    whose predictions it keeps: the one set for it, else the one registered with the
    version its primary variant serves now (the stable one while a canary ramps; through
    its alias when it follows one), whose predictions, if it keeps any, are that version's."""
    found = _resolved(db, deployment, "reference")
    return None if found is None else (bytes(found[0]), found[1], found[2])


def _resolved(
    db: Database, deployment: str, column: str
) -> tuple[object, str, tuple[str, int] | None] | None:
    """``column`` (``reference``, the bytes, or ``scored_classes``) of the row of
    ``deployment``'s reference (see :func:`_stored`), where it came from and the version
    whose predictions it keeps."""
    with db.read() as connection:
        row = connection.execute(
            sa.select(
                _references.c[column],
                _references.c.predicted_model,
                _references.c.predicted_version,
            ).where(_references.c.deployment == deployment)
        ).first()
        if row is not None:
            by = None
            if row.predicted_model is not None and row.predicted_version is not None:
                by = (str(row.predicted_model), int(row.predicted_version))
            return row[0], SET_EXPLICITLY, by
        # The same resolution as the deployment's definition (opsloop.serving.deployments),
        # read here from the tables: serving imports monitoring, not the other way round.
        deployments, variants = tables.deployments, tables.deployment_variants
        models, versions, aliases = tables.registered_models, tables.model_versions, tables.aliases
        serving = sa.func.coalesce(variants.c.version_id, aliases.c.version_id)
        row = connection.execute(
            sa.select(models.c.name, versions.c.version, tables.version_references.c[column])
            .select_from(
                deployments.join(variants, variants.c.deployment_id == deployments.c.id)
                .join(models, models.c.id == variants.c.model_id)
                .outerjoin(
                    aliases,
                    sa.and_(
                        aliases.c.model_id == variants.c.model_id,
                        aliases.c.name == variants.c.alias,
                    ),
                )
                .join(versions, versions.c.id == serving)
                .join(
                    tables.version_references,
                    tables.version_references.c.version_id == versions.c.id,
                )
            )
            .where(deployments.c.name == deployment, variants.c.role == "primary")
        ).first()
    if row is None:
        return None
    name, version = str(row.name), int(row.version)
    return row[2], f"registered with {name} v{version}", (name, version)


def reference_classes(db: Database, deployment: str) -> tuple | None:
    """The classes of the probabilities ``deployment``'s reference keeps (see
    :func:`get_reference`), in the order of its columns, or ``None`` when it keeps none:
    read from the column kept beside the reference's bytes, not from the bytes, so a
    caller that needs only them (every call of ``log_predictions`` with probabilities and
    no ``classes=``) does not read its sample. A reference stored by a version that did
    not keep the column is read whole, as before.

    >>> _ = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}),
    ...                   labels=["no", "yes", "no", "yes"],
    ...                   probabilities=[0.2, 0.9, 0.4, 0.6], classes=["no", "yes"])
    >>> reference_classes(db, "api")
    ('no', 'yes')
    >>> reference_classes(db, "nowhere")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: deployment 'nowhere' has no monitoring reference; set one with set_reference or register its model version with training_data
    """  # noqa: E501 - a doctest's expected output is one line
    found = _resolved(db, deployment, "scored_classes")
    if found is None:
        raise _no_reference(deployment)
    if found[0] is None:
        scores = get_reference(db, deployment).scores
        return None if scores is None else scores.classes
    return classes_from_json(str(found[0]))


def reference_origin(db: Database, deployment: str) -> str:
    """Where ``deployment``'s reference comes from: :data:`SET_EXPLICITLY` (by
    :func:`set_reference`, which wins), or ``"registered with MODEL vN"``, the training data
    registered with the version its primary variant serves.

    >>> _ = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0]}))
    >>> reference_origin(db, "api")
    'set explicitly'
    >>> reference_origin(db, "nowhere")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: deployment 'nowhere' has no monitoring reference; set one with set_reference or register its model version with training_data
    """  # noqa: E501 - a doctest's expected output is one line
    return _found(db, deployment)[1]


def _found(db: Database, deployment: str) -> tuple[bytes, str, tuple[str, int] | None]:
    stored = _stored(db, deployment)
    if stored is None:
        raise _no_reference(deployment)
    return stored


def _no_reference(deployment: str) -> NotFoundError:
    return NotFoundError(
        f"deployment {deployment!r} has no monitoring reference; set one with "
        "set_reference or register its model version with training_data"
    )


def get_reference(db: Database, deployment: str) -> Reference:
    """``deployment``'s reference: the one set with :func:`set_reference`, else the one
    registered with the model version its primary variant serves now (see
    :func:`reference_origin`). A reference whose stored bytes were decoded before in this
    process (one of the last :data:`DECODED_KEPT`) is that same object: treat it as
    read-only.

    >>> ref = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> get_reference(db, "api") is get_reference(db, "api")
    True
    >>> get_reference(db, "nowhere")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: deployment 'nowhere' has no monitoring reference; set one with set_reference or register its model version with training_data
    """  # noqa: E501 - a doctest's expected output is one line
    return reference_with_origin(db, deployment)[0]


def reference_with_origin(db: Database, deployment: str) -> tuple[Reference, str]:
    """:func:`get_reference` and :func:`reference_origin` read together, so that the two
    agree while another process sets a reference.

    >>> _ = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> reference, origin = reference_with_origin(db, "api")
    >>> reference.features, origin
    (('x',), 'set explicitly')
    """
    found = stored_reference(db, deployment)
    return found.reference, found.origin


def stored_reference(db: Database, deployment: str) -> StoredReference:
    """:func:`get_reference`, :func:`reference_origin` and the version whose predictions the
    reference keeps, read together (see :class:`StoredReference`).

    >>> _ = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0]}), predictions=[0, 1],
    ...                   predicted_by=("credit", 3))
    >>> found = stored_reference(db, "api")
    >>> found.origin, found.predicted_by, len(found.digest)
    ('set explicitly', ('credit', 3), 32)
    """
    data, origin, predicted_by = _found(db, deployment)
    # Decoding the sample costs more than a window's drift, and each evaluation reads the
    # reference anew: the same stored bytes give back the reference already decoded (and
    # the summary of its columns that the drift tests keep on it).
    key = hashlib.blake2b(data, digest_size=32).digest()
    with _decoded_lock:
        reference = _decoded.get(key)
        if reference is not None:
            _decoded.move_to_end(key)
            return StoredReference(reference, origin, predicted_by, key)
    reference = Reference.from_bytes(data)
    with _decoded_lock:
        _decoded[key] = reference
        while len(_decoded) > DECODED_KEPT:
            _decoded.popitem(last=False)
    return StoredReference(reference, origin, predicted_by, key)


__all__ = [
    "DECODED_KEPT",
    "LABEL_COLUMN",
    "REFERENCE_SAMPLE_SIZE",
    "SET_EXPLICITLY",
    "Reference",
    "ReferenceSummary",
    "StoredReference",
    "checked_predicted_by",
    "get_reference",
    "reference_classes",
    "reference_origin",
    "reference_with_origin",
    "set_reference",
    "stored_reference",
]
