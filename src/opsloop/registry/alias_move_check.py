"""Moving an alias that a deployment follows, to a version its settings could not serve.

A variant that follows an alias serves whatever version the alias points at, so moving the
alias changes what the deployment serves without a new definition. Two of a deployment's
settings read fields of the served records, and both are checked against every version
the deployment serves when they are set and when a deploy brings a new one; the move is
checked the same way, in its write transaction, before anything changes:

- its input anomaly detector (``opsloop.serving.input_detector_settings``) scores each
  request by its features, which must be numeric serving columns of the version's input
  signature: else its requests would be left unscored (the refusal is shown in
  ``tests/serving/test_input_detector.py`` and, over HTTP, a 422 naming ``version``, in
  ``tests/server/test_alias_detector_route.py``);
- its model assertions (``opsloop.serving.deployment_settings``) read fields of the
  records, which must be serving columns of the signature
  (:func:`~opsloop.analysis.assertion_fields.unknown_rule_field`, the check the deployment
  makes when its rules are set and at each deploy): else every request the version answers
  would fail with a 503.

No rollout gate names fields of its own: the drift gate compares the columns both arms'
records have, and the others read the answers, their latency and their labels.

The settings are read from their tables here, as the store keeps them: the registry sits
below serving and never imports it. :func:`check_alias_move` refuses the move with an
:class:`~opsloop.errors.InvalidArgumentError` naming the field ``version``, the deployment,
the variant, the rule or detector, and the field the version's records lack.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.analysis.assertion_fields import fields_there, unknown_rule_field
from opsloop.analysis.assertions import parse_assertions
from opsloop.data.excerpt import excerpt
from opsloop.data.schema import Schema
from opsloop.errors import InvalidArgumentError
from opsloop.learn.robustness.portable_detector import unreadable_feature
from opsloop.registry.gate_requirement import decode_requirement, missing_gate
from opsloop.registry.users import PermissionDenied
from opsloop.store import tables

_detectors, _heads = tables.deployment_input_detectors, tables.deployments
_settings, _variants = tables.deployment_settings, tables.deployment_variants


def _followers(connection: Connection, model_id: int, alias: str, setting: Any) -> list:
    """The deployments whose variant follows ``alias`` of model ``model_id`` and that have
    ``setting`` (a column of a settings table keyed by the deployment's name) set: each
    deployment's name, the variant's and the setting's value, in a stable order."""
    return list(
        connection.execute(
            sa.select(_heads.c.name, _variants.c.name.label("variant"), setting)
            .select_from(
                _variants.join(_heads, _heads.c.id == _variants.c.deployment_id).join(
                    setting.table, setting.table.c.deployment == _heads.c.name
                )
            )
            .where(
                _variants.c.model_id == model_id, _variants.c.alias == alias, setting.is_not(None)
            )
            .order_by(_heads.c.name, _variants.c.position)
        )
    )


def protected_followers(
    connection: Connection, model_id: int, alias: str
) -> list[tuple[str, int, bool | str]]:
    """The protected deployments with a variant that follows ``alias`` of model
    ``model_id``, each with the approvals a change of it needs and the release gate it
    requires (``False``: none): most approvals first, then by name.

    A protected deployment guards what it serves, and one that follows an alias serves
    whatever the alias points at. So moving the alias is a change of that deployment: the
    move needs as many distinct approvers, other than who moves it, as the most demanding
    such deployment asks for, even where the alias itself is not protected, and the version
    must have passed the release gate each such deployment requires
    (:func:`check_follower_gates`), as a definition pinning it there would. The approvals
    are of the move itself (the registry's ``approve(model, alias, version)``): they name
    the version the deployment will serve, which is what its approvers guard.

    >>> from opsloop.serving import Deployments, Variant
    >>> _ = registry.register("m", b"x", flavor="onnx")
    >>> registry.set_alias("m", "champion", 1)
    >>> for name in ("api", "web"):
    ...     _ = Deployments(db).deploy(name, [Variant("stable", "m", alias="champion")])
    >>> Deployments(db).protect("api", 2)
    >>> Deployments(db).protect("web", 0, require_gate="credit")
    >>> with db.read() as connection:
    ...     protected_followers(connection, 1, "champion"), protected_followers(connection, 1, "b")
    ([('api', 2, False), ('web', 0, 'credit')], [])
    """
    protected = tables.protected_deployments
    rows = connection.execute(
        sa.select(_heads.c.name, protected.c.required_approvals, protected.c.required_gate_json)
        .distinct()
        .select_from(
            _variants.join(_heads, _heads.c.id == _variants.c.deployment_id).join(
                protected, protected.c.name == _heads.c.name
            )
        )
        .where(
            _variants.c.model_id == model_id,
            _variants.c.alias == alias,
            sa.or_(protected.c.required_approvals > 0, protected.c.required_gate_json.is_not(None)),
        )
    )
    found = [(name, int(n), decode_requirement(gate)) for name, n, gate in rows]
    # A row whose stored gate decodes to none and that needs no approvals guards nothing.
    found = [row for row in found if row[1] or row[2] is not False]
    return sorted(found, key=lambda row: (-row[1], row[0]))


def guarded_by(followers: list[tuple[str, int, bool | str]]) -> str:
    """Why an alias move needs the approvals of the most demanding of the protected
    deployments ``followers`` (:func:`protected_followers`) that follow the alias.

    >>> guarded_by([("api", 2, False), ("web", 1, True)]), guarded_by([("api", 2, False)])
    ("guarded by deployment 'api' (and 'web')", "guarded by deployment 'api'")
    """
    others = ", ".join(repr(row[0]) for row in followers[1:])
    return f"guarded by deployment {followers[0][0]!r}{f' (and {others})' if others else ''}"


def _gate_baseline(
    connection: Connection, deployment: str, model_id: int, alias: str, before: int | None
) -> int | None:
    """The version deployment ``deployment``'s primary serves of model ``model_id`` now
    (``before`` where it follows ``alias`` itself), the baseline its release gate counts
    verdicts against, as at a deploy; ``None`` when its primary serves another model."""
    primary = connection.execute(
        sa.select(_variants.c.model_id, _variants.c.version_id, _variants.c.alias)
        .join(_heads, _heads.c.id == _variants.c.deployment_id)
        .where(_heads.c.name == deployment, _variants.c.role == "primary")
    ).first()
    if primary is None or primary.model_id != model_id:
        return None
    versions, aliases = tables.model_versions, tables.aliases
    if primary.version_id is not None:
        return connection.execute(
            sa.select(versions.c.version).where(versions.c.id == primary.version_id)
        ).scalar()
    if primary.alias == alias:
        return before
    return connection.execute(
        sa.select(versions.c.version)
        .join(aliases, aliases.c.version_id == versions.c.id)
        .where(aliases.c.model_id == model_id, aliases.c.name == primary.alias)
    ).scalar()


def check_follower_gates(
    connection: Connection,
    model_id: int,
    model: str,
    alias: str,
    version: int,
    before: int | None,
    followers: list[tuple[str, int, bool | str]],
) -> None:
    """Refuse moving ``alias`` of ``model`` (id ``model_id``) from version ``before`` to
    ``version`` when a protected deployment of ``followers`` (:func:`protected_followers`)
    that requires a release gate would serve ``version`` through a variant that answers
    requests (a shadow answers no one, as at a deploy), and ``version`` lacks a passed
    verdict of that gate against the version the deployment's primary serves now: the same
    rule a definition pinning ``version`` there meets. The refusal
    (:class:`~opsloop.registry.users.PermissionDenied`) names the deployment, the variant
    and what the version lacks (:func:`~opsloop.registry.gate_requirement.missing_gate`).

    >>> from opsloop.serving import Deployments, Variant
    >>> for _ in range(2):
    ...     _ = registry.register("m", b"x", flavor="onnx")
    >>> registry.set_alias("m", "champion", 1)
    >>> _ = Deployments(db).deploy("api", [Variant("stable", "m", alias="champion")])
    >>> Deployments(db).protect("api", 0, require_gate="credit")
    >>> with db.read() as connection:
    ...     check_follower_gates(connection, 1, "m", "champion", 2, 1,
    ...                          protected_followers(connection, 1, "champion"))
    Traceback (most recent call last):
    opsloop.registry.users.PermissionDenied: alias 'champion' of model 'm' is guarded by
    deployment 'api', which requires a release gate: its variant 'stable' follows the alias,
    so moving it to version 2 needs what deploying version 2 there needs, and version 2 needs
    a passed release gate 'credit' against version 1; version 2 has no gate verdict of
    'credit' against version 1 recorded
    """
    for deployment, _, gate in followers:
        if gate is False:
            continue
        answering = (
            connection.execute(
                sa.select(_variants.c.name)
                .join(_heads, _heads.c.id == _variants.c.deployment_id)
                .where(
                    _heads.c.name == deployment,
                    _variants.c.model_id == model_id,
                    _variants.c.alias == alias,
                    _variants.c.role != "shadow",
                )
                .order_by(_variants.c.position)
            )
            .scalars()
            .first()
        )
        if answering is None:
            continue
        baseline = _gate_baseline(connection, deployment, model_id, alias, before)
        missing = missing_gate(connection, model, version, gate, baseline)
        if missing is not None:
            raise PermissionDenied(
                f"alias {alias!r} of model {model!r} is guarded by deployment "
                f"{deployment!r}, which requires a release gate: its variant {answering!r} "
                f"follows the alias, so moving it to version {version} needs what deploying "
                f"version {version} there needs, and version {version} {missing}"
            )


def check_alias_move(
    connection: Connection,
    model_id: int,
    model: str,
    alias: str,
    version: int,
    signature_json: str | None,
) -> None:
    """Refuse moving ``alias`` of ``model`` (id ``model_id``) to ``version`` (whose
    signature is ``signature_json``) when a deployment whose variant follows the alias
    could not serve that version's records (see the module): an input detector that could
    not score them, or a model assertion reading a field they lack. Called in the move's
    write transaction.

    Deployment ``api`` follows ``champion`` (at version 1) with a rule on ``debt``, which
    version 2's records lack:

    >>> import pandas as pd
    >>> from opsloop.data.schema import infer_schema
    >>> from opsloop.serving import Deployments, Variant
    >>> frame = pd.DataFrame({"age": [20, 40], "debt": [1.0, 2.0]})
    >>> for columns in (["age", "debt"], ["age"]):
    ...     _ = registry.register("m", b"x", flavor="onnx",
    ...                           input_schema=infer_schema(frame[columns]))
    >>> registry.set_alias("m", "champion", 1)
    >>> _ = Deployments(db).deploy("api", [Variant("stable", "m", alias="champion")])
    >>> owes = {"name": "owes", "when": "debt > 1.5", "action": "flag"}
    >>> _ = Deployments(db).configure("api", assertions=[owes])
    >>> versions = tables.model_versions
    >>> def check(version):
    ...     with db.read() as connection:
    ...         model_id, signature = connection.execute(
    ...             sa.select(versions.c.model_id, versions.c.signature_json)
    ...             .where(versions.c.version == version)).one()
    ...         check_alias_move(connection, model_id, "m", "champion", version, signature)
    >>> check(1)
    >>> try:
    ...     check(2)
    ... except InvalidArgumentError as error:
    ...     print(error)
    version: variant 'stable' of deployment 'api' follows alias 'champion', and the
    deployment's assertion 'owes' (assertions.0.when) reads the field 'debt', which the
    records of model 'm' version 2 lack: they have the fields ['age'] and the outputs
    ['prediction', 'probability'] (change the assertions first)
    """
    detecting = _followers(connection, model_id, alias, _detectors.c.detector_json)
    asserting = _followers(connection, model_id, alias, _settings.c.assertions_json)
    if not detecting and not asserting:
        return
    inputs = None if signature_json is None else json.loads(signature_json).get("inputs")
    schema = None if inputs is None else Schema.from_dict(inputs)
    where = f"model {model!r} version {version}"
    follows = f"version: variant {{}} of deployment {{}} follows alias {alias!r}, and"
    if detecting:
        columns = {} if schema is None else {c.name: c.type for c in schema.serving_columns()}
        training_only = set() if schema is None else set(schema.names) - set(columns)
        for deployment, variant, detector_json in detecting:
            features = json.loads(detector_json)["features"]
            problem = (
                f"{where} has no input signature to check its features against"
                if schema is None
                else unreadable_feature(features, columns, where, training_only)
            )
            if problem is not None:
                raise InvalidArgumentError(
                    f"{follows.format(repr(variant), repr(deployment))} the deployment's input "
                    f"detector could not score version {version} (change or remove the "
                    f"detector first): {problem}"
                )
    for deployment, variant, assertions_json in asserting:
        # A version without a signature takes any fields, as at a deploy.
        found = unknown_rule_field(parse_assertions(json.loads(assertions_json)), schema)
        if found is None or schema is None:
            continue
        position, rule, field = found
        raise InvalidArgumentError(
            f"{follows.format(repr(variant), repr(deployment))} the deployment's assertion "
            f"{excerpt(rule.name)} (assertions.{position}.when) reads the field "
            f"{excerpt(field)}, which the records of {where} lack: they have "
            f"{fields_there(schema)} (change the assertions first)"
        )


__all__ = ["check_alias_move", "check_follower_gates", "guarded_by", "protected_followers"]
