"""A deployment's runtime settings: confidence threshold, model assertions, micro-batching,
and what each variant's answers may say.

They sit beside the definition (variants, strategy, automation level) and change on their
own: :meth:`opsloop.serving.Deployments.configure` replaces them as one audited change of
the deployment (entity ``deployment:NAME``, action ``configure``, the settings before and
after), so they are versioned with it (``revision`` counts the changes) and the
deployment's history shows them. Because the change appends to the audit log, a running
data plane follows it as it follows a definition change (see :mod:`.serving_runtime`).
Retiring the deployment retires its settings too (:func:`retire_settings`), so a
deployment re-created under the same name starts with the defaults.

- ``confidence_threshold``: under ``partial_automation``, an answer whose highest class
  probability is below it goes to the review queue (:mod:`.automation`); ``None`` sends
  none there for want of confidence.
- ``assertions``: rules of :mod:`opsloop.analysis.assertions`, checked (parsed) here, so a
  broken rule is refused with its name before it is stored. The name
  :data:`DETECTOR_COUNT` is reserved: a prediction event's ``assertions`` count the records
  the deployment's input anomaly detector flagged under it (:mod:`.input_screening`), so a
  rule of that name would add its firings to the detector's.
- ``batching``: :class:`MicroBatching` (``max_batch_size`` records, ``max_wait_ms``) to
  answer concurrent requests of a variant with one model call
  (:mod:`opsloop.serving.micro_batching`); ``None`` answers each request alone.
- ``outputs``: per variant name, an :class:`OutputRestriction`: its answers' probabilities
  rounded, cut to the top ``k`` or given as the label only, a defence against membership
  inference and model extraction through the answers (measured offline by
  :func:`opsloop.learn.robustness.output_defence_effects`, with the same transform). The
  predicted class never changes, and the prediction events keep the full probabilities:
  the store is trusted, a client is not.
- ``routing_key_field``: the field of a request's records whose value is its routing key
  when the request brings none (no ``X-Routing-Key`` header, no ``routing_key``), so an A/B
  test is sticky per ``user_id`` without the client sending a header; every record of such
  a request must carry the field, with one value (:func:`.routing.routing_key_of`). The
  field is taken out of the records before they are checked and answered, unless the
  answering version's input signature has a column of that name.

>>> from opsloop.registry import ModelRegistry
>>> from opsloop.store import ArtifactStore, Database
>>> from opsloop.serving import Deployments, Variant
>>> db = Database("sqlite://")
>>> _ = ModelRegistry(db, ArtifactStore(tmp_path)).register("m", b"x", flavor="onnx")
>>> _ = Deployments(db).deploy("api", [Variant("stable", "m", version=1)])
>>> rules = [{"name": "minor", "when": "age < 18", "action": "override", "value": 0}]
>>> Deployments(db).configure("api", confidence_threshold=0.8, assertions=rules).revision
1
>>> read_settings(db, "api").confidence_threshold
0.8
>>> Deployments(db).configure("api", confidence_threshold=1.5)
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: confidence_threshold: must be a number in [0, 1], got 1.5
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BeforeValidator, ConfigDict, Field
from sqlalchemy.engine import Connection

from opsloop.analysis.assertion_fields import fields_there, unknown_rule_field
from opsloop.analysis.assertions import parse_assertions
from opsloop.contract.wire_types import integral
from opsloop.data.excerpt import excerpt
from opsloop.errors import InvalidArgumentError
from opsloop.registry.audit import append_audit
from opsloop.serving.input_detector_settings import new_version_signatures
from opsloop.store import tables
from opsloop.store.database import Database

#: The key of a prediction event's ``assertions`` under which the deployment's input
#: anomaly detector counts the records it flagged; no rule may take it.
DETECTOR_COUNT = "input_detector"

_settings = tables.deployment_settings

#: The most records one micro-batch may gather, and the longest a request may wait for it.
MAX_BATCH_SIZE = 1024
MAX_WAIT_MS = 1000.0


@dataclass(frozen=True)
class MicroBatching:
    """Micro-batching of a deployment's requests, per variant: concurrent requests are
    answered by one model call of up to ``max_batch_size`` records, and a request waits at
    most ``max_wait_ms`` for others to join it (see :mod:`opsloop.serving.micro_batching`).

    >>> MicroBatching(32, 5.0).to_dict()
    {'max_batch_size': 32, 'max_wait_ms': 5.0}
    """

    # The annotations are the wire's bounds (the same rules as checked_batching's).
    __pydantic_config__ = ConfigDict(extra="forbid")

    max_batch_size: Annotated[
        int, Field(strict=True, ge=2, le=MAX_BATCH_SIZE), BeforeValidator(integral)
    ]
    max_wait_ms: Annotated[float, Field(strict=True, gt=0, le=MAX_WAIT_MS)]

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-safe dictionary."""
        return {"max_batch_size": self.max_batch_size, "max_wait_ms": self.max_wait_ms}


def checked_batching(value: object) -> MicroBatching | None:
    """``value`` (a :class:`MicroBatching`, its dictionary or ``None``) as stored, or an
    :class:`~opsloop.errors.InvalidArgumentError` naming the field and the rule.

    >>> checked_batching({"max_batch_size": 16, "max_wait_ms": 2})
    MicroBatching(max_batch_size=16, max_wait_ms=2.0)
    >>> checked_batching({"max_batch_size": 1, "max_wait_ms": 2})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: batching.max_batch_size: must be an integer in [2, 1024], got 1
    >>> checked_batching({"max_batch_size": 8})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: batching: must have exactly the fields max_batch_size and max_wait_ms, got ['max_batch_size']
    """  # noqa: E501
    if value is None:
        return None
    if isinstance(value, MicroBatching):
        value = value.to_dict()
    if not isinstance(value, Mapping) or set(value) != {"max_batch_size", "max_wait_ms"}:
        shown = sorted(value) if isinstance(value, Mapping) else value
        raise InvalidArgumentError(
            f"batching: must have exactly the fields max_batch_size and max_wait_ms, got {shown!r}"
        )
    size, wait = value["max_batch_size"], value["max_wait_ms"]
    if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= MAX_BATCH_SIZE:
        raise InvalidArgumentError(
            f"batching.max_batch_size: must be an integer in [2, {MAX_BATCH_SIZE}], got {size!r}"
        )
    if (
        isinstance(wait, bool)
        or not isinstance(wait, int | float)
        or not math.isfinite(wait)
        or not 0 < wait <= MAX_WAIT_MS
    ):
        raise InvalidArgumentError(
            f"batching.max_wait_ms: must be a number in (0, {MAX_WAIT_MS:g}], got {wait!r}"
        )
    return MicroBatching(size, float(wait))


#: The most decimals an answer's probabilities may be rounded to (a double's digits).
MAX_DECIMALS = 15


@dataclass(frozen=True)
class OutputRestriction:
    """What one variant's answers may say: probabilities rounded to ``decimals``, only the
    ``top_k`` largest kept (the others 0), or ``label_only`` (a one-hot row of the
    predicted class); see :func:`opsloop.learn.robustness.restrict_probabilities`.

    >>> OutputRestriction(decimals=2, top_k=1).apply([[0.123, 0.877]])
    [[0.0, 0.88]]
    >>> OutputRestriction(label_only=True).to_dict()
    {'decimals': None, 'top_k': None, 'label_only': True}
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    decimals: (
        Annotated[int, Field(strict=True, ge=0, le=MAX_DECIMALS), BeforeValidator(integral)] | None
    ) = None
    top_k: Annotated[int, Field(strict=True, ge=1), BeforeValidator(integral)] | None = None
    label_only: Annotated[bool, Field(strict=True)] = False

    def apply(self, probabilities: Sequence[Sequence[float]]) -> list[list[float]]:
        """``probabilities`` (rows of one value per class) as this variant answers them."""
        # Imported here: the serving runtime needs it only where a restriction is set.
        from opsloop.learn.robustness.output_defences import restrict_probabilities

        return restrict_probabilities(
            probabilities, decimals=self.decimals, top_k=self.top_k, label_only=self.label_only
        ).tolist()

    def to_dict(self) -> dict[str, Any]:
        """The restriction as a JSON-safe dictionary."""
        return {"decimals": self.decimals, "top_k": self.top_k, "label_only": self.label_only}


def _checked_count(where: str, value: object, low: int, high: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidArgumentError(f"{where}: must be an integer {bound}, got {value!r}")
    return value


def checked_outputs(value: object, variants: Sequence[str]) -> dict[str, OutputRestriction]:
    """``value`` (variant name -> an :class:`OutputRestriction` or its dictionary; ``None``
    for none) as stored, each naming a variant of ``variants``, or an
    :class:`~opsloop.errors.InvalidArgumentError` naming the field and the rule.

    >>> checked_outputs({"stable": {"top_k": 1}}, ["stable"])
    {'stable': OutputRestriction(decimals=None, top_k=1, label_only=False)}
    >>> checked_outputs({"stable": {"decimals": 16}}, ["stable"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: outputs.stable.decimals: must be an integer [0, 15], got 16
    >>> checked_outputs({"canary": {"top_k": 1}}, ["stable"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: outputs: the deployment has no variant 'canary'
    >>> checked_outputs({"stable": {}}, ["stable"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: outputs.stable: restricts nothing; set decimals, top_k or label_only
    """  # noqa: E501
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"outputs: must map variant names to restrictions, got {type(value).__name__}"
        )
    checked: dict[str, OutputRestriction] = {}
    for name, restriction in value.items():
        if name not in variants:
            raise InvalidArgumentError(f"outputs: the deployment has no variant {name!r}")
        where = f"outputs.{name}"
        if isinstance(restriction, OutputRestriction):
            restriction = restriction.to_dict()
        if not isinstance(restriction, Mapping):
            raise InvalidArgumentError(
                f"{where}: must be an object of decimals, top_k and label_only"
            )
        unknown = sorted(set(restriction) - {"decimals", "top_k", "label_only"})
        if unknown:
            raise InvalidArgumentError(
                f"{where}: unknown fields {unknown}; the fields are decimals, top_k, label_only"
            )
        decimals = _checked_count(f"{where}.decimals", restriction.get("decimals"), 0, 15)
        top_k = _checked_count(f"{where}.top_k", restriction.get("top_k"), 1, None)
        label_only = restriction.get("label_only", False)
        if not isinstance(label_only, bool):
            raise InvalidArgumentError(
                f"{where}.label_only: must be true or false, got {label_only!r}"
            )
        if label_only and (decimals is not None or top_k is not None):
            raise InvalidArgumentError(
                f"{where}: label_only answers the predicted class alone; "
                "decimals and top_k would change nothing, leave them out"
            )
        if not label_only and decimals is None and top_k is None:
            raise InvalidArgumentError(
                f"{where}: restricts nothing; set decimals, top_k or label_only"
            )
        checked[name] = OutputRestriction(decimals, top_k, label_only)
    return checked


def _outputs_from(document: Mapping | None) -> dict[str, OutputRestriction]:
    return {name: OutputRestriction(**each) for name, each in (document or {}).items()}


@dataclass(frozen=True)
class DeploymentSettings:
    """A deployment's confidence threshold, assertion rules, micro-batching and its
    variants' output restrictions, at
    ``revision`` (0: never configured), last changed at ``updated_ms`` by ``updated_by``.

    >>> DeploymentSettings("api").to_dict()["assertions"]
    []
    """

    deployment: str
    confidence_threshold: float | None = None
    assertions: tuple[dict[str, Any], ...] = field(default=())
    revision: int = 0
    updated_ms: int | None = None
    updated_by: str | None = None
    batching: MicroBatching | None = None
    outputs: dict[str, OutputRestriction] = field(default_factory=dict)
    routing_key_field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-safe dictionary."""
        return {
            "deployment": self.deployment,
            "confidence_threshold": self.confidence_threshold,
            "assertions": [dict(rule) for rule in self.assertions],
            "revision": self.revision,
            "updated_ms": self.updated_ms,
            "updated_by": self.updated_by,
            "batching": None if self.batching is None else self.batching.to_dict(),
            "outputs": {name: each.to_dict() for name, each in self.outputs.items()},
            "routing_key_field": self.routing_key_field,
        }

    @classmethod
    def from_dict(cls, document: Mapping) -> DeploymentSettings:
        """The settings :meth:`to_dict` wrote.

        >>> s = DeploymentSettings("api", 0.7, ({"name": "r", "when": "x > 1",
        ...                                       "action": "flag"},), 2, 5, "ana",
        ...                        MicroBatching(8, 2.0), {"s": OutputRestriction(top_k=1)})
        >>> DeploymentSettings.from_dict(s.to_dict()) == s
        True
        """
        batching = document.get("batching")
        return cls(
            deployment=document["deployment"],
            confidence_threshold=document.get("confidence_threshold"),
            assertions=tuple(dict(rule) for rule in document.get("assertions") or ()),
            revision=int(document.get("revision", 0)),
            updated_ms=document.get("updated_ms"),
            updated_by=document.get("updated_by"),
            batching=None if batching is None else MicroBatching(**batching),
            outputs=_outputs_from(document.get("outputs")),
            routing_key_field=document.get("routing_key_field"),
        )


def _checked_threshold(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise InvalidArgumentError(
            f"confidence_threshold: must be a number in [0, 1], got {value!r}"
        )
    return float(value)


def settings_in(connection: Connection, deployment: str) -> DeploymentSettings:
    """The settings of ``deployment`` read on ``connection`` (defaults when never set)."""
    row = (
        connection.execute(sa.select(_settings).where(_settings.c.deployment == deployment))
        .mappings()
        .first()
    )
    if row is None:
        return DeploymentSettings(deployment)
    batching = row["batching_json"]
    return DeploymentSettings(
        deployment=deployment,
        confidence_threshold=row["confidence_threshold"],
        assertions=tuple(json.loads(row["assertions_json"])),
        revision=row["revision"],
        updated_ms=row["updated_ms"],
        updated_by=row["updated_by"],
        batching=None if batching is None else MicroBatching(**json.loads(batching)),
        outputs=_outputs_from(json.loads(row["outputs_json"] or "{}")),
        routing_key_field=row["routing_key_field"],
    )


def read_settings(db: Database, deployment: str) -> DeploymentSettings:
    """The settings of ``deployment`` now (defaults when never configured).

    >>> read_settings(Database("sqlite://"), "api").revision
    0
    """
    with db.read() as connection:
        return settings_in(connection, deployment)


def checked_settings(
    confidence_threshold: object, assertions: Sequence[Mapping[str, Any]]
) -> tuple[float | None, str]:
    """The threshold and the rules as stored (the rules as JSON), or an
    :class:`~opsloop.errors.InvalidArgumentError` naming what is wrong.

    >>> checked_settings(0.5, [{"name": "r", "when": "x >", "action": "flag"}])
    Traceback (most recent call last):
    opsloop.analysis.assertions.AssertionRuleError: rule 'r': ...
    >>> checked_settings(None, [{"name": "input_detector", "when": "x > 1", "action": "flag"}])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: assertions.0.name: 'input_detector' is reserved ...
    """
    threshold = _checked_threshold(confidence_threshold)
    rules = [dict(rule) if isinstance(rule, Mapping) else rule for rule in assertions]
    parse_assertions(rules)  # a broken rule is refused here, naming it
    for position, rule in enumerate(rules):
        if rule.get("name") == DETECTOR_COUNT:
            raise InvalidArgumentError(
                f"assertions.{position}.name: {DETECTOR_COUNT!r} is reserved for the count of "
                "records the input anomaly detector flagged; give the rule another name"
            )
    try:
        return threshold, json.dumps(rules, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"assertions: must be plain JSON values ({error})") from None


def check_rule_fields(rules_json: str, signatures: Mapping[str, tuple[str, int, Any]]) -> None:
    """Refuse rules (as :func:`checked_settings` stores them) that read a field the records
    of a variant cannot have: with an :class:`~opsloop.errors.InvalidArgumentError` naming
    the rule's ``assertions.N.when``, the field and the fields there are. ``signatures``
    maps each variant to its model, version and input schema; a variant without a schema
    takes any fields, so its rules are not checked.

    >>> from opsloop.data.schema import infer_schema
    >>> import pandas as pd
    >>> schema = infer_schema(pd.DataFrame({"mean radius": [1.0], "age": [3]}))
    >>> rules = json.dumps([{"name": "big", "when": "mean_radius > 25", "action": "flag"}])
    >>> check_rule_fields(rules, {"stable": ("m", 1, schema)})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: assertions.0.when: unknown field 'mean_radius': variant 'stable' (model 'm' version 1) has the fields ['age', 'mean radius'] and the outputs ['prediction', 'probability']
    >>> ok = json.dumps([{"name": "big", "when": "`mean radius` > 25", "action": "flag"}])
    >>> check_rule_fields(ok, {"stable": ("m", 1, schema)})
    """  # noqa: E501 - a doctest's expected output is one line
    rules = parse_assertions(json.loads(rules_json))
    for variant, (model, version, schema) in signatures.items():
        found = unknown_rule_field(rules, schema)
        if found is not None:
            position, _, unknown = found
            raise InvalidArgumentError(
                f"assertions.{position}.when: unknown field {excerpt(unknown)}: variant "
                f"{variant!r} (model {model!r} version {version}) has " + fields_there(schema)
            )


def check_new_variant_rules(
    connection: Connection,
    name: str,
    variants: Sequence[Any],
    numbers: Sequence[int],
    before: Any = None,
) -> None:
    """Refuse a new definition of deployment ``name`` (``variants``, each serving the
    version of ``numbers``) when a version it brings (see
    :func:`~.input_detector_settings.new_version_signatures`) has records that lack a field
    one of the deployment's assertion rules reads: every request would then fail. The
    :class:`~opsloop.errors.InvalidArgumentError` names the variant's field
    (``variants.N``), the rule and the field, so the rules are changed first (or the deploy
    waits for them). Called in the definition's write transaction, before it changes.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as connection:
    ...     check_new_variant_rules(connection, "api", (), ())
    """
    assertions = settings_in(connection, name).assertions
    if not assertions:
        return
    rules = parse_assertions(list(assertions))
    for position, found in new_version_signatures(connection, variants, numbers, before):
        for variant, (model, version, schema) in found.items():
            unknown = unknown_rule_field(rules, schema)
            if unknown is None:
                continue
            index, rule, field_name = unknown
            raise InvalidArgumentError(
                f"variants.{position}: assertion {excerpt(rule.name)} (assertions.{index}.when) "
                f"of deployment {name!r} reads the field {excerpt(field_name)}, which the "
                f"records of variant {variant!r} (model {model!r} version {version}) lack: "
                f"they have {fields_there(schema)} (change the assertions first)"
            )


def store_settings(
    connection: Connection,
    deployment: str,
    threshold: float | None,
    rules_json: str,
    *,
    actor: str,
    at_ms: int,
    reason: str | None = None,
    batching: MicroBatching | None = None,
    outputs: Mapping[str, OutputRestriction] | None = None,
    routing_key_field: str | None = None,
) -> DeploymentSettings:
    """Replace the settings of ``deployment`` inside the caller's write transaction, with
    their audit entry; the settings as stored (the caller checked the deployment, the
    actor's role and the values with :func:`checked_settings`, :func:`checked_batching`
    and :func:`checked_outputs`)."""
    before = settings_in(connection, deployment)
    after = DeploymentSettings(
        deployment,
        threshold,
        tuple(json.loads(rules_json)),
        before.revision + 1,
        at_ms,
        actor,
        batching,
        dict(outputs or {}),
        routing_key_field,
    )
    values = {
        "revision": after.revision,
        "confidence_threshold": threshold,
        "assertions_json": rules_json,
        "updated_ms": at_ms,
        "updated_by": actor,
        "batching_json": None if batching is None else json.dumps(batching.to_dict()),
        "outputs_json": (
            json.dumps({name: each.to_dict() for name, each in after.outputs.items()})
            if after.outputs
            else None
        ),
        "routing_key_field": routing_key_field,
    }
    if before.revision == 0:
        connection.execute(_settings.insert().values(deployment=deployment, **values))
    else:
        connection.execute(
            _settings.update().where(_settings.c.deployment == deployment).values(**values)
        )
    append_audit(
        connection,
        actor,
        "configure",
        f"deployment:{deployment}",
        reason,
        None if before.revision == 0 else _audited(before),
        _audited(after),
        at_ms=at_ms,
    )
    return after


def retire_settings(
    connection: Connection, deployment: str, who: str, reason: str | None, at_ms: int
) -> None:
    """Delete ``deployment``'s settings as part of its retire, in the retire's write
    transaction: a deployment later created under the same name starts with the defaults
    (no threshold, no rules, no micro-batching, no output restrictions, revision 0) rather
    than inheriting them. When it had settings, the change is audited as a ``configure``
    entry by the retire's actor with its reason (before: what they were; after: the
    defaults), so the settings' own history ends where the deployment's does.

    >>> db = Database("sqlite://")
    >>> with db.write() as c:
    ...     _ = store_settings(c, "api", 0.8, "[]", actor="ana", at_ms=1)
    ...     retire_settings(c, "api", "bo", "moved", 2)
    ...     entry = c.execute(sa.select(tables.audit_log).order_by(tables.audit_log.c.id.desc())
    ...                       ).mappings().first()
    >>> entry["actor"], entry["action"], entry["reason"], json.loads(entry["before_json"])["confidence_threshold"]
    ('bo', 'configure', 'moved', 0.8)
    >>> read_settings(db, "api") == DeploymentSettings("api")
    True
    >>> with db.write() as c:  # never configured: nothing to delete, nothing to audit
    ...     retire_settings(c, "web", "bo", None, 3)
    ...     c.execute(sa.select(sa.func.count()).select_from(tables.audit_log)).scalar()
    2
    """  # noqa: E501
    before = settings_in(connection, deployment)
    if before.revision == 0:
        return
    connection.execute(_settings.delete().where(_settings.c.deployment == deployment))
    append_audit(
        connection,
        who,
        "configure",
        f"deployment:{deployment}",
        reason,
        _audited(before),
        _audited(DeploymentSettings(deployment)),
        at_ms=at_ms,
    )


def _audited(settings: DeploymentSettings) -> dict[str, Any]:
    document = settings.to_dict()
    document.pop("updated_ms")
    return document


__all__ = [
    "DETECTOR_COUNT",
    "DeploymentSettings",
    "MicroBatching",
    "OutputRestriction",
    "check_new_variant_rules",
    "check_rule_fields",
    "checked_batching",
    "checked_outputs",
    "checked_settings",
    "read_settings",
    "retire_settings",
    "settings_in",
    "store_settings",
]
