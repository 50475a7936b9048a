"""The REST API's request bodies as pydantic models; a body that breaks them gets a 422.

Responses are the records' own ``to_dict()`` forms (runs, versions, lineage), so the wire
format and the Python API cannot drift apart. Unknown fields are refused rather than
ignored: a misspelt field is a client's mistake that should be seen.

Every field is bounded by the rule the library applies (:mod:`opsloop.tracking.limits`), so
the 422 names the field before anything reaches the database: integers are strict (a JSON
``true`` is not 1) and fit their column, times in milliseconds lie in the span a timestamp
can show, floats are numbers (not text or booleans), names and texts have a maximum length
and no NUL character, and lists have a maximum length.

The tracking service's requests are derived from its Protocol
(:mod:`opsloop.tracking.tracking_service`, :mod:`opsloop.tracking.wire_documents`), and the
deployments' likewise; the registry's are here.

>>> AliasIn(version=2).version
2
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from opsloop.contract.wire_types import (
    MAX_LIST_LENGTH,
    Approvals,
    Name,
    Number,
    Scalar,
    Text,
    Version,
)
from opsloop.tracking.limits import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
)

# Query and path parameters arrive as text, so these are not strict; they keep the bounds.
# A time asked about ("as it was at T") may lie anywhere in 64 bits, unlike one stored.
QueryTimeMs = Annotated[int, Query(ge=INT64_MIN, le=INT64_MAX)]
QueryVersion = Annotated[int, Query(ge=1, le=INT32_MAX)]
PathVersion = Annotated[int, Path(ge=1, le=INT32_MAX)]
QueryText = Annotated[str, Query(max_length=MAX_TEXT_LENGTH)]
QueryName = Annotated[str, Query(max_length=MAX_NAME_LENGTH)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionIn(_Body):
    """Register a version from an artifact already uploaded (``PUT /artifacts/{sha256}``).

    >>> VersionIn(artifact_sha256="a" * 64, flavor="onnx").run_id is None
    True
    """

    artifact_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    flavor: Annotated[Name, Field(max_length=32)]
    run_id: Name | None = None
    input_schema: dict[str, Any] | None = None
    output_type: Name | None = None
    metrics: dict[Name, Number] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)
    tags: dict[Name, Scalar] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)
    description: Text | None = None
    reason: Text | None = None


class AliasIn(_Body):
    """Point an alias at a version (a JSON ``true`` is not a version number).

    >>> AliasIn(version=2).reason is None
    True
    """

    version: Version
    reason: Text | None = None


class ApprovalIn(_Body):
    """Approve moving a protected alias to a version.

    >>> ApprovalIn(version=1, comment="checked").version
    1
    """

    version: Version
    comment: Text | None = None


class ProtectionIn(_Body):
    """Require approvals before an alias moves (0 removes the protection).

    >>> ProtectionIn(required_approvals=2).required_approvals
    2
    """

    required_approvals: Approvals
    reason: Text | None = None


class DescriptionIn(_Body):
    """A model's description.

    >>> DescriptionIn(description="scores churn").description
    'scores churn'
    """

    description: Text


class ModelSearchIn(_Body):
    """Search model versions by text, tags, alias and metric bounds.

    >>> ModelSearchIn(text="churn").tags
    {}
    """

    text: Name | None = None
    tags: dict[Name, Name] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)
    alias: Name | None = None
    min_metrics: dict[Name, Number] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)
    max_metrics: dict[Name, Number] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)


class VariantIn(_Body):
    """One variant of a deployment: a fixed version or an alias, a role and a weight.

    >>> VariantIn(name="stable", model="credit", alias="champion").weight
    1.0
    """

    name: Name
    model: Name
    version: Version | None = None
    alias: Name | None = None
    role: Name = "primary"
    weight: Number = 1.0


class DeploymentIn(_Body):
    """Create a deployment or replace its definition.

    >>> DeploymentIn(variants=[VariantIn(name="a", model="m", version=1)]).strategy
    'single'
    """

    variants: list[VariantIn] = Field(max_length=MAX_LIST_LENGTH)
    strategy: Name = "single"
    automation: Name = "full_automation"
    description: Text | None = None
    reason: Text | None = None


class DeploymentApprovalIn(_Body):
    """Approve one definition of a protected deployment.

    >>> DeploymentApprovalIn(variants=[VariantIn(name="a", model="m", version=1)]).comment
    """

    variants: list[VariantIn] = Field(max_length=MAX_LIST_LENGTH)
    strategy: Name = "single"
    automation: Name = "full_automation"
    comment: Text | None = None
