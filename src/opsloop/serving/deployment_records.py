"""What a deployment is: its variants, their roles and traffic weights, and the rules they obey.

A **deployment** is a named endpoint. Each **variant** serves one model, either a fixed
version or whatever an alias of the model points at (``champion`` moves, the deployment
follows), with a role and a share of the live traffic:

- ``primary``: the variant that answers (one per deployment);
- ``candidate``: a new model answering a share (the canary, the B arm, the green side);
- ``shadow``: receives a copy of each request; its answers are recorded, never returned, so
  its weight is 0. Its ``shadow_sample`` (a share in (0, 1], default 1) caps what it costs
  the machine: it answers the copies of that share of the requests, chosen by a hash of the
  request id (:mod:`.shadow_sampling`).

The **strategy** says how the live weights may be set: ``single`` (one variant), ``shadow``
(the primary answers everything, one or more shadows watch), ``canary`` (one candidate
with a share strictly between 0 and 1), ``blue_green`` (two variants, one with all the
traffic, the other on standby at 0), ``ab`` and ``bandit`` (two or more variants, each with
a positive share; a bandit's weights are its starting allocation). Shadows may ride along
any strategy but ``single``. The **automation** level is the article's scale of human
involvement, from ``human_only`` to ``full_automation``.

>>> primary = Variant("stable", "credit", alias="champion")
>>> canary = Variant.parse("canary=credit/4,role=candidate,weight=0.05")
>>> check_definition("canary", "full_automation", (primary.with_weight(0.95), canary))
>>> check_definition("canary", "full_automation", (primary, canary))
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: variants: the live weights must sum to 1, got 1.05 (stable...
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated

import pandas as pd
from pydantic import ConfigDict, Field

from opsloop.contract.wire_types import Key, OneOf, Version
from opsloop.errors import ConflictError, InvalidArgumentError
from opsloop.registry.records import Lineage
from opsloop.serving.shadow_sampling import checked_shadow_sample
from opsloop.tracking.limits import INT32_MAX, checked_key

STRATEGIES = ("single", "shadow", "canary", "blue_green", "ab", "bandit")
#: The article's degrees of automation, from no model in the loop to no human in it.
AUTOMATION_LEVELS = (
    "human_only",
    "shadow",
    "ai_assistance",
    "partial_automation",
    "full_automation",
)
VARIANT_ROLES = ("primary", "candidate", "shadow")
# Weights are shares of traffic; a sum within this of 1 is 1 (0.95 + 0.05 is not exactly 1).
_WEIGHT_TOLERANCE = 1e-9


class StaleRevisionError(ConflictError):
    """A change conditional on a deployment's revision (``expected_revision``) found the
    deployment changed since (409): read it again before changing it."""


@dataclass(frozen=True)
class Variant:
    """One model behind a deployment: a fixed ``version`` or an ``alias``, a role and a weight.

    >>> Variant("stable", "credit", version=3).ref
    'credit/3'
    >>> Variant("stable", "credit", alias="champion").ref
    'credit@champion'
    """

    # The annotations are the wire's bounds, so a variant arriving over HTTP is refused
    # with the field's name before the rules below run; refusing unknown fields too.
    __pydantic_config__ = ConfigDict(extra="forbid")

    name: Key
    model: Key
    version: Version | None = None
    alias: Key | None = None
    role: Annotated[str, OneOf(VARIANT_ROLES)] = "primary"
    weight: Annotated[float, Field(strict=True, ge=0, le=1)] = 1.0
    shadow_sample: Annotated[float, Field(strict=True, gt=0, le=1)] = 1.0

    @property
    def ref(self) -> str:
        """``MODEL/VERSION`` or ``MODEL@ALIAS``."""
        return f"{self.model}@{self.alias}" if self.alias else f"{self.model}/{self.version}"

    def with_weight(self, weight: float) -> Variant:
        """A copy with another weight.

        >>> Variant("a", "m", version=1).with_weight(0.5).weight
        0.5
        """
        return replace(self, weight=weight)

    @classmethod
    def parse(cls, text: str) -> Variant:
        """A variant from ``NAME=MODEL/VERSION`` or ``NAME=MODEL@ALIAS``, then optional
        ``,role=ROLE``, ``,weight=SHARE`` and, for a shadow, ``,sample=SHARE`` (its
        ``shadow_sample``; the command line's form).

        >>> Variant.parse("shadow=credit/7,role=shadow,weight=0,sample=0.25")
        Variant(name='shadow', model='credit', version=7, alias=None, role='shadow', \
weight=0.0, shadow_sample=0.25)
        >>> Variant.parse("stable=credit")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: variant 'stable=credit': the model must be...
        """
        name, equals, rest = text.partition("=")
        parts = rest.split(",")
        ref, options = parts[0], parts[1:]
        if not equals or not name:
            raise InvalidArgumentError(
                f"variant {text!r}: write NAME=MODEL/VERSION or NAME=MODEL@ALIAS, "
                "then ,role=ROLE, ,weight=SHARE and ,sample=SHARE if needed"
            )
        fields: dict[str, object] = {}
        for option in options:
            key, has_value, value = option.partition("=")
            if key not in _OPTIONS or not has_value:
                raise InvalidArgumentError(
                    f"variant {text!r}: options are role=ROLE, weight=SHARE and sample=SHARE"
                )
            if key == "role":
                fields["role"] = value
            else:
                try:
                    fields[_OPTIONS[key]] = float(value)
                except ValueError:
                    raise InvalidArgumentError(
                        f"variant {text!r}: {key} must be a number, got {value!r}"
                    ) from None
        if "@" in ref:
            model, _, alias = ref.rpartition("@")
            return cls(name, model, alias=alias, **fields)
        model, slash, version = ref.rpartition("/")
        if not slash or not model or not version.isdigit():
            raise InvalidArgumentError(
                f"variant {text!r}: the model must be MODEL/VERSION or MODEL@ALIAS"
            )
        return cls(name, model, version=int(version), **fields)

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> Variant("a", "m", version=1).to_dict()["role"]
        'primary'
        """
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "role": self.role,
            "weight": self.weight,
            "shadow_sample": self.shadow_sample,
        }

    @classmethod
    def from_dict(cls, document: Mapping) -> Variant:
        """The variant :meth:`to_dict` wrote (a definition kept before shadows could be
        sampled has a shadow answer every copy).

        >>> v = Variant("a", "m", alias="prod", weight=0.5)
        >>> Variant.from_dict(v.to_dict()) == v
        True
        """
        return cls(
            **{name: document[name] for name in cls.__dataclass_fields__ if name in document}
        )


#: The command line's variant options and the fields they set.
_OPTIONS = {"role": "role", "weight": "weight", "sample": "shadow_sample"}


def _check_variant(variant: object) -> Variant:
    if not isinstance(variant, Variant):
        raise TypeError(f"variants must be Variant objects, got {type(variant).__name__}")
    where = f"variant {variant.name!r}"
    checked_key("variant", variant.name)
    checked_key("model name", variant.model)
    if (variant.version is None) == (variant.alias is None):
        raise InvalidArgumentError(
            f"{where}: give a version or an alias of {variant.model!r}, not both"
        )
    if variant.version is not None and (
        isinstance(variant.version, bool)
        or not isinstance(variant.version, int)
        or not 1 <= variant.version <= INT32_MAX
    ):
        raise InvalidArgumentError(
            f"{where}: version must be a positive integer, got {variant.version!r}"
        )
    if variant.alias is not None:
        checked_key("alias", variant.alias)
    if variant.role not in VARIANT_ROLES:
        raise InvalidArgumentError(
            f"{where}: role must be one of {', '.join(VARIANT_ROLES)}, got {variant.role!r}"
        )
    weight = variant.weight
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not 0 <= weight <= 1
    ):
        raise InvalidArgumentError(
            f"{where}: weight must be a share between 0 and 1, got {weight!r}"
        )
    if variant.role == "shadow" and weight != 0:
        raise InvalidArgumentError(f"{where}: a shadow answers no traffic; its weight must be 0")
    checked_shadow_sample(variant.shadow_sample, f"{where}: shadow_sample")
    if variant.role != "shadow" and variant.shadow_sample != 1:
        raise InvalidArgumentError(
            f"{where}: shadow_sample applies to shadows only; a {variant.role} answers its "
            f"weight's share of the requests, so its sample must be 1, got "
            f"{variant.shadow_sample!r}"
        )
    return variant


def check_definition(strategy: str, automation: str, variants: Sequence[Variant]) -> None:
    """Raise a ValueError naming the field and the rule if the definition is not valid.

    >>> check_definition("single", "full_automation", [Variant("a", "m", version=1)])
    >>> check_definition("ab", "full_automation", [Variant("a", "m", version=1)])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: strategy 'ab': needs two or more live variants, got 1
    """
    if strategy not in STRATEGIES:
        raise InvalidArgumentError(
            f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if automation not in AUTOMATION_LEVELS:
        raise InvalidArgumentError(
            f"automation must be one of {', '.join(AUTOMATION_LEVELS)}, got {automation!r}"
        )
    if isinstance(variants, str | bytes) or not variants:
        raise InvalidArgumentError("variants: a deployment needs at least one variant")
    variants = [_check_variant(variant) for variant in variants]
    names = [variant.name for variant in variants]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidArgumentError(f"variants: each name must be used once, repeated: {repeated}")
    primaries = [v.name for v in variants if v.role == "primary"]
    if len(primaries) != 1:
        raise InvalidArgumentError(
            f"variants: exactly one must have the primary role, got {primaries}"
        )
    live = [v for v in variants if v.role != "shadow"]
    shadows = [v for v in variants if v.role == "shadow"]
    total = math.fsum(v.weight for v in live)
    if abs(total - 1.0) > _WEIGHT_TOLERANCE:
        shares = ", ".join(f"{v.name} {v.weight:g}" for v in live)
        raise InvalidArgumentError(
            f"variants: the live weights must sum to 1, got {total:g} ({shares})"
        )
    rule = f"strategy {strategy!r}"
    if strategy == "single" and len(variants) != 1:
        raise InvalidArgumentError(f"{rule}: needs exactly one variant, got {len(variants)}")
    if strategy == "shadow" and (len(live) != 1 or not shadows):
        raise InvalidArgumentError(
            f"{rule}: needs the primary and at least one shadow, got {len(live)} live "
            f"and {len(shadows)} shadow variants"
        )
    if strategy == "canary":
        if len(live) != 2:
            raise InvalidArgumentError(
                f"{rule}: needs the primary and one candidate, got {len(live)} live"
            )
        share = live[0].weight if live[0].role == "candidate" else live[1].weight
        if not 0 < share < 1:
            raise InvalidArgumentError(
                f"{rule}: the candidate's share must be between 0 and 1, got {share}"
            )
    if strategy == "blue_green" and (
        len(live) != 2 or sorted(v.weight for v in live) != [0.0, 1.0]
    ):
        weights = [v.weight for v in live]
        raise InvalidArgumentError(
            f"{rule}: needs two live variants, one with weight 1 and one on standby at 0, "
            f"got weights {weights}"
        )
    if strategy in ("ab", "bandit"):
        if len(live) < 2:
            raise InvalidArgumentError(f"{rule}: needs two or more live variants, got {len(live)}")
        idle = [v.name for v in live if v.weight == 0]
        if idle:
            raise InvalidArgumentError(
                f"{rule}: every live variant needs a positive share, {idle} have 0"
            )


@dataclass(frozen=True)
class Deployment:
    """A deployment as defined now (or at a past time), with the version each variant serves.

    ``serving`` maps each variant's name to the model version it serves: the fixed version,
    or the one its alias pointed at (``None`` if the alias did not exist then).
    ``required_approvals`` is how many approvals a change of a protected deployment needs,
    and ``required_gate`` the release gate each version a change puts traffic on must have
    passed (``False``: none; ``True``: any; else the gate's name or sha256).
    ``generation`` is how many deployments of the name were retired before this one was
    created (0 for the first): the events it answers carry it, so that one written after
    its retire goes to its history (:mod:`opsloop.serving.retired_names`).
    ``revision`` is the id of the audit entry (a ``deploy`` or ``rollback``) that set this
    definition (0: not read from the log): a change conditional on it
    (``expected_revision``) is refused when the definition moved on since it was read.

    >>> d = Deployment("credit-api", "single", "full_automation",
    ...                (Variant("stable", "credit", alias="champion"),), None, 0, "ana",
    ...                {"stable": 3})
    >>> d.to_frame()[["variant", "ref", "serving"]].values.tolist()
    [['stable', 'credit@champion', 3]]
    """

    name: str
    strategy: str
    automation: str
    variants: tuple[Variant, ...]
    description: str | None
    updated_ms: int
    updated_by: str
    serving: Mapping[str, int | None]
    required_approvals: int = 0
    required_gate: bool | str = False
    generation: int = 0
    revision: int = 0

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> Deployment("d", "single", "shadow", (), None, 0, "ana", {}).to_dict()["automation"]
        'shadow'
        """
        return {
            "name": self.name,
            "strategy": self.strategy,
            "automation": self.automation,
            "variants": [variant.to_dict() for variant in self.variants],
            "description": self.description,
            "updated_ms": self.updated_ms,
            "updated_by": self.updated_by,
            "serving": dict(self.serving),
            "required_approvals": self.required_approvals,
            "required_gate": self.required_gate,
            "generation": self.generation,
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, document: Mapping) -> Deployment:
        """The deployment :meth:`to_dict` wrote.

        >>> d = Deployment("d", "single", "shadow", (Variant("a", "m", version=2),), None, 5,
        ...                "ana", {"a": 2})
        >>> Deployment.from_dict(d.to_dict()) == d
        True
        """
        return cls(
            name=document["name"],
            strategy=document["strategy"],
            automation=document["automation"],
            variants=tuple(Variant.from_dict(v) for v in document["variants"]),
            description=document["description"],
            updated_ms=document["updated_ms"],
            updated_by=document["updated_by"],
            serving=dict(document["serving"]),
            required_approvals=int(document.get("required_approvals", 0)),
            # Documents written before a gate could be required name none.
            required_gate=document.get("required_gate", False),
            # Documents written before generations were counted name none.
            generation=int(document.get("generation", 0)),
            # Documents of the audit log do not name the entry that holds them.
            revision=int(document.get("revision", 0)),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per variant: ``variant``, ``role``, ``weight``, ``ref``, ``serving``,
        ``shadow_sample``.

        >>> Deployment("d", "single", "shadow", (), None, 0, "ana", {}).to_frame().shape
        (0, 6)
        """
        return pd.DataFrame(
            [
                {
                    "variant": v.name,
                    "role": v.role,
                    "weight": v.weight,
                    "ref": v.ref,
                    "serving": self.serving.get(v.name),
                    "shadow_sample": v.shadow_sample,
                }
                for v in self.variants
            ],
            columns=["variant", "role", "weight", "ref", "serving", "shadow_sample"],
        )


@dataclass(frozen=True)
class VariantLineage:
    """A deployment variant and the lineage of the version it serves.

    >>> lineage = Lineage("m", 1, None, "a" * 64, None, None, None, None, None, None, None,
    ...                   None, None, ())
    >>> VariantLineage("api", "stable", "primary", 1.0, lineage).to_dict()["model"]
    'm'
    """

    deployment: str
    variant: str
    role: str
    weight: float
    lineage: Lineage

    def to_dict(self) -> dict[str, object]:
        """The deployment's fields, then the lineage's, as one JSON-safe dictionary.

        >>> lineage = Lineage("m", 1, None, "a" * 64, None, None, None, None, None, None,
        ...                   None, None, None, ())
        >>> list(VariantLineage("api", "s", "primary", 1.0, lineage).to_dict())[:5]
        ['deployment', 'variant', 'role', 'weight', 'model']
        """
        return {
            "deployment": self.deployment,
            "variant": self.variant,
            "role": self.role,
            "weight": self.weight,
            **self.lineage.to_dict(),
        }

    @classmethod
    def from_dict(cls, document: Mapping) -> VariantLineage:
        """The variant lineage :meth:`to_dict` wrote.

        >>> lineage = Lineage("m", 1, None, "a" * 64, None, None, None, None, None, None,
        ...                   None, None, None, ())
        >>> v = VariantLineage("api", "s", "primary", 1.0, lineage)
        >>> VariantLineage.from_dict(v.to_dict()) == v
        True
        """
        return cls(
            deployment=document["deployment"],
            variant=document["variant"],
            role=document["role"],
            weight=document["weight"],
            lineage=Lineage.from_dict(document),
        )
