"""The model registry's contract: its operations, and how each crosses HTTP.

:class:`RegistryService` names what every registry offers: the local
:class:`~opsloop.registry.ModelRegistry` and
:class:`~opsloop.registry.http_registry.HttpModelRegistry` both satisfy it (a test checks
their signatures against it). :data:`REGISTRY_OPERATIONS` places each operation on the wire;
the server's routes and the HTTP client are generated from it (:mod:`opsloop.contract`).

Five methods are ``composed``: written by hand on the client, on top of the operations.
``register`` over HTTP saves the model object here and uploads its bytes before its
operation (whose route is generated) registers their hash; ``load``, ``artifact_bytes``,
``resolve`` and ``load_reference`` have no operation: the bytes travel, and the model object
is made where it is used, by the loading user's trust rules (:mod:`.model_trust`), never
the server's.

>>> operation = REGISTRY_OPERATIONS.operation("get_version")
>>> operation.verb, operation.path, operation.query
('GET', '/models/{name:path}/version', ('version', 'alias'))
>>> REGISTRY_OPERATIONS.body_model(REGISTRY_OPERATIONS.operation("set_alias"))(version=True)
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for RegistrySetAliasIn
version
  Input should be a valid integer [type=int_type, input_value=True, input_type=bool]
...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Protocol

import pandas as pd
from pydantic import BaseModel, Field

from opsloop.contract.operation import Answer, Operation, ServiceTable, record, wrapped
from opsloop.contract.wire_types import (
    Approvals,
    AskedTimeMs,
    EntryId,
    Key,
    Name,
    Number,
    Offset,
    OneOf,
    PageRows,
    Scalar,
    Sha256,
    Text,
    Version,
)
from opsloop.errors import InvalidArgumentError
from opsloop.registry.audit import AuditVerification, audit_frame
from opsloop.registry.flavors import FLAVORS
from opsloop.registry.model_registry import SEARCH_COLUMNS, pending_frame
from opsloop.registry.records import Lineage, ModelVersion
from opsloop.reports.frame_records import frame_records
from opsloop.tracking.limits import metric_value

Flavor = Annotated[str, OneOf(FLAVORS)]
#: No gate (``false``), any gate (``true``), or a gate's name or file sha256.
GateRequirement = Annotated[bool, Field(strict=True)] | Annotated[Name, Field(min_length=1)]


class RegistryService(Protocol):
    """Registered models, their versions, aliases, approvals, lineage and the audit log
    (see :class:`~opsloop.registry.ModelRegistry` for the rules). ``actor`` is the acting
    user: locally it defaults to the registry's, over HTTP the token's owner acts."""

    def list_models(
        self, name: Key | None = None, *, limit: PageRows | None = None, offset: Offset = 0
    ) -> pd.DataFrame:
        """Registered models by name with their latest version and aliases: the ``limit``
        models (default: all) after the first ``offset``, or the one called ``name``."""
        ...

    def search(
        self,
        text: Name | None = None,
        *,
        tags: Mapping[Name, Name] | None = None,
        alias: Name | None = None,
        min_metrics: Mapping[Name, Number] | None = None,
        max_metrics: Mapping[Name, Number] | None = None,
        model: Key | None = None,
        limit: PageRows | None = None,
        offset: Offset = 0,
    ) -> pd.DataFrame:
        """Versions matching text, tags, alias, metric bounds and a model's exact name,
        newest first: the ``limit`` versions (default: all) after the first ``offset``."""
        ...

    def register(
        self,
        name: Key,
        model: object = None,
        *,
        flavor: Flavor | None = None,
        artifact_sha256: Sha256 | None = None,
        run_id: Name | None = None,
        input_schema: Any = None,
        output_type: Name | None = None,
        metrics: Mapping[Key, Number] | None = None,
        tags: Mapping[Key, Scalar] | None = None,
        description: Text | None = None,
        actor: str | None = None,
        reason: Text | None = None,
        training_data: pd.DataFrame | None = None,
        training_reference: str | None = None,
        label_column: str | None = None,
    ) -> ModelVersion:
        """Register a new version of a model from its object, or from an artifact already
        stored (``artifact_sha256``), with the reference of its ``training_data``'s input
        columns (built by the client and sent as ``training_reference``; the
        ``label_column`` kept as its labels) for monitoring."""
        ...

    def get_version(
        self, name: Key, version: Version | None = None, alias: Key | None = None
    ) -> ModelVersion:
        """A version by number, by alias, or the newest one."""
        ...

    def loader_record(
        self, name: Key, version: Version | None = None, alias: Key | None = None
    ) -> dict[str, Any]:
        """The loader record kept at registration (for skops, the types the file names)."""
        ...

    def lineage(
        self, name: Key, version: Version | None = None, alias: Key | None = None
    ) -> Lineage:
        """Artifact, run, code, packages and data sets behind a version."""
        ...

    def set_description(self, name: Key, description: Text, *, actor: str | None = None) -> None:
        """Replace a model's description."""
        ...

    def protect_alias(
        self,
        name: Key,
        alias: Key,
        required_approvals: Approvals,
        *,
        require_gate: GateRequirement = False,
        actor: str | None = None,
        reason: Text | None = None,
    ) -> None:
        """Require approvals by distinct approvers before the alias moves (admin), and
        with ``require_gate`` a passed release gate of the version against the alias's
        current one (``true``: any gate; text: the gate's name or file sha256). Lowering
        or removing a protection needs approvals of it first (``approve_protection``), by
        people other than the admin."""
        ...

    def approve_protection(
        self,
        name: Key,
        alias: Key,
        required_approvals: Approvals,
        *,
        require_gate: GateRequirement = False,
        actor: str | None = None,
        comment: Text | None = None,
    ) -> int:
        """Approve lowering or removing the alias's protection to exactly this one
        (approver); the approvals of that change so far. An admin applies it with
        ``protect_alias``; an approval never counts toward a change its approver applies."""
        ...

    def approve(
        self,
        name: Key,
        alias: Key,
        version: Version,
        *,
        actor: str | None = None,
        comment: Text | None = None,
    ) -> int:
        """Approve moving the alias to a version (approver); the approvals so far (an
        approval never counts toward a move its approver makes)."""
        ...

    def pending_approvals(self, name: Key, *, version: Version | None = None) -> pd.DataFrame:
        """The approvals of the model's alias moves not used by a move yet (of ``version``
        only, if given), oldest first: who approved which alias for which version, and how
        many distinct approvers it has of how many its protection requires."""
        ...

    def record_gate(
        self,
        name: Key,
        version: Version,
        *,
        passed: Annotated[bool, Field(strict=True)],
        gate: Mapping[Name, Any],
        actor: str | None = None,
        reason: Text | None = None,
    ) -> str:
        """Record a release gate's verdict on a version in the audit log (editor); the
        entry's hash."""
        ...

    def alias_at(self, name: Key, alias: Key, at_ms: AskedTimeMs) -> int | None:
        """The version the alias pointed at, at ``at_ms`` (null if none)."""
        ...

    def set_alias(
        self,
        name: Key,
        alias: Key,
        version: Version,
        *,
        actor: str | None = None,
        reason: Text | None = None,
    ) -> None:
        """Point the alias at a version (protected aliases need their approvals by people
        other than the mover, and a passed gate where they require one, first); the version
        it points at already is a no-op."""
        ...

    def audit(
        self,
        name: Name | None = None,
        *,
        version: Version | None = None,
        last: PageRows | None = None,
        before: EntryId | None = None,
    ) -> pd.DataFrame:
        """The audit log, oldest first (all entities, one model's, or with ``version`` only
        that version's entries); with ``before``, the entries whose id is lower, and with
        ``last``, the newest ``last`` of those."""
        ...

    def verify_audit_log(self, head: Sha256 | None = None) -> AuditVerification:
        """Whether the keyed chain of the audit log is intact, still holds the published
        ``head``, and agrees with the current state."""
        ...

    def audit_head(self) -> dict[str, object]:
        """The audit log's newest entry (id, time, hash) and its length, to publish."""
        ...

    def load(
        self,
        name: str,
        version: int | None = None,
        alias: str | None = None,
        *,
        trust: bool = False,
        trusted_types: Iterable[str] = (),
    ) -> object:
        """The model object, after verifying its artifact against the recorded sha256."""
        ...

    def artifact_bytes(self, name: str, version: int) -> bytes:
        """The bytes of a version's artifact, checked against its recorded sha256 (not
        deserialised, so no trust is needed)."""
        ...

    def resolve(self, reference: str) -> ModelVersion:
        """The version ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or ``runs:/ID``
        names."""
        ...

    def load_reference(
        self, reference: str, *, trust: bool = False, trusted_types: Iterable[str] = ()
    ) -> object:
        """The model a reference names, loaded as ``load`` does."""
        ...


class ModelRow(BaseModel):
    """One registered model."""

    name: str
    description: str | None
    latest_version: int
    aliases: dict[str, int] = Field(description="alias -> version")


class VersionRow(BaseModel):
    """One version found by a search."""

    model: str
    version: int
    flavor: str
    aliases: list[str]
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str | None
    run_id: str | None
    artifact_sha256: str


class LineageDocument(BaseModel):
    """Where a version came from: artifact, run, experiment, code, packages, data sets."""

    model: str
    version: int
    alias: str | None
    artifact_sha256: str
    run_id: str | None
    experiment: str | None
    git_commit: str | None
    git_branch: str | None
    git_dirty: bool | None
    git_diff_sha256: str | None
    python_version: str | None
    environment_sha256: str | None
    packages: list[str] | None
    datasets: dict[str, str] = Field(description="data set name -> sha256")


class AuditEntry(BaseModel):
    """One entry of the keyed audit log."""

    id: int
    time: int = Field(description="milliseconds since the epoch")
    actor: str
    action: str
    entity: str
    reason: str | None
    prev_hash: str
    hash: str
    before: Any
    after: Any
    origin: dict[str, str | None] | None = Field(
        None,
        description="where the change came from: via http (token id, client address) or "
        "python (program, host); null in entries written before origins were recorded",
    )
    decision: dict[str, Any] | None = Field(
        None,
        description="the decision of a rollout's controller behind this change (action, "
        "share, stable and candidate variants, evidence: each gate's statistic, threshold "
        "and samples); null for every change a person or another process made",
    )


class PendingApprovalRow(BaseModel):
    """An approval of an alias move not used by a move yet."""

    alias: str
    version: int
    approver: str
    comment: str | None
    created_ms: int
    approvals: int = Field(
        description="distinct approvers of this alias and version so far whose approval "
        "still counts"
    )
    required: int = Field(
        description="approvals a move needs now: the alias's protection, or a protected "
        "deployment that follows the alias if it asks for more"
    )
    lapsed: str | None = Field(
        None,
        description="why this approval no longer counts (its approver is disabled or holds "
        "a role that cannot approve now); null while it counts",
    )


class AuditHead(BaseModel):
    """The audit log's newest entry and its length (nulls for an empty log)."""

    id: int | None
    at_ms: int | None
    hash: str | None
    entries: int


def _models_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["name", "description", "latest_version", "aliases"], dtype=object
    )
    frame["latest_version"] = frame["latest_version"].astype("int64")
    return frame


def _versions_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [{**row, "aliases": tuple(row["aliases"])} for row in rows], columns=SEARCH_COLUMNS
    )


def audit_rows(rows: list[dict]) -> pd.DataFrame:
    """The audit frame from the wire's entries (``time`` in ms since the epoch).

    >>> audit_rows([{"id": 1, "time": 0, "actor": "ana", "action": "register",
    ...     "entity": "model:m", "reason": None, "prev_hash": "0", "hash": "1",
    ...     "before": None, "after": {"version": 1}}])["after"].iloc[0]
    {'version': 1}
    """
    return audit_frame({**row, "at_ms": row["time"]} for row in rows)


def _one_selector(arguments: Mapping[str, Any]) -> None:
    if arguments.get("version") is not None and arguments.get("alias") is not None:
        raise InvalidArgumentError("give a version or an alias, not both")


def _finite_bounds(arguments: Mapping[str, Any]) -> None:
    for bounds in ("min_metrics", "max_metrics"):
        for key, value in (arguments.get(bounds) or {}).items():
            metric_value(key, value)


#: How many distinct approvals a change has so far (an alias move or a deployment's).
APPROVAL_COUNT = wrapped("approvals", Annotated[int, Field(ge=0)], title="ApprovalCount")
_AUDIT = wrapped("entries", list[AuditEntry], frame_records, audit_rows, title="AuditLog")
_SELECTED = ("version", "alias")

#: The registry on the wire. More specific paths come first: the server matches routes in
#: this order, and model names and aliases may hold ``/``.
REGISTRY_OPERATIONS = ServiceTable(
    RegistryService,
    [
        Operation(
            "list_models",
            "GET",
            "/models",
            query=("name", "limit", "offset"),
            answer=wrapped(
                "models", list[ModelRow], frame_records, _models_frame, title="ModelList"
            ),
        ),
        Operation(
            "search",
            "POST",
            "/models/search",
            answer=wrapped(
                "versions", list[VersionRow], frame_records, _versions_frame, title="VersionList"
            ),
            check=_finite_bounds,
            reads_only=True,
        ),
        Operation(
            "register",
            "POST",
            "/models/{name:path}/versions",
            role="editor",
            answer=record(ModelVersion),
            local_only=("model", "training_data", "label_column"),
            wire={"input_schema": dict[str, Any] | None},
            created=True,
        ),
        Operation(
            "get_version",
            "GET",
            "/models/{name:path}/version",
            answer=record(ModelVersion),
            query=_SELECTED,
            check=_one_selector,
        ),
        Operation(
            "loader_record",
            "GET",
            "/models/{name:path}/loader",
            answer=wrapped("loader", dict[str, Any], title="LoaderRecord"),
            query=_SELECTED,
            check=_one_selector,
        ),
        Operation(
            "lineage",
            "GET",
            "/models/{name:path}/lineage",
            answer=Answer(LineageDocument, Lineage.to_dict, Lineage.from_dict),
            query=_SELECTED,
            check=_one_selector,
        ),
        Operation("set_description", "PUT", "/models/{name:path}/description", role="editor"),
        Operation(
            "protect_alias",
            "PUT",
            "/models/{name:path}/aliases/{alias:path}/protection",
            role="admin",
        ),
        Operation(
            "approve_protection",
            "POST",
            "/models/{name:path}/aliases/{alias:path}/protection/approvals",
            answer=APPROVAL_COUNT,
            created=True,
        ),
        Operation(
            "approve",
            "POST",
            "/models/{name:path}/aliases/{alias:path}/approvals",
            answer=APPROVAL_COUNT,
            created=True,
        ),
        Operation(
            "pending_approvals",
            "GET",
            "/models/{name:path}/approvals",
            query=("version",),
            answer=wrapped(
                "approvals",
                list[PendingApprovalRow],
                frame_records,
                pending_frame,
                title="PendingApprovals",
            ),
        ),
        Operation(
            "record_gate",
            "POST",
            "/models/{name:path}/versions/{version}/gates",
            role="editor",
            answer=wrapped("hash", str, title="GateRecorded"),
            created=True,
        ),
        Operation(
            "alias_at",
            "GET",
            "/models/{name:path}/aliases/{alias:path}/at",
            answer=wrapped("version", int | None, title="AliasAt"),
            query=("at_ms",),
        ),
        Operation("set_alias", "PUT", "/models/{name:path}/aliases/{alias:path}", role="editor"),
        Operation(
            "verify_audit_log",
            "GET",
            "/audit/verify",
            answer=record(AuditVerification),
            query=("head",),
        ),
        Operation("audit_head", "GET", "/audit/head", answer=Answer(AuditHead)),
        Operation(
            "audit",
            "GET",
            "/audit",
            answer=_AUDIT,
            query=("name", "version", "last", "before"),
            renamed={"name": "model"},
        ),
    ],
    composed=("register", "load", "artifact_bytes", "resolve", "load_reference"),
)

__all__ = ["REGISTRY_OPERATIONS", "AuditEntry", "LineageDocument", "RegistryService"]
