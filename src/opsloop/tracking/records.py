"""What reading a run returns: the run with its params, metrics, tags, versions and inputs.

:class:`Run` is a frozen snapshot; :meth:`Run.metric_history` fetches one key's full history
from wherever the run was read (the local store or a server).

>>> run = Run(run_id="r1", experiment="churn", name=None, status="FINISHED", start_ms=0,
...           end_ms=5, parent_run_id=None, user="ana", command="python train.py",
...           params={"model": "rf"}, metrics={"auc": 0.9}, tags={})
>>> run.to_dict()["metrics"], run.duration_s
({'auc': 0.9}, 0.005)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from opsloop.errors import InvalidArgumentError
from opsloop.tracking.capture import CodeVersion, Environment

RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True)
class DatasetInput:
    """A data set a run was given: its name in the run, content sha256, shape, schema, profile.

    >>> DatasetInput("train", "a" * 64, 10, 2).to_dict()["n_rows"]
    10
    """

    name: str
    sha256: str
    n_rows: int
    n_columns: int
    schema: Mapping | None = None
    profile: Mapping | None = None

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> sorted(DatasetInput("t", "0" * 64, 1, 1).to_dict())
        ['n_columns', 'n_rows', 'name', 'profile', 'schema', 'sha256']
        """
        return {
            "name": self.name,
            "sha256": self.sha256,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "schema": None if self.schema is None else dict(self.schema),
            "profile": None if self.profile is None else dict(self.profile),
        }


@dataclass(frozen=True)
class ArtifactRecord:
    """A file logged by a run: its name in the run, its content sha256 and size in bytes.

    >>> ArtifactRecord("model.skops", "0" * 64, 12).to_dict()["size"]
    12
    """

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> ArtifactRecord("a", "0" * 64, 1).to_dict()["path"]
        'a'
        """
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


def _no_history(key: str) -> pd.DataFrame:
    raise InvalidArgumentError(
        "this run was built by hand; it has no store to read metric history from"
    )


@dataclass(frozen=True)
class Run:
    """One run as stored: ``metrics`` holds each key's latest value (highest step, then time).

    Times are milliseconds since the epoch (UTC).

    >>> Run("r", "e", None, "RUNNING", 1000, None, None, "u", "", {}, {}, {}).duration_s is None
    True
    """

    run_id: str
    experiment: str
    name: str | None
    status: str
    start_ms: int
    end_ms: int | None
    parent_run_id: str | None
    user: str | None
    command: str | None
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    code: CodeVersion = field(default_factory=CodeVersion)
    environment: Environment | None = None
    datasets: tuple[DatasetInput, ...] = ()
    artifacts: tuple[ArtifactRecord, ...] = ()
    _history: Callable[[str], pd.DataFrame] = field(default=_no_history, repr=False, compare=False)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, ``None`` while running.

        >>> Run("r", "e", None, "FINISHED", 0, 1500, None, None, None, {}, {}, {}).duration_s
        1.5
        """
        return None if self.end_ms is None else (self.end_ms - self.start_ms) / 1000

    def metric_history(self, key: str) -> pd.DataFrame:
        """Every logged value of ``key``: columns ``step``, ``value``, ``timestamp`` (UTC).

        Rows are in logging order within each step, steps ascending.

        >>> Run("r", "e", None, "RUNNING", 0, None, None, None, None, {}, {}, {}).metric_history(
        ...     "auc")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: this run was built by hand; it has no store to read...
        """
        return self._history(key)

    def to_dict(self) -> dict[str, object]:
        """The run as a JSON-safe dictionary (without metric histories).

        >>> Run("r", "e", None, "RUNNING", 0, None, None, None, None, {}, {}, {}).to_dict()[
        ...     "code"]["commit"] is None
        True
        """
        return {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "parent_run_id": self.parent_run_id,
            "user": self.user,
            "command": self.command,
            "params": dict(self.params),
            "metrics": {key: float(value) for key, value in self.metrics.items()},
            "tags": dict(self.tags),
            "code": self.code.to_dict(),
            "environment": None if self.environment is None else self.environment.to_dict(),
            "datasets": [d.to_dict() for d in self.datasets],
            "artifacts": [a.to_dict() for a in self.artifacts],
        }

    @classmethod
    def from_dict(cls, data: Mapping, history: Callable[[str], pd.DataFrame] | None = None) -> Run:
        """Rebuild a run from :meth:`to_dict` (``history`` serves :meth:`metric_history`).

        >>> r = Run("r", "e", None, "RUNNING", 0, None, None, None, None, {"a": "1"}, {}, {})
        >>> Run.from_dict(r.to_dict()) == r
        True
        """
        environment = data.get("environment")
        return cls(
            run_id=data["run_id"],
            experiment=data["experiment"],
            name=data.get("name"),
            status=data["status"],
            start_ms=data["start_ms"],
            end_ms=data.get("end_ms"),
            parent_run_id=data.get("parent_run_id"),
            user=data.get("user"),
            command=data.get("command"),
            params=dict(data.get("params", {})),
            metrics=dict(data.get("metrics", {})),
            tags=dict(data.get("tags", {})),
            code=CodeVersion(**data.get("code", {})),
            environment=None
            if environment is None
            else Environment(
                environment["python_version"],
                environment["platform"],
                tuple(environment["packages"]),
                environment["sha256"],
            ),
            datasets=tuple(DatasetInput(**d) for d in data.get("datasets", ())),
            artifacts=tuple(ArtifactRecord(**a) for a in data.get("artifacts", ())),
            _history=history or _no_history,
        )


def empty_history() -> pd.DataFrame:
    """The metric-history frame with no rows (the right columns and dtypes).

    >>> list(empty_history().columns)
    ['step', 'value', 'timestamp']
    """
    return pd.DataFrame(
        {
            "step": pd.Series([], dtype="int64"),
            "value": pd.Series([], dtype="float64"),
            "timestamp": pd.Series([], dtype="datetime64[ms, UTC]"),
        }
    )
