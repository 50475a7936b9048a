"""The REST API's request bodies as pydantic models; a body that breaks them gets a 422.

Responses are the records' own ``to_dict()`` forms (runs, versions, lineage), so the wire
format and the Python API cannot drift apart. Unknown fields are refused rather than
ignored: a misspelt field is a client's mistake that should be seen.

>>> MetricPoints(keys=["auc"], values=[0.5], steps=[0], timestamps_ms=[1]).keys
['auc']
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = str | int | float | bool


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentIn(_Body):
    """Create an experiment (or get the id of an existing one).

    >>> ExperimentIn(name="churn").description is None
    True
    """

    name: str = Field(min_length=1, max_length=250)
    description: str | None = None


class CodeIn(_Body):
    """The git state captured by the client.

    >>> CodeIn().commit is None
    True
    """

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff_sha256: str | None = None


class EnvironmentIn(_Body):
    """The interpreter and packages captured by the client.

    >>> EnvironmentIn(python_version="3.11", platform="Linux", packages=[]).packages
    []
    """

    python_version: str
    platform: str
    packages: list[str]


class RunIn(_Body):
    """Start a run. The run's user is the caller, never a field of the body.

    >>> RunIn(experiment="churn").tags
    {}
    """

    experiment: str = Field(min_length=1, max_length=250)
    name: str | None = None
    parent_run_id: str | None = None
    tags: dict[str, Scalar] = Field(default_factory=dict)
    command: str | None = None
    code: CodeIn | None = None
    environment: EnvironmentIn | None = None
    start_ms: int | None = None


class MetricPoints(_Body):
    """Metric points in four parallel lists (the shape the client buffers them in).

    >>> MetricPoints(keys=["a"], values=[], steps=[], timestamps_ms=[])
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for MetricPoints
    ...
    """

    keys: list[str]
    values: list[float]
    steps: list[int]
    timestamps_ms: list[int]

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
    params: dict[str, Scalar] = Field(default_factory=dict)
    tags: dict[str, Scalar] = Field(default_factory=dict)
    status: str | None = None
    end_ms: int | None = None


class EndRunIn(_Body):
    """End (or, with RUNNING, reopen) a run.

    >>> EndRunIn().status
    'FINISHED'
    """

    status: str = "FINISHED"
    end_ms: int | None = None


class SearchIn(_Body):
    """Search runs with the filter language of :mod:`opsloop.tracking.filter_parser`.

    >>> SearchIn(filter="metrics.auc > 0.8").experiments is None
    True
    """

    experiments: list[str] | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    max_results: int | None = Field(default=None, ge=1)


class HistoriesIn(_Body):
    """Metric histories of several runs (all keys, or ``keys``).

    >>> HistoriesIn(run_ids=["a"]).keys is None
    True
    """

    run_ids: list[str] = Field(min_length=1)
    keys: list[str] | None = None


class DatasetIn(_Body):
    """A data set a run used, as :class:`opsloop.tracking.DatasetInput` fields.

    >>> DatasetIn(name="train", sha256="a" * 64, n_rows=1, n_columns=1).schema_ is None
    True
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=250)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    n_rows: int = Field(ge=0)
    n_columns: int = Field(ge=0)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    profile: dict[str, Any] | None = None


class VersionIn(_Body):
    """Register a version from an artifact already uploaded (``PUT /artifacts/{sha256}``).

    >>> VersionIn(artifact_sha256="a" * 64, flavor="onnx").run_id is None
    True
    """

    artifact_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    flavor: str
    run_id: str | None = None
    input_schema: dict[str, Any] | None = None
    output_type: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, Scalar] = Field(default_factory=dict)
    description: str | None = None
    reason: str | None = None


class AliasIn(_Body):
    """Point an alias at a version (a JSON ``true`` is not a version number).

    >>> AliasIn(version=2).reason is None
    True
    """

    version: int = Field(ge=1, strict=True)
    reason: str | None = None


class ApprovalIn(_Body):
    """Approve moving a protected alias to a version.

    >>> ApprovalIn(version=1, comment="checked").version
    1
    """

    version: int = Field(ge=1, strict=True)
    comment: str | None = None


class ProtectionIn(_Body):
    """Require approvals before an alias moves (0 removes the protection).

    >>> ProtectionIn(required_approvals=2).required_approvals
    2
    """

    required_approvals: int = Field(ge=0, strict=True)
    reason: str | None = None


class DescriptionIn(_Body):
    """A model's description.

    >>> DescriptionIn(description="scores churn").description
    'scores churn'
    """

    description: str


class ModelSearchIn(_Body):
    """Search model versions by text, tags, alias and metric bounds.

    >>> ModelSearchIn(text="churn").tags
    {}
    """

    text: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    alias: str | None = None
    min_metrics: dict[str, float] = Field(default_factory=dict)
    max_metrics: dict[str, float] = Field(default_factory=dict)


class VariantIn(_Body):
    """One variant of a deployment: a fixed version or an alias, a role and a weight.

    >>> VariantIn(name="stable", model="credit", alias="champion").weight
    1.0
    """

    name: str
    model: str
    version: int | None = Field(default=None, ge=1, strict=True)
    alias: str | None = None
    role: str = "primary"
    weight: float = 1.0


class DeploymentIn(_Body):
    """Create a deployment or replace its definition.

    >>> DeploymentIn(variants=[VariantIn(name="a", model="m", version=1)]).strategy
    'single'
    """

    variants: list[VariantIn]
    strategy: str = "single"
    automation: str = "full_automation"
    description: str | None = None
    reason: str | None = None


class DeploymentApprovalIn(_Body):
    """Approve one definition of a protected deployment.

    >>> DeploymentApprovalIn(variants=[VariantIn(name="a", model="m", version=1)]).comment
    """

    variants: list[VariantIn]
    strategy: str = "single"
    automation: str = "full_automation"
    comment: str | None = None
