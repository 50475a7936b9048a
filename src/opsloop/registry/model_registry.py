"""The model registry: versions, moving aliases, approvals, lineage, loading, discovery.

Every change (a model or version registered, an alias moved or protected, an approval) is
written with its audit entry in one transaction (:mod:`.audit`). A protected alias moves only
when enough distinct users with the approver role, other than the user who moves it
(:mod:`.separate_approvers`), approved that exact version for that alias; the approvals are
used up by the move. A protection may also require a passed release gate
of the version against the one the alias points at (:mod:`.gate_requirement`). Loading
fetches the artifact, checks its bytes against the sha256 recorded at registration and only
then deserialises, so a tampered file is never read. A hash proves the bytes are the
uploader's, not that they are safe: what can run code while loading (a pickle, a skops type
beyond the fixed allow-list) loads only when the loading user trusts it (:mod:`.model_trust`),
and the refusal names who registered it. A registry built with ``pickle_policy="admins"`` or
``"refuse"`` (a server's) accepts pickled models only from admins, or not at all.

Identity: ``actor`` (default: the OS user). While no users are registered, embedded use may
do anything except approve (approvals need distinct registered approvers). Once users exist,
an actor must be one of them, with a role high enough for the action.

``tmp_path`` in the examples is an empty folder:

>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> from opsloop.store import ArtifactStore, Database
>>> registry = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
>>> model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, 2.0]))
>>> v1 = registry.register("demand", model, metrics={"rmse": 0.1})
>>> registry.set_alias("demand", "champion", 1, reason="first model")
>>> registry.load("demand", alias="champion").predict(np.array([[3.0]])).round(6).tolist()
[6.0]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.data.training_reference import Reference, build_reference, decode_reference
from opsloop.errors import AlreadyDoneError, ConflictError, InvalidArgumentError, NotFoundError
from opsloop.registry.alias_move_check import (
    check_alias_move,
    check_follower_gates,
    guarded_by,
    protected_followers,
)
from opsloop.registry.approver_standing import lapsed_approvers
from opsloop.registry.audit import (
    MODEL_PARTS,
    AuditVerification,
    alias_version_at,
    append_audit,
    audit_entries,
    audit_head,
    lock_audit_log,
    verify_audit_log,
)
from opsloop.registry.flavors import (
    CODE_FLAVORS,
    FLAVORS,
    dump_model,
    infer_flavor,
    load_model_bytes,
    skops_loader,
)
from opsloop.registry.gate_requirement import (
    RECORDER_ROLE,
    checked_gate_requirement,
    decode_requirement,
    encode_requirement,
    missing_gate,
)
from opsloop.registry.lineage import lineage_from_rows, lineage_select
from opsloop.registry.protection_approvals import (
    gate_flags,
    record_protection_approval,
    use_protection_approvals,
)
from opsloop.registry.records import Lineage, ModelVersion
from opsloop.registry.references import ModelReferences
from opsloop.registry.separate_approvers import approval_shortfall, counted_approvers
from opsloop.registry.training_columns import training_inputs
from opsloop.registry.users import PermissionDenied, acting_user, user_role
from opsloop.store import tables
from opsloop.store.artifacts import ArtifactStore, MissingArtifactError, check_sha256
from opsloop.store.database import Database, open_database
from opsloop.store.location import artifact_uri
from opsloop.store.page_bounds import page_bounds
from opsloop.tracking.capture import current_user
from opsloop.tracking.limits import (
    INT32_MAX,
    checked_int,
    checked_key,
    checked_text,
    metric_value,
    tag_text,
)
from opsloop.tracking.local_store import UnknownRunError

_models, _versions, _aliases = tables.registered_models, tables.model_versions, tables.aliases


class UnknownModelError(NotFoundError, ValueError):
    """No registered model, version or alias matches."""


#: Who may register a model whose loading runs code (:data:`~.flavors.CODE_FLAVORS`):
#: anyone allowed to register (embedded use), admins only, or nobody.
PICKLE_POLICIES = ("allow", "admins", "refuse")


#: Columns of :meth:`ModelRegistry.search`'s frame (the HTTP registry's too).
SEARCH_COLUMNS = (
    "model",
    "version",
    "flavor",
    "aliases",
    "metrics",
    "tags",
    "description",
    "run_id",
    "artifact_sha256",
)


def _metric_bound(key: str, limit: float, op: str) -> sa.ColumnElement[bool]:
    """The versions whose metric ``key`` is at least (``ge``) or at most (``le``) ``limit``:
    the registered value where there is one, else the source run's latest.

    Uncorrelated ``IN`` lists: the database gathers each once per query (the run's side
    through the index on key and value) instead of looking it up again for every version.
    """
    vm, latest, keys = tables.version_metrics, tables.latest_metrics, tables.metric_keys

    def within(value):
        return value >= limit if op == "ge" else value <= limit

    key_id = sa.select(keys.c.id).where(keys.c.name == key).scalar_subquery()
    registered = sa.select(vm.c.version_id).where(vm.c.key == key)
    return sa.or_(
        _versions.c.id.in_(registered.where(within(vm.c.value))),
        sa.and_(
            _versions.c.id.not_in(registered),
            _versions.c.run_id.in_(
                sa.select(latest.c.run_id).where(latest.c.key_id == key_id, within(latest.c.value))
            ),
        ),
    )


@dataclass(frozen=True)
class _Details:
    """What a search shows of each found version beside its row, by version id."""

    metrics: dict[int, dict[str, float]]
    tags: dict[int, dict[str, str]]
    aliases: dict[int, tuple[str, ...]]


def _version_details(connection: Connection, chosen, runs: Mapping[int, int | None]) -> _Details:
    """The metrics, tags and aliases of the versions ``chosen`` selects (``runs``: each one's
    source run key), keys and aliases sorted by name. A version's metrics are its registered
    ones over its run's latest values.

    One query, whatever the number of versions: the chosen versions are found once for all
    its parts (a CTE used more than once is materialized by SQLite and PostgreSQL), and a
    run's metrics come once, not once per version. Numbers and texts have their own
    columns, so each part keeps its type.
    """
    vm, vt, latest, keys = (
        tables.version_metrics,
        tables.version_tags,
        tables.latest_metrics,
        tables.metric_keys,
    )
    ids = sa.select(chosen.cte("chosen").c.id)
    none = sa.null()
    parts = sa.union_all(
        sa.select(
            sa.literal("metric").label("part"),
            vm.c.version_id.label("version_id"),
            none.label("run_id"),
            vm.c.key.label("name"),
            vm.c.value.label("number"),
            none.label("text"),
        ).where(vm.c.version_id.in_(ids)),
        sa.select(sa.literal("run"), none, latest.c.run_id, keys.c.name, latest.c.value, none)
        .join(keys, keys.c.id == latest.c.key_id)
        .where(latest.c.run_id.in_(sa.select(_versions.c.run_id).where(_versions.c.id.in_(ids)))),
        sa.select(sa.literal("tag"), vt.c.version_id, none, vt.c.key, none, vt.c.value).where(
            vt.c.version_id.in_(ids)
        ),
        sa.select(
            sa.literal("alias"), _aliases.c.version_id, none, _aliases.c.name, none, none
        ).where(_aliases.c.version_id.in_(ids)),
    ).subquery()
    registered: dict[int, dict] = {}
    by_run: dict[int | None, dict] = {}
    tags: dict[int, dict] = {}
    aliases: dict[int, list] = {}
    statement = sa.select(parts).order_by(parts.c.version_id, parts.c.name)
    for part, version_id, run_id, name, number, text in connection.execute(statement):
        if part == "metric":
            registered.setdefault(version_id, {})[name] = number
        elif part == "run":
            by_run.setdefault(run_id, {})[name] = number
        elif part == "tag":
            tags.setdefault(version_id, {})[name] = text
        else:
            aliases.setdefault(version_id, []).append(name)
    metrics = {}
    for version_id, run_id in runs.items():
        own, logged = registered.get(version_id, {}), by_run.get(run_id, {})
        metrics[version_id] = dict(sorted({**logged, **own}.items())) if logged else own
    return _Details(metrics, tags, {k: tuple(v) for k, v in aliases.items()})


class ModelRegistry(ModelReferences):
    """Registered models on a :class:`~opsloop.store.Database` and an ArtifactStore.

    >>> from opsloop.store import ArtifactStore, Database
    >>> r = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path), actor="ana")
    >>> version = r.register("abs", abs, description="absolute value")
    >>> version.uri, version.flavor, version.created_by, r.load("abs", trust=True)(-3)
    ('models:/abs/1', 'python', 'ana', 3)

    The examples of the methods start from ``registry``, an empty
    ``ModelRegistry(db, artifacts)`` on an in-memory database ``db`` and an artifact folder
    ``artifacts``.
    """

    def __init__(
        self,
        database: Database | None = None,
        artifacts: ArtifactStore | None = None,
        actor: str | None = None,
        *,
        pickle_policy: str = "allow",
    ) -> None:
        if pickle_policy not in PICKLE_POLICIES:
            raise InvalidArgumentError(
                f"pickle_policy must be one of {', '.join(PICKLE_POLICIES)}, got {pickle_policy!r}"
            )
        self.db = database if database is not None else open_database()
        self.artifacts = artifacts if artifacts is not None else ArtifactStore(artifact_uri())
        self.actor = actor or current_user()
        self.pickle_policy = pickle_policy

    def __repr__(self) -> str:
        return f"ModelRegistry({self.db!r}, actor={self.actor!r})"

    # -- identity -------------------------------------------------------------------------

    def _user(self, connection: Connection, actor: str | None, role: str) -> str:
        return acting_user(connection, actor or self.actor, role)

    # -- lookups --------------------------------------------------------------------------

    def _model_id(self, connection: Connection, name: str, lock: bool = False) -> int:
        query = sa.select(_models.c.id).where(_models.c.name == name)
        if lock and self.db.dialect == "postgresql":
            query = query.with_for_update()
        model_id = connection.execute(query).scalar()
        if model_id is None:
            raise UnknownModelError(f"unknown model {name!r}")
        return model_id

    def _version_row(
        self,
        connection: Connection,
        name: str,
        version: int | None = None,
        alias: str | None = None,
    ):
        model_id = self._model_id(connection, name)
        query = sa.select(_versions).where(_versions.c.model_id == model_id)
        if alias is not None:
            if version is not None:
                raise InvalidArgumentError("give a version or an alias, not both")
            query = query.join(_aliases, _aliases.c.version_id == _versions.c.id).where(
                _aliases.c.model_id == model_id, _aliases.c.name == alias
            )
        elif version is not None:
            checked_int("version", version, 1, INT32_MAX)
            query = query.where(_versions.c.version == version)
        else:
            query = query.order_by(_versions.c.version.desc()).limit(1)
        row = connection.execute(query).mappings().first()
        if row is None:
            what = (
                f"alias {alias!r}"
                if alias is not None
                else f"version {version}"
                if version is not None
                else "any version"
            )
            raise UnknownModelError(f"model {name!r} has no {what}")
        return row

    def _to_version(self, connection: Connection, name: str, row) -> ModelVersion:
        version_id = row["id"]
        metrics = dict(
            connection.execute(
                sa.select(tables.version_metrics.c.key, tables.version_metrics.c.value)
                .where(tables.version_metrics.c.version_id == version_id)
                .order_by(tables.version_metrics.c.key)
            ).all()
        )
        tags = dict(
            connection.execute(
                sa.select(tables.version_tags.c.key, tables.version_tags.c.value)
                .where(tables.version_tags.c.version_id == version_id)
                .order_by(tables.version_tags.c.key)
            ).all()
        )
        aliases = tuple(
            connection.execute(
                sa.select(_aliases.c.name)
                .where(_aliases.c.version_id == version_id)
                .order_by(_aliases.c.name)
            ).scalars()
        )
        run_id = None
        if row["run_id"] is not None:
            run_id = connection.execute(
                sa.select(tables.runs.c.run_id).where(tables.runs.c.id == row["run_id"])
            ).scalar()
        return ModelVersion(
            model=name,
            version=row["version"],
            run_id=run_id,
            artifact_sha256=row["artifact_sha256"],
            artifact_size=row["artifact_size"],
            flavor=row["flavor"],
            signature=None if row["signature_json"] is None else json.loads(row["signature_json"]),
            metrics=metrics,
            tags=tags,
            description=row["description"],
            created_ms=row["created_ms"],
            created_by=row["created_by"],
            aliases=aliases,
        )

    def get_version(
        self, name: str, version: int | None = None, alias: str | None = None
    ) -> ModelVersion:
        """A version by number, by alias, or the newest one.

        >>> try:
        ...     registry.get_version("nope")
        ... except ValueError as error:
        ...     print(error)
        unknown model 'nope'
        """
        with self.db.read() as connection:
            return self._to_version(
                connection, name, self._version_row(connection, name, version, alias)
            )

    # -- writes ---------------------------------------------------------------------------

    def register(
        self,
        name: str,
        model: object = None,
        *,
        flavor: str | None = None,
        artifact_sha256: str | None = None,
        run_id: str | None = None,
        input_schema: Any = None,
        output_type: str | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, object] | None = None,
        description: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        training_data: pd.DataFrame | None = None,
        training_reference: str | None = None,
        label_column: str | None = None,
    ) -> ModelVersion:
        """Register a new version of ``name`` (the model is created on first use).

        Give the model object (saved per :mod:`.flavors`) or the sha256 of an artifact already
        in the artifact store plus its ``flavor``. ``input_schema`` is a
        :class:`~opsloop.data.schema.Schema`, a DataFrame (its schema is inferred) or a schema
        dictionary; ``output_type`` names what the model returns.

        ``training_data`` (the rows the model was trained on) is kept as the version's
        reference (its profile, schema and a sample of at most
        :data:`~opsloop.data.training_reference.REFERENCE_SAMPLE_SIZE` rows, see
        :func:`~opsloop.data.training_reference.build_reference`): monitoring compares a
        deployment whose primary variant serves this version with it, unless the deployment
        has a reference set. The reference keeps the model's input columns only (the
        signature's, in its order; see :mod:`.training_columns`): ``label_column`` names
        the label's column, kept apart as the reference's labels; any other column the
        signature does not name is left out. ``training_reference`` is that reference
        already built (:func:`~opsloop.data.training_reference.encode_reference`), as a
        client sends it; its columns must be the signature's inputs.

        >>> registry.register("m", b"\\x08\\x01", flavor="onnx", output_type="float").version
        1
        >>> frame = pd.DataFrame({"x": [0.5, 1.5, 2.5]})
        >>> v = registry.register("m", b"\\x08\\x01", flavor="onnx", training_data=frame)
        >>> registry.training_reference("m", v.version).profile["x"].numeric.mean
        1.5
        """
        signature = _signature(input_schema, output_type)
        reference = _training_reference(
            training_data, training_reference, _input_names(signature), label_column
        )
        checked_key("model name", name)
        for field, text in (("description", description), ("reason", reason)):
            if text is not None:
                checked_text(field, text)
        loader: dict[str, Any]
        if model is not None:
            flavor = flavor or infer_flavor(model)
            data, loader = dump_model(model, flavor)
            artifact_sha256 = self.artifacts.put_bytes(data)
        else:
            if artifact_sha256 is None:
                raise InvalidArgumentError("register needs a model object or an artifact_sha256")
            check_sha256(artifact_sha256, "artifact_sha256")
            if flavor not in FLAVORS:
                raise InvalidArgumentError(
                    f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}"
                )
            if not self.artifacts.exists(artifact_sha256):
                raise MissingArtifactError(artifact_sha256)
            if flavor == "sklearn":
                loader = skops_loader(self.artifacts.get_bytes(artifact_sha256))
            elif flavor == "pytorch":
                loader = {"format": "torch-state-dict"}
            else:
                loader = {"format": "pickle" if flavor == "python" else "onnx"}
        checked_metrics = {
            checked_key("metric", k): metric_value(k, v) for k, v in (metrics or {}).items()
        }
        checked_tags = {checked_key("tag", k): tag_text(k, v) for k, v in (tags or {}).items()}
        size = self.artifacts.size(artifact_sha256)
        with self.db.write() as connection:
            # Before the model's row lock below: a change holding this lock (an alias move,
            # a deploy) takes a key-share lock on that row when it refers to the model, so
            # the other order could deadlock.
            lock_audit_log(connection)
            who = self._user(connection, actor, "editor")
            if flavor in CODE_FLAVORS:
                self._check_pickle_policy(connection, who, flavor)
            run_pk = None
            if run_id is not None:
                run_pk = connection.execute(
                    sa.select(tables.runs.c.id).where(tables.runs.c.run_id == run_id)
                ).scalar()
                if run_pk is None:
                    raise UnknownRunError(run_id)
            created = self.db.clock()
            model_id = self._model_to_version(connection, name, who, reason, created)
            # The model's row is locked (PostgreSQL) or the whole store is (SQLite's BEGIN
            # IMMEDIATE) until commit, so the next number is this transaction's alone.
            number = (
                connection.execute(
                    sa.select(sa.func.max(_versions.c.version)).where(
                        _versions.c.model_id == model_id
                    )
                ).scalar()
                or 0
            ) + 1
            version_id = connection.execute(
                _versions.insert()
                .values(
                    model_id=model_id,
                    version=number,
                    run_id=run_pk,
                    artifact_sha256=artifact_sha256,
                    artifact_size=size,
                    flavor=flavor,
                    # Not sorted: the order of the input columns is the order of the
                    # model's input tensor (ONNX, PyTorch, a matrix-fitted estimator).
                    signature_json=None if signature is None else json.dumps(signature),
                    loader_json=json.dumps(loader, sort_keys=True),
                    description=description,
                    created_ms=created,
                    created_by=who,
                )
                .returning(_versions.c.id)
            ).scalar_one()
            if checked_metrics:
                connection.execute(
                    tables.version_metrics.insert(),
                    [
                        {"version_id": version_id, "key": k, "value": v}
                        for k, v in checked_metrics.items()
                    ],
                )
            if checked_tags:
                connection.execute(
                    tables.version_tags.insert(),
                    [
                        {"version_id": version_id, "key": k, "value": v}
                        for k, v in checked_tags.items()
                    ],
                )
            if reference is not None:
                connection.execute(
                    tables.version_references.insert().values(
                        version_id=version_id,
                        reference=reference.to_bytes(),
                        rows=reference.profile.n_rows,
                        sample_rows=len(reference.sample),
                        scored_classes=reference.classes_json(),
                    )
                )
            connection.execute(
                _models.update().where(_models.c.id == model_id).values(updated_ms=created)
            )
            registered: dict[str, object] = {
                "artifact_sha256": artifact_sha256,
                "flavor": flavor,
                "run_id": run_id,
            }
            if reference is not None:
                registered["training_reference"] = {
                    "rows": reference.profile.n_rows,
                    "sample": len(reference.sample),
                    "features": list(reference.features),
                }
            append_audit(
                connection,
                who,
                "register_version",
                f"model:{name}/version:{number}",
                reason,
                None,
                registered,
            )
            row = (
                connection.execute(sa.select(_versions).where(_versions.c.id == version_id))
                .mappings()
                .one()
            )
            return self._to_version(connection, name, row)

    def training_reference(self, name: str, version: int) -> Reference:
        """The reference of the training data version ``version`` of ``name`` was registered
        with (see :meth:`register`).

        >>> _ = registry.register("m", b"x", flavor="onnx")
        >>> registry.training_reference("m", 1)
        Traceback (most recent call last):
        opsloop.errors.NotFoundError: model 'm' version 1 was registered without training data
        """
        with self.db.read() as connection:
            version_id = self._version_row(connection, name, version)["id"]
            data = connection.execute(
                sa.select(tables.version_references.c.reference).where(
                    tables.version_references.c.version_id == version_id
                )
            ).scalar()
        if data is None:
            raise NotFoundError(
                f"model {name!r} version {version} was registered without training data"
            )
        return Reference.from_bytes(bytes(data))

    def _check_pickle_policy(self, connection: Connection, who: str, flavor: str) -> None:
        if self.pickle_policy == "allow":
            return
        if self.pickle_policy == "refuse":
            raise PermissionDenied(
                f"flavor {flavor!r} is a pickle, which runs code on whoever loads it; this "
                "registry does not accept it (a server's admin allows it with "
                "'opsloop server --allow-pickle', for admins only). Save the model as "
                "skops, ONNX or a PyTorch state dict instead"
            )
        try:
            acting_user(connection, who, "admin")
        except PermissionDenied:
            raise PermissionDenied(
                f"flavor {flavor!r} is a pickle, which runs code on whoever loads it; only "
                f"admins may register one here, and {who!r} is not an admin"
            ) from None

    def _model_to_version(
        self, connection: Connection, name: str, who: str, reason: str | None, created: int
    ) -> int:
        """The id of model ``name``, created on first use, with its row locked until the
        transaction ends, so that registrations of one model take turns on version numbers.

        Two first registrations can both find no model. The name's unique constraint makes
        the later insert wait for the earlier transaction and fail once it commits; that
        registration then goes on with the committed row, as if the model had been there.
        """
        try:
            return self._model_id(connection, name, lock=True)
        except UnknownModelError:
            pass
        ambiguous = [part for part in MODEL_PARTS if part in name]
        if ambiguous:
            raise InvalidArgumentError(
                f"model name {name!r} may not contain {ambiguous[0]!r}: the audit log's "
                f"entities of versions and aliases put it after the model's name"
            )
        try:
            with connection.begin_nested():
                model_id = connection.execute(
                    _models.insert()
                    .values(name=name, created_ms=created, updated_ms=created)
                    .returning(_models.c.id)
                ).scalar_one()
        except sa.exc.IntegrityError:
            # Another registration created the model since we looked (it has committed).
            return self._model_id(connection, name, lock=True)
        append_audit(connection, who, "create_model", f"model:{name}", reason, None, {"name": name})
        return model_id

    def set_description(self, name: str, description: str, *, actor: str | None = None) -> None:
        """Describe a registered model (searchable by :meth:`search`).

        >>> _ = registry.register("m", b"x", flavor="onnx")
        >>> registry.set_description("m", "churn scorer")
        >>> registry.list_models()["description"].tolist()
        ['churn scorer']
        """
        checked_text("description", description)
        with self.db.write() as connection:
            # Before the model's row is updated: a registration holding this lock waits for
            # that row, so the other order could deadlock (see register).
            lock_audit_log(connection)
            who = self._user(connection, actor, "editor")
            model_id = self._model_id(connection, name)
            before = connection.execute(
                sa.select(_models.c.description).where(_models.c.id == model_id)
            ).scalar()
            connection.execute(
                _models.update()
                .where(_models.c.id == model_id)
                .values(description=description, updated_ms=self.db.clock())
            )
            append_audit(
                connection,
                who,
                "describe_model",
                f"model:{name}",
                None,
                {"description": before},
                {"description": description},
            )

    def protect_alias(
        self,
        name: str,
        alias: str,
        required_approvals: int,
        *,
        require_gate: bool | str = False,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Require ``required_approvals`` distinct approvers before ``alias`` can move (admin),
        and with ``require_gate`` a passed release gate: ``True`` for any gate, or a gate's
        name or file sha256 (see :mod:`.gate_requirement`).

        ``required_approvals=0`` and ``require_gate=False`` remove the protection.

        **Lowering or removing a protection is itself protected**: it needs approvals of
        exactly that change (:meth:`approve_protection`; from the protection in force, so
        they lapse when it changes) by as many distinct
        approvers other than the admin as the protection requires now, and at least one
        (:mod:`.protection_approvals`); its entry's ``approved_by`` names them. Setting or
        tightening one needs none.

        >>> _ = registry.register("m", b"x", flavor="onnx")
        >>> registry.protect_alias("m", "champion", 2)
        >>> registry.set_alias("m", "champion", 1)
        Traceback (most recent call last):
        ...
        opsloop.registry.users.PermissionDenied: alias 'champion' of model 'm' is protected: ...
        >>> registry.protect_alias("m", "champion", 0, require_gate="credit")
        >>> registry.set_alias("m", "champion", 1)
        Traceback (most recent call last):
        ...
        opsloop.registry.users.PermissionDenied: ...; version 1 has no gate verdict of 'credit'...
        """
        checked_key("alias", alias)
        require_gate = checked_gate_requirement(require_gate)
        _check_approvals(required_approvals)
        table = tables.protected_aliases
        with self.db.write() as connection:
            # First, as an alias move takes it before it reads the protection: the change is
            # then wholly before or wholly after any move, never written while a move checks
            # (and its new row refers to the model's row, which a registration holding this
            # lock waits for, so the other order could deadlock).
            lock_audit_log(connection)
            who = self._user(connection, actor, "admin")
            model_id = self._model_id(connection, name)
            before_approvals, before_gate = _alias_protection(connection, model_id, alias)
            entity = f"model:{name}/alias:{alias}"
            approved = use_protection_approvals(
                connection,
                entity,
                f"alias {alias!r} of model {name!r}",
                (before_approvals, before_gate),
                (required_approvals, require_gate),
                who,
                "to approve: opsloop models approve-protection "
                f"{name} {alias} --approvals {required_approvals}{gate_flags(require_gate)}",
            )
            connection.execute(
                table.delete().where(table.c.model_id == model_id, table.c.name == alias)
            )
            if required_approvals or require_gate is not False:
                connection.execute(
                    table.insert().values(
                        model_id=model_id,
                        name=alias,
                        required_approvals=required_approvals,
                        required_gate_json=encode_requirement(require_gate),
                    )
                )
            append_audit(
                connection,
                who,
                "protect_alias",
                entity,
                reason,
                {"required_approvals": before_approvals, "require_gate": before_gate},
                {
                    "required_approvals": required_approvals,
                    "require_gate": require_gate,
                    **approved,
                },
            )

    def approve_protection(
        self,
        name: str,
        alias: str,
        required_approvals: int,
        *,
        require_gate: bool | str = False,
        actor: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Approve lowering or removing the protection of ``alias`` to ``required_approvals``
        and ``require_gate`` (approver role); return how many distinct approvers approved
        that change so far. An admin applies it with :meth:`protect_alias`, which counts the
        approvals of exactly that protection by people other than the admin
        (:mod:`.protection_approvals`); a change that does not lower the protection needs
        none, and approving it is refused (:class:`~opsloop.errors.ConflictError`).

        >>> from opsloop.registry.users import add_user
        >>> for user, role in (("root", "admin"), ("ana", "approver")):
        ...     _ = add_user(db, user, role)
        >>> _ = registry.register("m", b"x", flavor="onnx")
        >>> registry.protect_alias("m", "champion", 1, actor="root")
        >>> registry.protect_alias("m", "champion", 0, actor="root")
        Traceback (most recent call last):
        ...
        opsloop.registry.users.PermissionDenied: alias 'champion' of model 'm' is protected by ...
        >>> registry.approve_protection("m", "champion", 0, actor="ana")
        1
        >>> registry.protect_alias("m", "champion", 0, actor="root")
        >>> registry.audit("m")["after"].iloc[-1]
        {'approved_by': ['ana'], 'require_gate': False, 'required_approvals': 0}
        """
        checked_key("alias", alias)
        require_gate = checked_gate_requirement(require_gate)
        _check_approvals(required_approvals)
        if comment is not None:
            checked_text("comment", comment)
        with self.db.write() as connection:
            lock_audit_log(connection)
            who = self._user(connection, actor, "approver")
            model_id = self._model_id(connection, name)
            asked = (required_approvals, require_gate)
            entity = f"model:{name}/alias:{alias}"
            count = record_protection_approval(
                connection,
                entity,
                f"alias {alias!r} of model {name!r}",
                _alias_protection(connection, model_id, alias),
                asked,
                who,
                comment,
            )
            append_audit(
                connection,
                who,
                "approve_protection",
                entity,
                comment,
                None,
                {"required_approvals": required_approvals, "require_gate": require_gate},
            )
            return count

    def approve(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Approve pointing ``alias`` at ``version`` (approver role); return the approvals so far.

        An approval by the user who then moves the alias is kept but does not count toward
        that move (:mod:`.separate_approvers`): the count returned is of every approver.
        The version the alias points at already has nothing to approve: a
        :class:`~opsloop.errors.ConflictError` says so.

        >>> r = ModelRegistry(db, artifacts, actor="x")
        >>> _ = r.register("m", b"x", flavor="onnx"); r.approve("m", "champion", 1)
        Traceback (most recent call last):
        ...
        opsloop.registry.users.PermissionDenied: 'x' is not a registered user: approvals ...
        """
        checked_key("alias", alias)
        if comment is not None:
            checked_text("comment", comment)
        table = tables.approvals
        with self.db.write() as connection:
            # First, as an alias move takes it before it counts and uses up the approvals:
            # an approval is then wholly before or after a move, and two approvals by one
            # approver take turns on the check that refuses the second.
            lock_audit_log(connection)
            who = self._user(connection, actor, "approver")
            row = self._version_row(connection, name, version)
            model_id = row["model_id"]
            in_place = connection.execute(
                sa.select(_aliases.c.version_id).where(
                    _aliases.c.model_id == model_id, _aliases.c.name == alias
                )
            ).scalar()
            if in_place == row["id"]:
                # An approval of the move to where the alias points would approve no
                # move, and left pending it would let a later move back through.
                raise ConflictError(
                    f"alias {alias!r} of model {name!r} points at version {version} already: "
                    "nothing to approve"
                )
            current = (
                table.c.model_id == model_id,
                table.c.alias == alias,
                table.c.version_id == row["id"],
            )
            already = connection.execute(
                sa.select(table.c.id).where(
                    *current, table.c.approver == who, table.c.consumed.is_(False)
                )
            ).first()
            if already is not None:
                raise AlreadyDoneError(
                    f"{who!r} already approved alias {alias!r} -> version {version} of {name!r}"
                )
            connection.execute(
                table.insert().values(
                    model_id=model_id,
                    alias=alias,
                    version_id=row["id"],
                    approver=who,
                    comment=comment,
                    created_ms=self.db.clock(),
                    consumed=False,
                )
            )
            append_audit(
                connection,
                who,
                "approve",
                f"model:{name}/alias:{alias}",
                comment,
                None,
                {"version": version},
            )
            return connection.execute(
                sa.select(sa.func.count(sa.distinct(table.c.approver))).where(
                    *current, table.c.consumed.is_(False)
                )
            ).scalar_one()

    def pending_approvals(self, name: str, *, version: int | None = None) -> pd.DataFrame:
        """The approvals of alias moves of model ``name`` not used up by a move yet (those of
        ``version`` only, if given), oldest first: :data:`PENDING_COLUMNS`, where
        ``approvals`` counts the distinct approvers of that alias and version so far whose
        approval still counts, ``required`` is how many a move needs now (the alias's
        protection, or a protected deployment that follows the alias if it asks for more;
        0: none) and ``lapsed`` says why an approval no longer counts (its approver is
        disabled or cannot approve now, see :mod:`.approver_standing`; ``None`` while it
        counts).

        >>> _ = registry.register("m", b"x", flavor="onnx")
        >>> registry.pending_approvals("m").columns.tolist()
        ['alias', 'version', 'approver', 'comment', 'created_ms', 'approvals', 'required', 'lapsed']
        """
        table, versions = tables.approvals, tables.model_versions
        protected = tables.protected_aliases
        with self.db.read() as connection:
            model_id = self._model_id(connection, name)
            query = (
                sa.select(
                    table.c.alias,
                    versions.c.version,
                    table.c.approver,
                    table.c.comment,
                    table.c.created_ms,
                    sa.func.coalesce(protected.c.required_approvals, 0).label("required"),
                )
                .select_from(
                    table.join(versions, versions.c.id == table.c.version_id).outerjoin(
                        protected,
                        sa.and_(
                            protected.c.model_id == table.c.model_id,
                            protected.c.name == table.c.alias,
                        ),
                    )
                )
                .where(table.c.model_id == model_id, table.c.consumed.is_(False))
                .order_by(table.c.id)
            )
            if version is not None:
                query = query.where(versions.c.version == checked_int("version", version, 1))
            rows = [dict(row) for row in connection.execute(query).mappings()]
            lapsed = lapsed_approvers(connection, {row["approver"] for row in rows})
            guarding = {
                alias: protected_followers(connection, model_id, alias)
                for alias in {row["alias"] for row in rows}
            }
        approvers: dict[tuple[str, int], set[str]] = {}
        for row in rows:
            row["lapsed"] = lapsed.get(row["approver"])
            if row["lapsed"] is None:
                approvers.setdefault((row["alias"], row["version"]), set()).add(row["approver"])
        for row in rows:
            row["approvals"] = len(approvers.get((row["alias"], row["version"]), ()))
            followers = guarding[row["alias"]]
            row["required"] = max(int(row["required"]), followers[0][1] if followers else 0)
        return pending_frame(rows)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere; editor role).

        **A protected alias** (:meth:`protect_alias`) moves only with approvals of that
        version for it (:meth:`approve`) by enough distinct approvers other than the actor
        who moves it: the actor's own approval is recorded but never counts
        (:mod:`.separate_approvers`). The move uses up the pending approvals of it, and its
        ``set_alias`` entry's ``after`` names the approvers that counted
        (``approved_by``); its actor is who moved it.

        **Pointing the alias at the version it points at already** changes nothing: it
        succeeds with no approvals, no release gate and no audit entry, since there is no
        move to guard or record; pending approvals of that version for the alias (from
        before :meth:`approve` refused them) are used up, so that none lets a later move
        back through unapproved.

        >>> for _ in range(2):
        ...     _ = registry.register("m", b"x", flavor="onnx")
        >>> registry.set_alias("m", "champion", 1); registry.set_alias("m", "champion", 2)
        >>> registry.get_version("m", alias="champion").version
        2
        >>> registry.protect_alias("m", "champion", 3)
        >>> registry.set_alias("m", "champion", 2)  # where it points: nothing to approve
        >>> registry.audit("m")["action"].tolist()[-2:]
        ['set_alias', 'protect_alias']
        """
        checked_key("alias", alias)
        approvals = tables.approvals
        with self.db.write() as connection:
            # First, as every change that checks a deployment's settings takes it: a
            # deployment's rules or detector changed meanwhile (READ COMMITTED) would pass
            # their check against the alias's old version while this move passes its own
            # against the old settings.
            lock_audit_log(connection)
            who = self._user(connection, actor, "editor")
            row = self._version_row(connection, name, version)
            model_id = row["model_id"]
            required, gate = _alias_protection(connection, model_id, alias)
            before_version = connection.execute(
                sa.select(_versions.c.version)
                .join(_aliases, _aliases.c.version_id == _versions.c.id)
                .where(_aliases.c.model_id == model_id, _aliases.c.name == alias)
            ).scalar()
            if before_version == version:
                # Pointing the alias where it points changes nothing: nothing to approve,
                # gate or record. Approvals of it (given before approve() refused them)
                # are used up all the same: left pending, they would let a later move
                # back to this version through with nobody approving that move.
                connection.execute(
                    approvals.update()
                    .where(
                        approvals.c.model_id == model_id,
                        approvals.c.alias == alias,
                        approvals.c.version_id == row["id"],
                        approvals.c.consumed.is_(False),
                    )
                    .values(consumed=True)
                )
                return
            check_alias_move(connection, model_id, name, alias, version, row["signature_json"])
            missing = missing_gate(connection, name, version, gate, before_version)
            if missing is not None:
                raise PermissionDenied(
                    f"alias {alias!r} of model {name!r} is protected: moving it to version "
                    f"{version} {missing}"
                )
            pending = (
                approvals.c.model_id == model_id,
                approvals.c.alias == alias,
                approvals.c.version_id == row["id"],
                approvals.c.consumed.is_(False),
            )
            # A protected deployment that follows the alias serves whatever it points at:
            # moving it is a change of that deployment, so it needs as many approvals as
            # the deployment asks for a change (see .alias_move_check).
            followers = protected_followers(connection, model_id, alias)
            check_follower_gates(
                connection, model_id, name, alias, version, before_version, followers
            )
            because, how = "protected", ""
            if followers and followers[0][1] > required:
                because, required = guarded_by(followers), followers[0][1]
                how = (
                    " (a protected deployment follows it; its approvers approve the move: "
                    f"opsloop models approve {name} {alias} {version})"
                )
            approved: dict[str, list[str]] = {}
            if followers:
                approved["protected_deployments"] = [row[0] for row in followers]
            if required:
                given = set(
                    connection.execute(
                        sa.select(approvals.c.approver).distinct().where(*pending)
                    ).scalars()
                )
                lapsed = lapsed_approvers(connection, given)
                shortfall = approval_shortfall(
                    required, given, who, applies="moves it", lapsed=lapsed
                )
                if shortfall is not None:
                    raise PermissionDenied(
                        f"alias {alias!r} of model {name!r} is {because}: moving it to "
                        f"version {version} {shortfall}{how}"
                    )
                # All of them, the mover's own too: the move they approved is made.
                connection.execute(approvals.update().where(*pending).values(consumed=True))
                approved["approved_by"] = list(counted_approvers(given, who, also_excluded=lapsed))
            connection.execute(
                _aliases.delete().where(_aliases.c.model_id == model_id, _aliases.c.name == alias)
            )
            connection.execute(
                _aliases.insert().values(
                    model_id=model_id, name=alias, version_id=row["id"], updated_ms=self.db.clock()
                )
            )
            append_audit(
                connection,
                who,
                "set_alias",
                f"model:{name}/alias:{alias}",
                reason,
                None if before_version is None else {"version": before_version},
                {"version": version, **approved},
            )

    def record_gate(
        self,
        name: str,
        version: int,
        *,
        passed: bool,
        gate: Mapping[str, Any],
        actor: str | None = None,
        reason: str | None = None,
    ) -> str:
        """Record a release gate's verdict on a version: an audit entry ``gate_passed`` or
        ``gate_failed`` on ``model:NAME/version:N`` whose ``after`` is ``gate`` (what was
        run: the gate file's sha256, the baseline, the data's sha256, the failed checks)
        plus ``recorder_role``, the recording user's role, which the registry sets. Returns
        the entry's hash.

        Any editor may record a verdict; a protected alias that requires a gate counts only
        those recorded by a gatekeeper or an admin (see :mod:`.gate_requirement`).

        >>> import tempfile
        >>> from opsloop.store import ArtifactStore, Database
        >>> r = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
        >>> _ = r.register("m", b"x", flavor="onnx")
        >>> _ = r.record_gate("m", 1, passed=False, gate={"failed": ["auc >= 0.75"]})
        >>> r.audit("m")[["action", "entity"]].iloc[-1].tolist()
        ['gate_failed', 'model:m/version:1']
        """
        if not isinstance(passed, bool):
            raise InvalidArgumentError(f"passed must be true or false, got {passed!r}")
        if not isinstance(gate, Mapping):
            raise InvalidArgumentError(f"gate must be a mapping of what was run, got {gate!r}")
        try:
            document = json.loads(json.dumps(dict(gate), allow_nan=False))
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(f"gate must be plain JSON values ({error})") from None
        if RECORDER_ROLE in document:
            raise InvalidArgumentError(
                f"gate: {RECORDER_ROLE} is set by the registry from the recording user's role"
            )
        with self.db.write() as connection:
            who = self._user(connection, actor, "editor")
            row = self._version_row(connection, name, version)
            document[RECORDER_ROLE] = user_role(connection, who)
            return append_audit(
                connection,
                who,
                "gate_passed" if passed else "gate_failed",
                f"model:{name}/version:{row['version']}",
                reason,
                None,
                document,
            )

    # -- reads ----------------------------------------------------------------------------

    def alias_at(self, name: str, alias: str, at_ms: int) -> int | None:
        """The version ``alias`` pointed at, at time ``at_ms`` (from the audit log).

        >>> from opsloop.store.database import now_ms
        >>> _ = registry.register("m", b"x", flavor="onnx"); registry.set_alias("m", "prod", 1)
        >>> registry.alias_at("m", "prod", 0), registry.alias_at("m", "prod", now_ms() + 1)
        (None, 1)
        """
        checked_int("at_ms", at_ms)
        with self.db.read() as connection:
            return alias_version_at(connection, name, alias, at_ms)

    def load(
        self,
        name: str,
        version: int | None = None,
        alias: str | None = None,
        *,
        trust: bool = False,
        trusted_types: Iterable[str] = (),
    ) -> object:
        """The model object, after verifying its artifact against the recorded sha256.

        A changed artifact raises :class:`~opsloop.store.TamperedArtifactError` naming the
        expected and found hashes, before anything is deserialised. A model that would run
        code while loading raises :class:`~.model_trust.UntrustedModelError` naming who
        registered it, unless ``trust=True`` (a pickle, or any skops type) or
        ``trusted_types`` names the skops types beyond the allow-list.

        >>> _ = registry.register("m", b"\\x01", flavor="onnx"); registry.load("m")
        b'\\x01'
        """
        with self.db.read() as connection:
            row = self._version_row(connection, name, version, alias)
        data = self.artifacts.get_bytes(row["artifact_sha256"])
        return load_model_bytes(
            data,
            row["flavor"],
            json.loads(row["loader_json"] or "{}"),
            trust=trust,
            trusted_types=trusted_types,
            source=f"models:/{name}/{row['version']}",
            registered_by=row["created_by"],
        )

    def artifact_bytes(self, name: str, version: int) -> bytes:
        """The bytes of a version's artifact, checked against its recorded sha256 (not
        deserialised, so no trust is needed).

        >>> _ = registry.register("m", b"\\x01", flavor="onnx"); registry.artifact_bytes("m", 1)
        b'\\x01'
        """
        with self.db.read() as connection:
            row = self._version_row(connection, name, version)
        return self.artifacts.get_bytes(row["artifact_sha256"])

    def loader_record(
        self, name: str, version: int | None = None, alias: str | None = None
    ) -> dict[str, Any]:
        """The loader record kept at registration: the artifact's format and, for skops, the
        types it names beyond skops' defaults (recorded for information, never trusted).

        >>> _ = registry.register("m", b"x", flavor="onnx"); registry.loader_record("m", 1)
        {'format': 'onnx'}
        """
        with self.db.read() as connection:
            row = self._version_row(connection, name, version, alias)
        return json.loads(row["loader_json"] or "{}")

    def lineage(self, name: str, version: int | None = None, alias: str | None = None) -> Lineage:
        """Version -> artifact -> run -> commit, packages and data hashes, in one query.

        >>> _ = registry.register("m", b"x", flavor="onnx"); registry.lineage("m", 1).run_id is None
        True
        """
        if alias is not None:
            start = _versions.join(
                _aliases, sa.and_(_aliases.c.version_id == _versions.c.id, _aliases.c.name == alias)
            )
            query = lineage_select(start, _models.c.name == name)
        elif version is not None:
            checked_int("version", version, 1, INT32_MAX)
            query = lineage_select(
                _versions, _models.c.name == name, _versions.c.version == version
            )
        else:
            latest = (
                sa.select(sa.func.max(_versions.c.version))
                .join(_models, _models.c.id == _versions.c.model_id)
                .where(_models.c.name == name)
                .scalar_subquery()
            )
            query = lineage_select(_versions, _models.c.name == name, _versions.c.version == latest)
        with self.db.read() as connection:
            rows = connection.execute(query).mappings().all()
        if not rows:
            what = (
                f"alias {alias!r}" if alias else f"version {version}" if version else "any version"
            )
            raise UnknownModelError(f"model {name!r} has no {what}")
        return lineage_from_rows(rows, alias)

    def list_models(
        self, name: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> pd.DataFrame:
        """One row per model: ``name``, ``description``, ``latest_version``, ``aliases``;
        by name, the ``limit`` models (default: all) after the first ``offset``, or the one
        model called ``name`` (no row if there is none).

        >>> for model in ("b", "a", "c"):
        ...     _ = registry.register(model, b"x", flavor="onnx")
        >>> registry.list_models(limit=2, offset=1)["name"].tolist()
        ['b', 'c']
        >>> registry.list_models("c")["latest_version"].tolist(), len(registry.list_models("d"))
        ([1], 0)
        """
        limit, offset = page_bounds(limit, offset)
        latest = (
            sa.select(sa.func.max(_versions.c.version))
            .where(_versions.c.model_id == _models.c.id)
            .scalar_subquery()
        )
        query = sa.select(
            _models.c.id, _models.c.name, _models.c.description, latest.label("latest_version")
        ).order_by(_models.c.name)
        if name is not None:
            query = query.where(_models.c.name == name)
        query = query.limit(limit).offset(offset)
        with self.db.read() as connection:
            rows = connection.execute(query).all()
            alias_rows = connection.execute(
                sa.select(_aliases.c.model_id, _aliases.c.name, _versions.c.version)
                .join(_versions, _versions.c.id == _aliases.c.version_id)
                .where(_aliases.c.model_id.in_([row.id for row in rows]))
                .order_by(_aliases.c.name)
            ).all()
        aliases: dict[int, dict[str, int]] = {}
        for model_id, alias, number in alias_rows:
            aliases.setdefault(model_id, {})[alias] = number
        frame = pd.DataFrame(
            [
                {
                    "name": row.name,
                    "description": row.description,
                    "latest_version": row.latest_version,
                    "aliases": aliases.get(row.id, {}),
                }
                for row in rows
            ],
            columns=["name", "description", "latest_version", "aliases"],
            dtype=object,
        )
        frame["latest_version"] = frame["latest_version"].astype("int64")
        return frame

    def search(
        self,
        text: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        min_metrics: Mapping[str, float] | None = None,
        max_metrics: Mapping[str, float] | None = None,
        model: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Versions matching all the given conditions, newest first, as a DataFrame: the
        ``limit`` versions (default: all) after the first ``offset``.

        ``text`` matches model names and model or version descriptions (case-insensitive);
        ``tags`` version tags exactly; ``alias`` versions holding that alias; ``min_metrics``
        and ``max_metrics`` bound version metrics; ``model`` is a model's exact name.

        A version's metrics are those given to :meth:`register`, completed by the latest
        values its source run logged: where both name a metric, the registered value wins.
        The bounds and the ``metrics`` column both use them.

        ``tracking`` is the tracking store on ``registry``'s database:

        >>> from opsloop.tracking.active_run import ActiveRun
        >>> with ActiveRun(tracking, tracking.create_run("churn")) as run:
        ...     run.log_metrics({"auc": 0.9, "loss": 0.3})
        >>> _ = registry.register("churn", b"x", flavor="onnx", metrics={"auc": 0.8})
        >>> _ = registry.register(
        ...     "churn", b"y", flavor="onnx", run_id=run.run_id, metrics={"loss": 0.2}
        ... )
        >>> found = registry.search(min_metrics={"auc": 0.85})
        >>> found[["model", "version"]].values.tolist(), found["metrics"].tolist()
        ([['churn', 2]], [{'auc': 0.9, 'loss': 0.2}])
        >>> registry.search(model="churn", limit=1, offset=1)["version"].tolist()
        [1]
        """
        limit, offset = page_bounds(limit, offset)
        vt = tables.version_tags
        query = sa.select(_models.c.name, _versions.c.id, _versions.c.version).join(
            _models, _models.c.id == _versions.c.model_id
        )
        if text:
            pattern = f"%{text}%"
            query = query.where(
                sa.or_(
                    _models.c.name.ilike(pattern),
                    _models.c.description.ilike(pattern),
                    _versions.c.description.ilike(pattern),
                )
            )
        for key, value in (tags or {}).items():
            query = query.where(
                sa.exists().where(
                    vt.c.version_id == _versions.c.id, vt.c.key == key, vt.c.value == str(value)
                )
            )
        if alias is not None:
            query = query.where(
                sa.exists().where(_aliases.c.version_id == _versions.c.id, _aliases.c.name == alias)
            )
        if model is not None:
            query = query.where(_models.c.name == model)
        for bound, op in ((min_metrics, "ge"), (max_metrics, "le")):
            for key, threshold in (bound or {}).items():
                query = query.where(_metric_bound(key, metric_value(key, threshold), op))
        newest_first = (_versions.c.created_ms.desc(), _versions.c.id.desc())
        # The page's versions only: their details are read for the rows shown.
        chosen = (
            query.with_only_columns(_versions.c.id)
            .order_by(*newest_first)
            .limit(limit)
            .offset(offset)
        )
        runs = tables.runs
        rows_query = (
            query.with_only_columns(
                _versions.c.id,
                _models.c.name,
                _versions.c.version,
                _versions.c.flavor,
                _versions.c.description,
                runs.c.run_id,
                _versions.c.artifact_sha256,
                _versions.c.run_id.label("run_key"),
            )
            .outerjoin(runs, runs.c.id == _versions.c.run_id)
            .order_by(*newest_first)
            .limit(limit)
            .offset(offset)
        )
        # Two queries in all, whatever the number of versions found: the rows, then every
        # version's metrics, tags and aliases.
        with self.db.read() as connection:
            found = connection.execute(rows_query).all()
            details = _version_details(connection, chosen, {row[0]: row[-1] for row in found})
        records = [
            {
                "model": model,
                "version": number,
                "flavor": flavor,
                "aliases": details.aliases.get(version_id, ()),
                "metrics": details.metrics.get(version_id, {}),
                "tags": details.tags.get(version_id, {}),
                "description": description,
                "run_id": run_id,
                "artifact_sha256": sha256,
            }
            for version_id, model, number, flavor, description, run_id, sha256, _ in found
        ]
        return pd.DataFrame(records, columns=SEARCH_COLUMNS)

    def verify_audit_log(self, head: str | None = None) -> AuditVerification:
        """Check the audit log's keyed chain, that the published ``head`` is still in it, and
        that the current state is the one it implies (see :mod:`.audit`).

        >>> _ = registry.register("m", b"x", flavor="onnx")
        >>> registry.verify_audit_log().ok, registry.verify_audit_log(head="0" * 64).ok
        (True, False)
        """
        return verify_audit_log(self.db, head=head)

    def audit_head(self) -> dict[str, object]:
        """The audit log's newest entry (id, time, hash) and its length, to publish.

        >>> _ = registry.register("m", b"x", flavor="onnx"); registry.audit_head()["entries"]
        2
        """
        return audit_head(self.db)

    def audit(
        self,
        name: str | None = None,
        *,
        version: int | None = None,
        last: int | None = None,
        before: int | None = None,
    ) -> pd.DataFrame:
        """The audit log (every entity, or those of model ``name``, its versions and its
        aliases; with ``version``, only the entries of that version of ``name``), oldest
        first; with ``before``, the entries whose id is lower, and with ``last``, the newest
        ``last`` of those (a page of a long log). Each is read from the log's index, so a
        version's entries cost the same however long the rest of the log is.

        >>> _ = registry.register("m", b"x", flavor="onnx")
        >>> _ = registry.register("m2", b"x", flavor="onnx")
        >>> registry.audit("m")["entity"].tolist()
        ['model:m', 'model:m/version:1']
        >>> registry.audit("m", last=1)["entity"].tolist()
        ['model:m/version:1']
        >>> _ = registry.register("m", b"y", flavor="onnx")
        >>> registry.audit("m", version=2)[["action", "entity"]].values.tolist()
        [['register_version', 'model:m/version:2']]
        >>> registry.audit(version=2)
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: version: give the model's name with it
        """
        if version is None:
            return audit_entries(self.db, model=name, last=last, before=before)
        if name is None:
            raise InvalidArgumentError("version: give the model's name with it")
        entity = f"model:{name}/version:{version}"
        return audit_entries(self.db, entity=entity, last=last, before=before)


#: Columns of :meth:`ModelRegistry.pending_approvals`'s frame.
PENDING_COLUMNS = (
    "alias",
    "version",
    "approver",
    "comment",
    "created_ms",
    "approvals",
    "required",
    "lapsed",
)


def pending_frame(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Pending alias approvals as :meth:`ModelRegistry.pending_approvals`'s frame (the
    wire's rows too), whole numbers as int64 even when there are none.

    >>> pending_frame([])["approvals"].dtype
    dtype('int64')
    >>> pending_frame([{"alias": "a", "version": 2, "approver": "apo", "comment": None,
    ...     "created_ms": 5, "approvals": 1, "required": 2}])["comment"].tolist()
    [None]
    """
    frame = pd.DataFrame(list(rows), columns=list(PENDING_COLUMNS))
    for column in ("version", "created_ms", "approvals", "required"):
        frame[column] = frame[column].astype("int64")
    # No comment (or an approval that counts) is None, not NaN, on both sides of the wire.
    for column in ("comment", "lapsed"):
        frame[column] = pd.Series(
            [c if isinstance(c, str) else None for c in frame[column]], dtype=object
        )
    return frame


def _check_approvals(required_approvals: object) -> None:
    if (
        isinstance(required_approvals, bool)
        or not isinstance(required_approvals, int)
        or not 0 <= required_approvals <= INT32_MAX
    ):
        raise InvalidArgumentError(
            f"required_approvals must be a non-negative integer (at most {INT32_MAX}), "
            f"got {required_approvals!r}"
        )


def _alias_protection(connection: Connection, model_id: int, alias: str) -> tuple[int, bool | str]:
    """The approvals and the release gate that moving ``alias`` needs (0 and ``False``:
    none)."""
    protected = tables.protected_aliases
    row = connection.execute(
        sa.select(protected.c.required_approvals, protected.c.required_gate_json).where(
            protected.c.model_id == model_id, protected.c.name == alias
        )
    ).first()
    if row is None:
        return 0, False
    return int(row.required_approvals), decode_requirement(row.required_gate_json)


def _input_names(signature: dict | None) -> list[str] | None:
    """The signature's input columns in order, ``None`` when it names none."""
    if signature is None or signature.get("inputs") is None:
        return None
    return list(signature["inputs"]["columns"])


def _training_reference(
    training_data: Any,
    training_reference: Any,
    inputs: list[str] | None = None,
    label_column: str | None = None,
) -> Reference | None:
    """The reference to keep with a version: built from ``training_data``'s input columns
    (the signature's ``inputs``; the ``label_column`` kept as labels) here, or decoded from
    ``training_reference`` (built by a client), checked and bounded alike.

    >>> frame = pd.DataFrame({"x": [0.5, 1.5], "target": [0, 1]})
    >>> ref = _training_reference(frame, None, ["x"], "target")
    >>> ref.features, ref.has_labels
    (('x',), True)
    >>> from opsloop.data.training_reference import encode_reference
    >>> _training_reference(None, encode_reference(build_reference(frame)), ["x"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: training_reference: its column 'target' is not an input of the signature; build it from the input columns
    """  # noqa: E501 - a doctest's expected output is one line
    if training_data is not None and training_reference is not None:
        raise InvalidArgumentError(
            "training_reference: give the training data or its reference, not both"
        )
    if label_column is not None and training_data is None:
        raise InvalidArgumentError("label_column: names a column of training_data; give it too")
    if training_data is not None:
        if not isinstance(training_data, pd.DataFrame):
            raise InvalidArgumentError(
                f"training_data: a pandas DataFrame, got {type(training_data).__name__}"
            )
        frame, labels = training_inputs(training_data, inputs, label_column)
        try:
            return build_reference(frame, labels=labels)
        except InvalidArgumentError as error:
            raise InvalidArgumentError(
                f"training_data: {str(error).removeprefix('frame: ')}"
            ) from None
    if training_reference is not None:
        reference = decode_reference(training_reference, "training_reference")
        if inputs is not None:
            for column in reference.features:
                if column not in inputs:
                    raise InvalidArgumentError(
                        f"training_reference: its column {column!r} is not an input of the "
                        "signature; build it from the input columns"
                    )
        return reference
    return None


#: What a schema inferred from a Period column keeps in a signature: its rules on presence.
_PERIOD_INPUT_KEYS = ("required", "max_null_fraction", "null_significance", "absent_in")


def _served_types(frame: pd.DataFrame, inputs: dict) -> dict:
    """``inputs`` (the schema inferred from ``frame``) with its Period columns typed
    ``string``: a profile or a schema reads a Period column as ``datetime``, but a request
    over JSON carries a period as its text (``'2024Q2'``), which a ``datetime`` column
    refuses, so the model is served a period's text, as it was trained on its values."""
    from opsloop.data.period_columns import holds_periods

    columns = inputs["columns"]
    for name in frame.columns:
        if str(name) in columns and holds_periods(frame[name]):
            rules = columns[str(name)]
            kept = {key: rules[key] for key in _PERIOD_INPUT_KEYS if key in rules}
            columns[str(name)] = {"type": "string", **kept}
    return inputs


def _signature(input_schema: Any, output_type: str | None) -> dict | None:
    if input_schema is None and output_type is None:
        return None
    inputs = None
    if input_schema is not None:
        from opsloop.data.schema import Schema, infer_schema

        if isinstance(input_schema, pd.DataFrame):
            inputs = _served_types(input_schema, infer_schema(input_schema).to_dict())
        elif isinstance(input_schema, Schema):
            inputs = input_schema.to_dict()
        elif isinstance(input_schema, Mapping):
            try:
                inputs = Schema.from_dict(input_schema).to_dict()
            except InvalidArgumentError:
                raise
            except (ValueError, TypeError, KeyError) as error:
                # A schema dictionary crosses the HTTP boundary: its mistake is the client's.
                raise InvalidArgumentError(f"input_schema: {error}") from None
        else:
            raise TypeError(
                "input_schema must be a Schema, a DataFrame or a schema dictionary, got "
                f"{type(input_schema).__name__}"
            )
    if output_type is not None and not isinstance(output_type, str):
        raise TypeError(f"output_type must be a string such as 'float', got {output_type!r}")
    return {"inputs": inputs, "output": output_type}
