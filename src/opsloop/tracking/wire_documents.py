"""The tracking service's documents on the wire: what a request may carry and what an
answer holds.

A request's parts are bounded by the rule the library applies (:mod:`.limits`), so a 422
names the field before anything reaches the database: a run's code version (:class:`CodeIn`),
its environment (:class:`EnvironmentIn`), metric points in four parallel lists
(:class:`MetricPoints`) and a data set (:class:`DatasetIn`). Each is a record of the
library on the Python side (``Code``, ``Points``, ``Dataset``: see
:func:`opsloop.contract.wire_records.sent_as`). Answers are the records' ``to_dict`` forms,
described by plain models (:class:`RunDocument` and the rest) that bound nothing: a value
the library stored is always answered, never refused on the way out.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Points).validate_python(
...     {"keys": ["auc"], "values": [0.5], "steps": [0], "timestamps_ms": [1]}).keys
('auc',)
>>> TypeAdapter(Code).validate_python({"commit": "ab" * 40})
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for function-after[...]
commit
  Value should have at most 64 items after validation, not 80 ...
...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from opsloop.contract.wire_records import sent_as
from opsloop.contract.wire_types import (
    MAX_LIST_LENGTH,
    NO_NUL_PATTERN,
    Count,
    Int64,
    Key,
    Name,
    Number,
    OneOf,
    Scalar,
    TimeMs,
    integral,
    no_nul,
)
from opsloop.tracking.capture import CodeVersion, Environment
from opsloop.tracking.limits import INT32_MAX, INT64_MAX, MAX_BATCH_POINTS, MAX_PARAM_LENGTH
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.tracking.page_token import MAX_PAGE_TOKEN_LENGTH
from opsloop.tracking.records import RUN_STATUSES, DatasetInput

SHA256_PATTERN = "^[0-9a-f]{64}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeIn(_Body):
    """The git state captured by the client.

    >>> CodeIn().commit is None
    True
    """

    commit: Annotated[Name, Field(max_length=64)] | None = None
    branch: Name | None = None
    dirty: Annotated[bool, Field(strict=True)] | None = None
    diff_sha256: Annotated[str, Field(pattern=SHA256_PATTERN)] | None = None


class EnvironmentIn(_Body):
    """The interpreter and packages captured by the client. The server computes the
    environment's hash from them; a ``sha256`` sent along must be that hash.

    >>> EnvironmentIn(python_version="3.11", platform="Linux", packages=[]).packages
    []
    >>> EnvironmentIn(python_version="3.11", platform="Linux", packages=[], sha256="0" * 64)
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for EnvironmentIn
      Value error, sha256: must be the hash of python_version, platform and packages...
    ...
    """

    python_version: Annotated[Name, Field(max_length=64)]
    platform: Name
    packages: list[Name] = Field(max_length=10_000)
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)] | None = None

    @model_validator(mode="after")
    def _hash_of_the_parts(self) -> EnvironmentIn:
        computed = self.environment().sha256
        if self.sha256 is not None and self.sha256 != computed:
            raise ValueError(
                "sha256: must be the hash of python_version, platform and packages, "
                f"{computed}, got {self.sha256}"
            )
        return self

    def environment(self) -> Environment:
        """The library's record, hashed from the parts.

        >>> EnvironmentIn(python_version="3", platform="p", packages=[]).environment().sha256[:8]
        '2af4d5eb'
        """
        return Environment.from_parts(self.python_version, self.platform, self.packages)


class MetricPoints(_Body):
    """Metric points in four parallel lists (the shape the client buffers them in).

    >>> MetricPoints(keys=["a"], values=[], steps=[], timestamps_ms=[])
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for MetricPoints
    ...
    """

    keys: list[Key] = Field(max_length=MAX_BATCH_POINTS)
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


class DatasetIn(_Body):
    """A data set a run used, as :class:`opsloop.tracking.DatasetInput` fields.

    >>> DatasetIn(name="train", sha256="a" * 64, n_rows=1, n_columns=1).schema_ is None
    True
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Key
    sha256: str = Field(pattern=SHA256_PATTERN)
    n_rows: Count
    n_columns: Annotated[int, Field(strict=True, ge=0, le=INT32_MAX), BeforeValidator(integral)]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    profile: dict[str, Any] | None = None


def _code(document: CodeIn) -> CodeVersion:
    return CodeVersion(document.commit, document.branch, document.dirty, document.diff_sha256)


def _points(document: MetricPoints) -> MetricBatch:
    # The lists themselves, not a dump: a batch holds up to 50,000 points.
    return MetricBatch.from_dict(
        {
            "keys": document.keys,
            "values": document.values,
            "steps": document.steps,
            "timestamps_ms": document.timestamps_ms,
        }
    )


def _dataset(document: DatasetIn) -> DatasetInput:
    return DatasetInput(
        document.name,
        document.sha256,
        document.n_rows,
        document.n_columns,
        document.schema_,
        document.profile,
    )


#: A run's git state, sent as :class:`CodeIn`.
Code = Annotated[CodeVersion, sent_as(CodeIn, _code)]
#: A run's environment, sent as :class:`EnvironmentIn` and hashed by the receiver.
EnvironmentParts = Annotated[Environment, sent_as(EnvironmentIn, EnvironmentIn.environment)]
#: Metric points, sent as :class:`MetricPoints`.
Points = Annotated[MetricBatch, sent_as(MetricPoints, _points)]
#: A data set a run used, sent as :class:`DatasetIn`.
Dataset = Annotated[DatasetInput, sent_as(DatasetIn, _dataset)]
#: An experiment's name: a key.
ExperimentName = Key
#: Tags by key.
Values = Annotated[Mapping[Key, Scalar], Field(max_length=MAX_LIST_LENGTH)]
_ParamText = Annotated[
    str, Field(max_length=MAX_PARAM_LENGTH, json_schema_extra={"pattern": NO_NUL_PATTERN})
]
_Number = Annotated[int, Field(strict=True)] | Annotated[float, Field(strict=True)]
#: Params by key: a param's text is shorter than a tag's.
ParamValues = Annotated[
    Mapping[Key, _ParamText | _Number | bool], Field(max_length=MAX_LIST_LENGTH)
]
#: A run's status.
RunStatus = Annotated[str, OneOf(RUN_STATUSES)]
#: Run ids, metric keys or experiment names asked about together.
Names = Annotated[Sequence[Name], Field(max_length=MAX_LIST_LENGTH)]


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


#: One experiment's name or several: one name is a list of one.
Experiments = Annotated[Names, BeforeValidator(_listed, json_schema_input_type=Name | Names)]
#: A metric batch's idempotency key.
BatchId = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9_-]{1,64}$")]
#: How many runs a search returns at most.
MaxResults = Annotated[int, Field(strict=True, ge=1, le=INT64_MAX), BeforeValidator(integral)]
#: Where a search's next page starts: the ``next_page_token`` of the page before.
PageToken = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_PAGE_TOKEN_LENGTH, pattern=r"^[A-Za-z0-9_-]+$"),
]
#: How many step intervals a long metric series is shrunk to (two points each).
Buckets = Annotated[int, Field(strict=True, ge=1, le=100_000), BeforeValidator(integral)]
#: A search's order: at most 16 clauses such as ``metrics.auc DESC``.
OrderBy = Annotated[Sequence[Name], Field(max_length=16)]
#: How an artifact's path ends (``.html``), compared without regard to case.
PathSuffix = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=100, json_schema_extra={"pattern": NO_NUL_PATTERN}),
    AfterValidator(no_nul),
]
#: How many rows of a listing to skip.
Offset = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX), BeforeValidator(integral)]


# -- answers ----------------------------------------------------------------------------


class ExperimentRow(BaseModel):
    """One experiment in the list."""

    name: str
    description: str | None
    created_ms: int = Field(description="milliseconds since the epoch")
    runs: int = Field(description="how many runs it holds")


class ArtifactRow(BaseModel):
    """One artifact of a run, with the run it belongs to."""

    run_id: str
    experiment: str
    run_name: str | None
    start_ms: int = Field(description="when the run started, milliseconds since the epoch")
    path: str = Field(description="its name in the run")
    sha256: str
    size: int = Field(description="bytes")


class CodeDocument(BaseModel):
    """The git state a run executed (all null outside a repository)."""

    commit: str | None
    branch: str | None
    dirty: bool | None
    diff_sha256: str | None


class EnvironmentDocument(BaseModel):
    """The interpreter, platform and packages of a run, with their content hash."""

    python_version: str
    platform: str
    packages: list[str]
    sha256: str


class DatasetDocument(BaseModel):
    """A data set a run was given."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    sha256: str
    n_rows: int
    n_columns: int
    schema_: dict[str, Any] | None = Field(alias="schema")
    profile: dict[str, Any] | None


class ArtifactDocument(BaseModel):
    """A file logged by a run: its path in the run, content sha256 and size in bytes."""

    path: str
    sha256: str
    size: int


class RunDocument(BaseModel):
    """A run with its params, latest metrics, tags, versions, data sets and artifacts."""

    run_id: str
    experiment: str
    name: str | None
    status: str
    start_ms: int = Field(description="milliseconds since the epoch")
    end_ms: int | None
    parent_run_id: str | None
    user: str | None
    command: str | None
    params: dict[str, str]
    metrics: dict[str, float] = Field(description="each key's latest value")
    tags: dict[str, str]
    code: CodeDocument
    environment: EnvironmentDocument | None
    datasets: list[DatasetDocument]
    artifacts: list[ArtifactDocument]


class MetricHistoryColumns(BaseModel):
    """Every point of one metric of a run, in order, as parallel lists."""

    step: list[int]
    value: list[float]
    timestamp_ms: list[int]


class MetricHistoriesColumns(BaseModel):
    """Points of several runs, as parallel lists: each point's run, key, step, value and
    time."""

    run_id: list[str]
    key: list[str]
    step: list[int]
    value: list[float]
    timestamp_ms: list[int]
