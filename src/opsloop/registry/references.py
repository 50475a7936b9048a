"""Model references: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` and ``runs:/RUN_ID``.

:class:`ModelReferences` gives :class:`~opsloop.registry.ModelRegistry` and
:class:`~opsloop.registry.HttpModelRegistry` the same ``resolve`` (the
:class:`~opsloop.registry.ModelVersion` a reference names) and ``load_reference`` (its model,
by the trust rules of :mod:`.model_trust`), built on the ``get_version``, ``search`` and
``load`` both already have. ``runs:/RUN_ID`` is the newest version registered from that run;
``runs:/RUN_ID/PATH`` names a run's artifact, which :func:`opsloop.tracking.load_artifact`
reads.

>>> parse_model_reference("models:/risk/churn@champion")
ModelReference(name='risk/churn', version=None, alias='champion', run_id=None)
>>> parse_model_reference("models:/risk/churn/3").version
3
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.registry.records import ModelVersion

MODELS_PREFIX = "models:/"
RUNS_PREFIX = "runs:/"


class UnresolvedReferenceError(NotFoundError, ValueError):
    """A well-formed reference that names no version (a run that registered none)."""


@dataclass(frozen=True)
class ModelReference:
    """What a reference names: a model with a version or an alias, or a run's newest version.

    >>> ModelReference(name="m", version=2).label
    'm v2'
    """

    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None

    @property
    def label(self) -> str:
        """A short name for people: ``NAME vN``, ``NAME@ALIAS`` or ``run RUN_ID``.

        >>> parse_model_reference("models:/m@prod").label
        'm@prod'
        """
        if self.run_id is not None:
            return f"run {self.run_id}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return f"{self.name} v{self.version}"


def parse_model_reference(reference: str) -> ModelReference:
    """The parts of ``reference``, or an InvalidArgumentError (a ValueError) naming the forms
    allowed.

    >>> parse_model_reference("runs:/4f2a").run_id
    '4f2a'
    >>> parse_model_reference("models:/churn")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: models:/churn: give models:/NAME/VERSION or ...
    >>> parse_model_reference("runs:/4f2a/model.skops")
    Traceback (most recent call last):
    ...
    opsloop.errors.InvalidArgumentError: runs:/4f2a/model.skops names a run's artifact, ...
    """
    if not isinstance(reference, str):
        raise TypeError(f"reference must be a string, got {type(reference).__name__}")
    if reference.startswith(RUNS_PREFIX):
        run_id, slash, path = reference.removeprefix(RUNS_PREFIX).strip("/").partition("/")
        if slash and path:
            raise InvalidArgumentError(
                f"{reference} names a run's artifact, not a model version: read it with "
                "opsloop.tracking.load_artifact"
            )
        if not run_id:
            raise InvalidArgumentError(f"{reference}: give runs:/RUN_ID")
        return ModelReference(run_id=run_id)
    if reference.startswith(MODELS_PREFIX):
        body = reference.removeprefix(MODELS_PREFIX)
        name, at, alias = body.partition("@")
        if at and name and alias:
            return ModelReference(name=name, alias=alias)
        name, slash, version = body.rpartition("/")
        if not at and slash and name and version.isdigit():
            return ModelReference(name=name, version=int(version))
        raise InvalidArgumentError(f"{reference}: give models:/NAME/VERSION or models:/NAME@ALIAS")
    raise InvalidArgumentError(
        f"reference {reference!r} must start with {MODELS_PREFIX} (a registered version) or "
        f"{RUNS_PREFIX} (the newest version registered from a run)"
    )


class ModelReferences:
    """``resolve`` and ``load_reference`` for a registry that has ``get_version``,
    ``search`` and ``load`` (the local and the HTTP registry)."""

    def resolve(self, reference: str) -> ModelVersion:
        """The version ``reference`` names: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
        or ``runs:/RUN_ID`` (the newest version registered from that run).

        ``registry`` is an empty :class:`~opsloop.registry.ModelRegistry`:

        >>> for content in (b"a", b"b"):
        ...     _ = registry.register("m", content, flavor="onnx")
        >>> registry.set_alias("m", "champion", 1)
        >>> registry.resolve("models:/m@champion").version, registry.resolve("models:/m/2").version
        (1, 2)
        """
        wanted = parse_model_reference(reference)
        if wanted.run_id is None:
            return self.get_version(wanted.name, wanted.version, wanted.alias)  # type: ignore[attr-defined]
        found = self.search()  # type: ignore[attr-defined]
        found = found[found["run_id"] == wanted.run_id]
        if found.empty:
            raise UnresolvedReferenceError(
                f"{reference}: no registered model version comes from run {wanted.run_id}"
            )
        # A run may have registered several versions: search lists the newest first.
        newest = found.iloc[0]
        return self.get_version(str(newest["model"]), int(newest["version"]))  # type: ignore[attr-defined]

    def load_reference(
        self, reference: str, *, trust: bool = False, trusted_types: Iterable[str] = ()
    ) -> object:
        """The model ``reference`` names (see :meth:`resolve`), loaded as ``load`` does:
        its artifact verified against the recorded sha256, a pickle only with ``trust``, skops
        types beyond the allow-list only when named in ``trusted_types`` (or with ``trust``).

        ``registry`` is an empty :class:`~opsloop.registry.ModelRegistry`:

        >>> _ = registry.register("m", b"\\x01", flavor="onnx")
        >>> registry.load_reference("models:/m/1")
        b'\\x01'
        """
        version = self.resolve(reference)
        return self.load(  # type: ignore[attr-defined]
            version.model, version.version, trust=trust, trusted_types=trusted_types
        )
