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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsloop.contract.wire_types import (
    MAX_LIST_LENGTH,
    Count,
    FilterText,
    Int64,
    Name,
    Number,
    Scalar,
    Text,
    TimeMs,
)
from opsloop.tracking.limits import (
    INT32_MAX,
    MAX_BATCH_POINTS,
)


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
