"""The REST API's request bodies as pydantic models; a body that breaks them gets a 422.

Responses are the records' own ``to_dict()`` forms (runs, versions, lineage), so the wire
format and the Python API cannot drift apart. Unknown fields are refused rather than
ignored: a misspelt field is a client's mistake that should be seen.

Every field is bounded by the rule the library applies (:mod:`opsloop.tracking.limits`), so
the 422 names the field before anything reaches the database: integers are strict (a JSON
``true`` is not 1) and fit their column, times in milliseconds lie in the span a timestamp
can show, floats are numbers (not text or booleans), names and texts have a maximum length
and no NUL character, and lists have a maximum length.

>>> MetricPoints(keys=["auc"], values=[0.5], steps=[0], timestamps_ms=[1]).keys
['auc']
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsloop.contract.wire_types import (
    MAX_LIST_LENGTH,
    Approvals,
    Count,
    FilterText,
    Int64,
    Name,
    Number,
    Scalar,
    Text,
    TimeMs,
    Version,
)
from opsloop.tracking.limits import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_BATCH_POINTS,
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


class ExperimentIn(_Body):
    """Create an experiment (or get the id of an existing one).

    >>> ExperimentIn(name="churn").description is None
    True
    """

    name: Annotated[Name, Field(min_length=1)]
    description: Text | None = None


class CodeIn(_Body):
    """The git state captured by the client.

    >>> CodeIn().commit is None
    True
    """

    commit: Annotated[Name, Field(max_length=64)] | None = None
    branch: Name | None = None
    dirty: Annotated[bool, Field(strict=True)] | None = None
    diff_sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] | None = None


class EnvironmentIn(_Body):
    """The interpreter and packages captured by the client.

    >>> EnvironmentIn(python_version="3.11", platform="Linux", packages=[]).packages
    []
    """

    python_version: Annotated[Name, Field(max_length=64)]
    platform: Name
    packages: list[Name] = Field(max_length=10_000)


class RunIn(_Body):
    """Start a run. The run's user is the caller, never a field of the body.

    >>> RunIn(experiment="churn").tags
    {}
    """

    experiment: Annotated[Name, Field(min_length=1)]
    name: Name | None = None
    parent_run_id: Name | None = None
    tags: dict[Name, Scalar] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)
    command: Text | None = None
    code: CodeIn | None = None
    environment: EnvironmentIn | None = None
    start_ms: TimeMs | None = None


class MetricPoints(_Body):
    """Metric points in four parallel lists (the shape the client buffers them in).

    >>> MetricPoints(keys=["a"], values=[], steps=[], timestamps_ms=[])
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for MetricPoints
    ...
    """

    keys: list[Name] = Field(max_length=MAX_BATCH_POINTS)
    values: list[Number] = Field(max_length=MAX_BATCH_POINTS)
    steps: list[Int64] = Field(max_length=MAX_BATCH_POINTS)
    timestamps_ms: list[TimeMs] = Field(max_length=MAX_BATCH_POINTS)

    @model_validator(mode="after")
    def _one_length(self) -> MetricPoints:
        lengths = {len(self.keys), len(self.values), len(self.steps), len(self.timestamps_ms)}
        if len(lengths) != 1:
            raise ValueError(
                "keys, values, steps and timestamps_ms need one length, got "
                f"{len(self.keys)}, {len(self.values)}, {len(self.steps)}, "
                f"{len(self.timestamps_ms)}"
            )
        return self


class BatchIn(_Body):
    """Metric points, params and tags written to a run in one transaction (which, with
    ``status``, also ends the run).

    >>> BatchIn(params={"depth": 3}).metrics is None
    True
    """

    metrics: MetricPoints | None = None
    params: dict[Name, Scalar] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)
    tags: dict[Name, Scalar] = Field(default_factory=dict, max_length=MAX_LIST_LENGTH)
    status: Name | None = None
    end_ms: TimeMs | None = None
    # The writer's idempotency key: a retried batch with the same key is applied once.
    batch_id: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


class EndRunIn(_Body):
    """End (or, with RUNNING, reopen) a run.

    >>> EndRunIn().status
    'FINISHED'
    """

    status: Name = "FINISHED"
    end_ms: TimeMs | None = None


class SearchIn(_Body):
    """Search runs with the filter language of :mod:`opsloop.tracking.filter_parser`.

    >>> SearchIn(filter="metrics.auc > 0.8").experiments is None
    True
    """

    experiments: list[Name] | None = Field(default=None, max_length=MAX_LIST_LENGTH)
    filter: FilterText | None = None
    order_by: list[Name] = Field(default_factory=list, max_length=16)
    max_results: Annotated[Count, Field(ge=1)] | None = None


class HistoriesIn(_Body):
    """Metric histories of several runs (all keys, or ``keys``).

    >>> HistoriesIn(run_ids=["a"]).keys is None
    True
    """

    run_ids: list[Name] = Field(min_length=1, max_length=MAX_LIST_LENGTH)
    keys: list[Name] | None = Field(default=None, max_length=MAX_LIST_LENGTH)


class DatasetIn(_Body):
    """A data set a run used, as :class:`opsloop.tracking.DatasetInput` fields.

    >>> DatasetIn(name="train", sha256="a" * 64, n_rows=1, n_columns=1).schema_ is None
    True
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[Name, Field(min_length=1)]
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    n_rows: Count
    n_columns: Annotated[Count, Field(le=INT32_MAX)]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    profile: dict[str, Any] | None = None


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
