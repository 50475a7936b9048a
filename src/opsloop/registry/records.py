"""What the registry returns: model versions, their lineage, and a model's summary.

>>> v = ModelVersion("churn", 1, "r" * 32, "a" * 64, 10, "sklearn", None, {}, {}, None, 0,
...                  "ana", ())
>>> v.to_dict()["flavor"], v.uri
('sklearn', 'models:/churn/1')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelVersion:
    """A registered version: source run, artifact hash and size, flavor, signature, metadata.

    ``signature`` is ``{"inputs": <schema dict>, "output": <type name>}`` or ``None``.

    >>> ModelVersion("m", 2, None, "0" * 64, 1, "python", None, {}, {}, None, 0, "x",
    ...              ("champion",)).aliases
    ('champion',)
    """

    model: str
    version: int
    run_id: str | None
    artifact_sha256: str
    artifact_size: int
    flavor: str
    signature: Mapping | None
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    description: str | None
    created_ms: int
    created_by: str
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``.

        >>> ModelVersion("m", 3, None, "0" * 64, 1, "onnx", None, {}, {}, None, 0, "x",
        ...              ()).uri
        'models:/m/3'
        """
        return f"models:/{self.model}/{self.version}"

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary.

        >>> sorted(ModelVersion("m", 1, None, "0" * 64, 1, "onnx", None, {}, {}, None, 0, "x",
        ...                     ()).to_dict())[:3]
        ['aliases', 'artifact_sha256', 'artifact_size']
        """
        return {
            "model": self.model,
            "version": self.version,
            "run_id": self.run_id,
            "artifact_sha256": self.artifact_sha256,
            "artifact_size": self.artifact_size,
            "flavor": self.flavor,
            "signature": None if self.signature is None else dict(self.signature),
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "tags": dict(self.tags),
            "description": self.description,
            "created_ms": self.created_ms,
            "created_by": self.created_by,
            "aliases": list(self.aliases),
        }

    @classmethod
    def from_dict(cls, document: Mapping) -> ModelVersion:
        """The version :meth:`to_dict` wrote.

        >>> v = ModelVersion("m", 2, None, "a" * 64, 10, "onnx", None, {"auc": 0.9}, {}, None,
        ...                  0, "ana", ("champion",))
        >>> ModelVersion.from_dict(v.to_dict()) == v
        True
        """
        return cls(
            model=document["model"],
            version=document["version"],
            run_id=document["run_id"],
            artifact_sha256=document["artifact_sha256"],
            artifact_size=document["artifact_size"],
            flavor=document["flavor"],
            signature=document["signature"],
            metrics=document["metrics"],
            tags=document["tags"],
            description=document["description"],
            created_ms=document["created_ms"],
            created_by=document["created_by"],
            aliases=tuple(document["aliases"]),
        )


@dataclass(frozen=True)
class Lineage:
    """Where a version came from: artifact, run, experiment, code, packages and data hashes.

    >>> Lineage("m", 1, "champion", "a" * 64, None, None, None, None, None, None, None, None,
    ...         None, ()).to_dict()["alias"]
    'champion'
    """

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
    packages: tuple[str, ...] | None
    datasets: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dictionary (datasets as ``{name: sha256}``).

        >>> Lineage("m", 1, None, "a" * 64, None, None, None, None, None, None, None, None,
        ...         None, (("train", "b" * 64),)).to_dict()["datasets"]["train"][:4]
        'bbbb'
        """
        return {
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "artifact_sha256": self.artifact_sha256,
            "run_id": self.run_id,
            "experiment": self.experiment,
            "git_commit": self.git_commit,
            "git_branch": self.git_branch,
            "git_dirty": self.git_dirty,
            "git_diff_sha256": self.git_diff_sha256,
            "python_version": self.python_version,
            "environment_sha256": self.environment_sha256,
            "packages": None if self.packages is None else list(self.packages),
            "datasets": dict(self.datasets),
        }

    @classmethod
    def from_dict(cls, document: Mapping) -> Lineage:
        """The lineage :meth:`to_dict` wrote (as the server sends it).

        >>> lineage = Lineage("m", 1, None, "a" * 64, None, None, None, None, None, None, None,
        ...                   None, ("pkg==1",), (("train", "b" * 64),))
        >>> Lineage.from_dict(lineage.to_dict()) == lineage
        True
        """
        packages = document["packages"]
        fields = {name: document[name] for name in cls.__dataclass_fields__}
        return cls(
            **{
                **fields,
                "packages": None if packages is None else tuple(packages),
                "datasets": tuple(document["datasets"].items()),
            }
        )
