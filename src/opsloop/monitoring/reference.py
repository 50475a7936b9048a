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
)
from opsloop.errors import NotFoundError
from opsloop.registry.audit import append_audit
from opsloop.store import tables
from opsloop.store.database import Database, clock_of

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
    (``scored_rows``), and where it came from (``origin``, see :func:`reference_origin`).

    >>> import pandas as pd
    >>> ref = set_reference(db, "api", pd.DataFrame({"x": [1.0, 2.0, 3.0]}), sample_size=2)
    >>> ReferenceSummary.of(ref)
    ReferenceSummary(features=('x',), rows=3, sample=2, has_predictions=False, has_labels=False, scored_rows=0, origin='set explicitly')
    """  # noqa: E501 - a doctest's expected output is one line

    features: tuple[str, ...]
    rows: int
    sample: int
    has_predictions: bool
    has_labels: bool = False
    scored_rows: int = 0
    origin: str = SET_EXPLICITLY

    @classmethod
    def of(cls, reference: Reference, origin: str = SET_EXPLICITLY) -> ReferenceSummary:
        """The summary of ``reference`` (which came from ``origin``)."""
        return cls(
            reference.features,
            reference.profile.n_rows,
            len(reference.sample),
            reference.has_predictions,
            reference.has_labels,
            0 if reference.scores is None else len(reference.scores.labels),
            origin,
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
            },
            at_ms=now,
        )
    return reference


def _stored(db: Database, deployment: str) -> tuple[bytes, str] | None:
    """The stored bytes of ``deployment``'s reference and where it came from: the one set
    for it, else the one registered with the version its primary variant serves now (the
    stable one while a canary ramps; through its alias when it follows one)."""
    with db.read() as connection:
        data = connection.execute(
            sa.select(_references.c.reference).where(_references.c.deployment == deployment)
        ).scalar()
        if data is not None:
            return bytes(data), SET_EXPLICITLY
        # The same resolution as the deployment's definition (opsloop.serving.deployments),
        # read here from the tables: serving imports monitoring, not the other way round.
        deployments, variants = tables.deployments, tables.deployment_variants
        models, versions, aliases = tables.registered_models, tables.model_versions, tables.aliases
        serving = sa.func.coalesce(variants.c.version_id, aliases.c.version_id)
        row = connection.execute(
            sa.select(models.c.name, versions.c.version, tables.version_references.c.reference)
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
    return bytes(row.reference), f"registered with {row.name} v{row.version}"


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


def _found(db: Database, deployment: str) -> tuple[bytes, str]:
    stored = _stored(db, deployment)
    if stored is None:
        raise NotFoundError(
            f"deployment {deployment!r} has no monitoring reference; set one with "
            "set_reference or register its model version with training_data"
        )
    return stored


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
    data, origin = _found(db, deployment)
    # Decoding the sample costs more than a window's drift, and each evaluation reads the
    # reference anew: the same stored bytes give back the reference already decoded (and
    # the summary of its columns that the drift tests keep on it).
    key = hashlib.blake2b(data, digest_size=32).digest()
    with _decoded_lock:
        reference = _decoded.get(key)
        if reference is not None:
            _decoded.move_to_end(key)
            return reference, origin
    reference = Reference.from_bytes(data)
    with _decoded_lock:
        _decoded[key] = reference
        while len(_decoded) > DECODED_KEPT:
            _decoded.popitem(last=False)
    return reference, origin


__all__ = [
    "DECODED_KEPT",
    "LABEL_COLUMN",
    "REFERENCE_SAMPLE_SIZE",
    "SET_EXPLICITLY",
    "Reference",
    "ReferenceSummary",
    "get_reference",
    "reference_origin",
    "reference_with_origin",
    "set_reference",
]
