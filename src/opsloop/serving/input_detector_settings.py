"""A deployment's input anomaly detector: set through the control plane, read by the data plane.

A deployment may carry one :class:`~opsloop.learn.robustness.portable_detector.
PortableInputDetector` (numbers only, checked field by field on the way in, never a pickle)
and an ``action`` for a request it flags:

- ``flag`` (the default): the request is answered as usual, and counted and marked as
  flagged (see :mod:`.input_screening`);
- ``review``: the request goes to the review queue (reason ``input_anomaly``) instead of
  being answered, as a low-confidence answer does under partial automation.

The detector's features must be numeric columns of the input signature of the version every
variant serves now, columns a served record carries (its serving columns, not one kept for
training alone), so any variant's requests can be scored; a variant whose version has no
signature cannot be checked and is refused. The rule holds for later changes too: a new
definition (:meth:`~opsloop.serving.Deployments.deploy`: a new variant, a version swap, a
blue/green standby, a promotion) that brings a version the detector cannot score is refused
naming the variant's field and the feature (:func:`check_new_variants`; a change that only
moves traffic between the versions served, as a canary's step does, brings none), and so
is moving an alias one of its variants follows (:mod:`opsloop.registry.alias_move_check`). A
rollback is not refused, being the way back from a failing version; a version it restores
from before the detector was set may leave requests unscored, which the data plane counts
(:mod:`.input_screening`). :meth:`~opsloop.serving.Deployments.
set_input_detector` replaces the setting as one audited change of the deployment (entity
``deployment:NAME``, action ``set_input_detector``; the entry records the detector's
sha256, features, fpr and threshold rather than its matrix), so a running data plane
follows it as it follows a definition change. An editor may set it; a protected deployment
needs an admin. Retiring the deployment retires its detector too (:func:`retire_input_detector`),
so a deployment re-created under the same name starts without one.

>>> import numpy as np, pandas as pd
>>> from opsloop.learn.robustness.portable_detector import fit_portable_detector
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> from opsloop.serving import Deployments, Variant
>>> from sklearn.linear_model import LinearRegression
>>> db = Database("sqlite://")
>>> X = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 2)), columns=["a", "b"])
>>> registry = ModelRegistry(db, ArtifactStore(tmp_path))
>>> _ = registry.register("m", LinearRegression().fit(X, X["a"]), input_schema=X)
>>> _ = Deployments(db).deploy("api", [Variant("stable", "m", version=1)])
>>> detector = fit_portable_detector(X, fpr=0.05)
>>> Deployments(db).set_input_detector("api", detector, action="review").revision
1
>>> Deployments(db).input_detector("api").detector == detector
True
>>> Deployments(db).set_input_detector("api", fit_portable_detector(X.rename(columns={"b": "c"}), fpr=0.05))
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: detector.features: 'c' is not a column of the input signature of variant 'stable' (model 'm' version 1)
"""  # noqa: E501

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.data.schema import Schema
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.learn.robustness.portable_detector import PortableInputDetector, unreadable_feature
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.registry.users import acting_user
from opsloop.serving.deployment_approvals import required_approvals
from opsloop.store import tables

_detectors = tables.deployment_input_detectors

#: What the data plane does with a request the detector flags.
ACTIONS = ("flag", "review")


@dataclass(frozen=True)
class InputDetectorSetting:
    """Deployment ``deployment``'s input ``detector`` (``None``: none) and the ``action``
    on a flagged request, at ``revision`` (0: never set), last set at ``updated_ms`` by
    ``updated_by``.

    >>> InputDetectorSetting("api").to_dict()["action"]
    'flag'
    """

    deployment: str
    detector: PortableInputDetector | None = None
    action: str = "flag"
    revision: int = 0
    updated_ms: int | None = None
    updated_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The setting as a JSON-safe dictionary."""
        return {
            "deployment": self.deployment,
            "detector": None if self.detector is None else self.detector.to_dict(),
            "action": self.action,
            "revision": self.revision,
            "updated_ms": self.updated_ms,
            "updated_by": self.updated_by,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> InputDetectorSetting:
        """The setting :meth:`to_dict` wrote (the detector checked again).

        >>> s = InputDetectorSetting("api", None, "review", 2, 5, "ana")
        >>> InputDetectorSetting.from_dict(s.to_dict()) == s
        True
        """
        detector = document.get("detector")
        return cls(
            deployment=document["deployment"],
            detector=None if detector is None else PortableInputDetector.from_dict(detector),
            action=document.get("action", "flag"),
            revision=int(document.get("revision", 0)),
            updated_ms=document.get("updated_ms"),
            updated_by=document.get("updated_by"),
        )

    def summary(self) -> dict[str, Any]:
        """What the audit log keeps of it: the detector's sha256 (of its canonical JSON),
        features, fpr and threshold, and the action.

        >>> InputDetectorSetting("api").summary()
        {'detector': None, 'action': 'flag'}
        """
        detector = self.detector
        if detector is None:
            return {"detector": None, "action": self.action}
        return {
            "detector": {
                "sha256": detector_sha256(detector),
                "features": list(detector.features),
                "fpr": detector.fpr,
                "threshold": detector.threshold,
                "calibration_rows": detector.calibration_rows,
            },
            "action": self.action,
        }


def detector_sha256(detector: PortableInputDetector) -> str:
    """The sha256 of the detector's canonical JSON (sorted keys, no spaces).

    >>> d = PortableInputDetector(("x",), (0.0,), ((1.0,),), 4.0, 0.05, 19, 19)
    >>> canonical = (b'{"calibration_rows":19,"features":["x"],"fpr":0.05,"location":[0.0],'
    ...              b'"precision":[[1.0]],"rank":19,"threshold":4.0}')
    >>> detector_sha256(d) == hashlib.sha256(canonical).hexdigest()
    True
    """
    text = json.dumps(detector.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def checked_detector(detector: object, action: object) -> PortableInputDetector | None:
    """``detector`` (a :class:`PortableInputDetector`, its dictionary or ``None``) as
    stored, or an :class:`~opsloop.errors.InvalidArgumentError` naming the field and the
    rule; ``action`` must be one of :data:`ACTIONS`.

    >>> checked_detector({"features": ["x"]}, "flag")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: detector: must have exactly the fields features, ...
    >>> checked_detector(None, "refuse")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: action: must be one of flag, review, got 'refuse'
    """
    if action not in ACTIONS:
        raise InvalidArgumentError(f"action: must be one of {', '.join(ACTIONS)}, got {action!r}")
    if detector is None or isinstance(detector, PortableInputDetector):
        return detector
    try:
        return PortableInputDetector.from_dict(detector)
    except ValueError as error:
        message = str(error)
        field = "" if message.startswith("detector") else "detector."
        raise InvalidArgumentError(f"{field}{message}") from None


def serving_signatures(connection: Connection, definition: Any) -> dict[str, tuple[str, int, Any]]:
    """Per variant of ``definition`` serving a version: its model, version and input
    schema (``None`` without a signature), read on ``connection``.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as connection:
    ...     serving_signatures(connection, _Serving((), {}))
    {}
    """
    versions, models = tables.model_versions, tables.registered_models
    found = {}
    for variant in definition.variants:
        version = definition.serving.get(variant.name)
        if version is None:
            continue
        signature = connection.execute(
            sa.select(versions.c.signature_json)
            .select_from(versions.join(models, models.c.id == versions.c.model_id))
            .where(models.c.name == variant.model, versions.c.version == version)
        ).scalar()
        inputs = None if signature is None else json.loads(signature).get("inputs")
        schema = None if inputs is None else Schema.from_dict(inputs)
        found[variant.name] = (variant.model, version, schema)
    return found


def check_features(
    detector: PortableInputDetector,
    signatures: Mapping[str, tuple[str, int, Any]],
    field: str = "detector.features",
) -> None:
    """Refuse ``detector`` unless each of its features is a numeric serving column
    (:meth:`~opsloop.data.schema.Schema.serving_columns`) of every variant's input
    signature (``signatures``: variant -> model, version, schema), with an
    :class:`~opsloop.errors.InvalidArgumentError` that starts with ``field``."""
    for variant, (model, version, schema) in signatures.items():
        where = f"variant {variant!r} (model {model!r} version {version})"
        if schema is None:
            raise InvalidArgumentError(
                f"{field}: {where} has no input signature to check them against"
            )
        # The columns the model is given: a column kept for training alone is in no
        # served record, so a detector reading it could score none.
        columns = {column.name: column.type for column in schema.serving_columns()}
        training_only = set(schema.names) - set(columns)
        problem = unreadable_feature(detector.features, columns, where, training_only)
        if problem is not None:
            raise InvalidArgumentError(f"{field}: {problem}")


def check_new_variants(
    connection: Connection,
    name: str,
    variants: Sequence[Any],
    numbers: Sequence[int],
    before: Any = None,
) -> None:
    """Refuse a new definition of deployment ``name`` (``variants``, each serving the
    version of ``numbers``) when its input detector cannot score the records of a version
    the change brings (one the definition ``before`` it serves no variant with): an
    :class:`~opsloop.errors.InvalidArgumentError` naming the variant's field
    (``variants.N``) and the feature its signature lacks. Versions served already are not
    checked again, so a change that only moves traffic between them (a canary's step or
    rollback) is never refused. Without a detector, nothing is checked. Called in the
    definition's write transaction, so the check and the change see the same detector."""
    setting = input_detector_in(connection, name)
    if setting.detector is None:
        return
    for position, found in new_version_signatures(connection, variants, numbers, before):
        check_features(
            setting.detector,
            found,
            f"variants.{position}: the input detector of deployment {name!r} cannot score "
            "this variant's requests (change or remove the detector first)",
        )


def new_version_signatures(
    connection: Connection,
    variants: Sequence[Any],
    numbers: Sequence[int],
    before: Any = None,
) -> list[tuple[int, dict[str, tuple[str, int, Any]]]]:
    """For each of ``variants`` (serving the versions of ``numbers``) whose version the
    definition ``before`` serves no variant with: its position and its
    :func:`serving_signatures`. A change that only moves traffic between the versions
    served already (a canary's step or rollback) brings none.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as connection:
    ...     new_version_signatures(connection, (), ())
    []
    """
    served = set()
    if before is not None:
        served = {(v.model, before.serving.get(v.name)) for v in before.variants}
    return [
        (position, serving_signatures(connection, _Serving((variant,), {variant.name: number})))
        for position, (variant, number) in enumerate(zip(variants, numbers, strict=True))
        if (variant.model, number) not in served
    ]


@dataclass(frozen=True)
class _Serving:
    """The part of a definition :func:`serving_signatures` reads."""

    variants: tuple[Any, ...]
    serving: Mapping[str, int]


def input_detector_in(connection: Connection, deployment: str) -> InputDetectorSetting:
    """The input detector setting of ``deployment`` read on ``connection`` (defaults when
    never set)."""
    row = (
        connection.execute(sa.select(_detectors).where(_detectors.c.deployment == deployment))
        .mappings()
        .first()
    )
    if row is None:
        return InputDetectorSetting(deployment)
    document = row["detector_json"]
    return InputDetectorSetting(
        deployment=deployment,
        detector=None
        if document is None
        else PortableInputDetector.from_dict(json.loads(document)),
        action=row["action"],
        revision=row["revision"],
        updated_ms=row["updated_ms"],
        updated_by=row["updated_by"],
    )


def read_input_detector(deployments: Any, name: str) -> InputDetectorSetting:
    """Deployment ``name``'s input detector setting (404 for an unknown deployment);
    ``deployments`` is the :class:`~opsloop.serving.Deployments` asking."""
    with deployments.db.read() as connection:
        if deployments._current(connection, name) is None:
            raise NotFoundError(f"no deployment named {name!r}")
        return input_detector_in(connection, name)


def set_input_detector(
    deployments: Any,
    name: str,
    detector: object,
    *,
    action: str = "flag",
    actor: str,
    reason: str | None = None,
) -> InputDetectorSetting:
    """Replace deployment ``name``'s input detector (``None`` removes it) and action, as
    one audited change (see the module); the setting as stored."""
    checked = checked_detector(detector, action)
    db = deployments.db
    with db.write() as connection:
        lock_audit_log(connection)
        role = "admin" if required_approvals(connection, name) else "editor"
        who = acting_user(connection, actor, role)
        definition = deployments._current(connection, name)
        if definition is None:
            raise NotFoundError(f"no deployment named {name!r}")
        if checked is not None:
            check_features(checked, serving_signatures(connection, definition))
        before = input_detector_in(connection, name)
        at = db.clock()
        after = InputDetectorSetting(name, checked, action, before.revision + 1, at, who)
        values = {
            "revision": after.revision,
            "detector_json": None
            if checked is None
            else json.dumps(checked.to_dict(), allow_nan=False),
            "action": action,
            "updated_ms": at,
            "updated_by": who,
        }
        if before.revision == 0:
            connection.execute(_detectors.insert().values(deployment=name, **values))
        else:
            connection.execute(
                _detectors.update().where(_detectors.c.deployment == name).values(**values)
            )
        append_audit(
            connection,
            who,
            "set_input_detector",
            f"deployment:{name}",
            reason,
            None if before.revision == 0 else before.summary(),
            after.summary(),
            at_ms=at,
        )
    return after


def retire_input_detector(
    connection: Connection, name: str, who: str, reason: str | None, at: int
) -> None:
    """Delete deployment ``name``'s input detector setting as part of its retire, in the
    retire's write transaction: a deployment later created under the same name starts
    without one, rather than being screened, and having its deploys refused, by a detector
    it never set. When there was a setting, the change is audited as a
    ``set_input_detector`` entry by the retire's actor with its reason (before: what it
    held; after: the defaults), so the detector's own history ends where the deployment's
    does.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").write() as c:
    ...     retire_input_detector(c, "api", "ana", None, 0)  # never set: nothing to audit
    ...     c.execute(sa.select(sa.func.count()).select_from(tables.audit_log)).scalar()
    0
    """
    before = input_detector_in(connection, name)
    if before.revision == 0:
        return
    connection.execute(_detectors.delete().where(_detectors.c.deployment == name))
    after = InputDetectorSetting(name)
    append_audit(
        connection,
        who,
        "set_input_detector",
        f"deployment:{name}",
        reason,
        before.summary(),
        after.summary(),
        at_ms=at,
    )


__all__ = [
    "ACTIONS",
    "InputDetectorSetting",
    "check_features",
    "check_new_variants",
    "checked_detector",
    "detector_sha256",
    "input_detector_in",
    "new_version_signatures",
    "read_input_detector",
    "retire_input_detector",
    "serving_signatures",
    "set_input_detector",
]
