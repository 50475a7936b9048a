"""The model registry through an opsloop server: :class:`ModelRegistry`'s methods over REST.

:class:`HttpModelRegistry` has the public methods of
:class:`~opsloop.registry.ModelRegistry` and returns the same records and DataFrames.
Registering saves the model here (the same :mod:`.flavors` code as local use), uploads the
bytes under their sha256 and registers that hash. Loading asks the server for the version and
the loader record it kept at registration, downloads the artifact, checks its sha256 here
against the version's recorded hash and only then deserialises it, here, by the same rules as
local loading (:mod:`.model_trust`): nothing the server sends widens what is trusted, a
pickle needs the loading user's ``trust=True`` and skops types beyond the fixed allow-list
need ``trusted_types``. A server that sends other bytes, or bytes changed on the way, gets a
:class:`~opsloop.store.TamperedArtifactError` naming both hashes, before anything is loaded.

The connection, the Bearer token (``OPSLOOP_TRACKING_TOKEN`` or ``token=``) and the error
policy are those of the tracking client (:class:`~opsloop.tracking.http_store.ServerConnection`):
a server error comes back as the exception local use raises (:class:`UnknownModelError`,
:class:`~opsloop.registry.PermissionDenied`, ``TamperedArtifactError``, ``ValueError``
naming the field). The acting user is the one the token belongs to; ``actor=`` cannot be
claimed over HTTP and is refused.

>>> registry = HttpModelRegistry("http://127.0.0.1:5005/", token="olp_x")
>>> registry
HttpModelRegistry('http://127.0.0.1:5005')
>>> registry.set_alias("churn", "champion", 2, actor="ana")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner of the API...
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd

from opsloop.errors import InvalidArgumentError
from opsloop.registry.audit import AuditVerification, audit_frame
from opsloop.registry.flavors import (
    FLAVORS,
    CorruptModelError,
    dump_model,
    infer_flavor,
    load_model_bytes,
)
from opsloop.registry.model_registry import SEARCH_COLUMNS, UnknownModelError, _signature
from opsloop.registry.records import Lineage, ModelVersion
from opsloop.registry.references import ModelReferences
from opsloop.registry.users import PermissionDenied, UnknownTokenError, UnknownUserError
from opsloop.store.artifacts import TamperedArtifactError, check_sha256
from opsloop.tracking.http_store import ServerConnection
from opsloop.tracking.limits import checked_key, metric_value, tag_text

_ERRORS = {
    kind.__name__: kind
    for kind in (
        UnknownModelError,
        PermissionDenied,
        UnknownUserError,
        UnknownTokenError,
        CorruptModelError,
    )
}


def path_segment(text: str) -> str:
    """``text`` as a URL path (names may hold ``/``; ``.`` and ``..`` parts are escaped).

    >>> path_segment("team/credit model"), path_segment("..")
    ('team/credit%20model', '%2E%2E')
    """
    # "/" stays: the server matches names as paths. "." and ".." would be folded away by
    # URL normalisation, so they travel percent-encoded.
    parts = quote(text, safe="/").split("/")
    return "/".join("%2E" * len(part) if part in (".", "..") else part for part in parts)


def refuse_actor(actor: str | None) -> None:
    """Refuse ``actor=`` for a server, where the API token decides who acts.

    >>> refuse_actor(None)
    """
    if actor is not None:
        raise InvalidArgumentError(
            "actor: over HTTP the acting user is the owner of the API token; open the registry "
            f"with that user's token instead of passing actor={actor!r}"
        )


def _selector(version: int | None, alias: str | None) -> dict[str, object]:
    chosen = {"version": version, "alias": alias}
    return {key: value for key, value in chosen.items() if value is not None}


def _version(document: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
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


class ServerClient:
    """What the HTTP registry and deployments share: one :class:`ServerConnection` to the
    server at ``base_url`` (the token's owner acts), and server errors raised again as the
    local exception types named in ``errors``.

    >>> ServerClient("ftp://example.com")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: tracking server URL must start with http:// or https://...
    >>> ServerClient("http://127.0.0.1:1").close()
    """

    errors: Mapping[str, Callable[[str], BaseException]] = {}

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self._server = ServerConnection(
            base_url, token=token, transport=transport, timeout_s=timeout_s, denied=PermissionDenied
        )
        self.base_url = self._server.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool (the object reconnects if used again)."""
        self._server.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self._server.call(method, path, errors=self.errors, **kwargs)


class HttpModelRegistry(ServerClient, ModelReferences):
    """The registry of the opsloop server at ``base_url``.

    >>> HttpModelRegistry("ftp://example.com")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: tracking server URL must start with http:// or https://...
    """

    errors = _ERRORS

    # -- reads ----------------------------------------------------------------------------

    def get_version(
        self, name: str, version: int | None = None, alias: str | None = None
    ) -> ModelVersion:
        """A version by number, by alias, or the newest one.

        >>> HttpModelRegistry("http://127.0.0.1:1").get_version("m", 1, "champion")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: give a version or an alias, not both
        """
        if alias is not None and version is not None:
            raise InvalidArgumentError("give a version or an alias, not both")
        if alias is not None:
            path = f"/models/{path_segment(name)}/aliases/{path_segment(alias)}"
        elif version is not None:
            if isinstance(version, bool) or not isinstance(version, int):
                raise TypeError(f"version must be an integer, got {version!r}")
            path = f"/models/{path_segment(name)}/versions/{version}"
        else:
            path = f"/models/{path_segment(name)}/versions/latest"
        return _version(self._call("GET", path).json())

    def alias_at(self, name: str, alias: str, at_ms: int) -> int | None:
        """The version ``alias`` pointed at, at time ``at_ms`` (from the audit log).

        >>> from opsloop.store import now_ms
        >>> remote = HttpModelRegistry(server_url)
        >>> _ = remote.register("churn", b"onnx bytes", flavor="onnx")
        >>> remote.set_alias("churn", "champion", 1)
        >>> remote.alias_at("churn", "champion", 0), remote.alias_at("churn", "champion", now_ms())
        (None, 1)
        """
        path = f"/models/{path_segment(name)}/aliases/{path_segment(alias)}"
        return self._call("GET", path, params={"at_ms": int(at_ms)}).json()["version"]

    def load(
        self,
        name: str,
        version: int | None = None,
        alias: str | None = None,
        *,
        trust: bool = False,
        trusted_types: Iterable[str] = (),
    ) -> object:
        """The model object, after verifying the downloaded bytes against the recorded sha256.

        ``trust`` and ``trusted_types`` as in :meth:`ModelRegistry.load`.

        >>> HttpModelRegistry("http://127.0.0.1:1").load("m", 1, "champion")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: give a version or an alias, not both
        """
        if version is not None and alias is not None:
            raise InvalidArgumentError("give a version or an alias, not both")
        path = f"/models/{path_segment(name)}/loader"
        answer = self._call("GET", path, params=_selector(version, alias)).json()
        expected = answer["version"]["artifact_sha256"]
        check_sha256(expected, "artifact_sha256")
        artifact = f"/artifacts/{expected}"
        data = self._call("GET", artifact).content
        found = hashlib.sha256(data).hexdigest()
        if found != expected:
            raise TamperedArtifactError(expected, found, f"{self.base_url}/api/v1{artifact}")
        described = answer["version"]
        return load_model_bytes(
            data,
            described["flavor"],
            answer["loader"],
            trust=trust,
            trusted_types=trusted_types,
            source=f"models:/{name}/{described['version']}",
            registered_by=described.get("created_by"),
        )

    def loader_record(
        self, name: str, version: int | None = None, alias: str | None = None
    ) -> dict[str, Any]:
        """The loader record kept at registration, as :meth:`ModelRegistry.loader_record`.

        >>> HttpModelRegistry("http://127.0.0.1:1").loader_record("m", 1, "champion")
        Traceback (most recent call last):
        ValueError: give a version or an alias, not both
        """
        if version is not None and alias is not None:
            raise ValueError("give a version or an alias, not both")
        path = f"/models/{path_segment(name)}/loader"
        return self._call("GET", path, params=_selector(version, alias)).json()["loader"]

    def lineage(self, name: str, version: int | None = None, alias: str | None = None) -> Lineage:
        """Version -> artifact -> run -> commit, packages and data hashes.

        >>> run_id = tracking.create_run("churn")  # the server's store
        >>> remote = HttpModelRegistry(server_url)
        >>> _ = remote.register("churn", b"onnx bytes", flavor="onnx", run_id=run_id)
        >>> lineage = remote.lineage("churn", 1)
        >>> lineage.run_id == run_id, lineage.experiment
        (True, 'churn')
        """
        path = f"/models/{path_segment(name)}/lineage"
        document = self._call("GET", path, params=_selector(version, alias)).json()
        return Lineage.from_dict(document)

    def list_models(self) -> pd.DataFrame:
        """One row per model: ``name``, ``description``, ``latest_version``, ``aliases``.

        >>> remote = HttpModelRegistry(server_url)
        >>> for content in (b"first", b"second"):
        ...     _ = remote.register("churn", content, flavor="onnx")
        >>> remote.set_alias("churn", "champion", 1)
        >>> remote.list_models().to_dict("records")
        [{'name': 'churn', 'description': None, 'latest_version': 2, 'aliases': {'champion': 1}}]
        """
        rows = self._call("GET", "/models").json()["models"]
        frame = pd.DataFrame(
            rows, columns=["name", "description", "latest_version", "aliases"], dtype=object
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
    ) -> pd.DataFrame:
        """Versions matching all the given conditions, newest first, as a DataFrame.

        The server's :meth:`ModelRegistry.search` answers: a version's metrics are the
        registered ones over its source run's latest values.

        >>> HttpModelRegistry("http://127.0.0.1:1").search(min_metrics={"auc": float("nan")})
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: metric 'auc': value must be a finite number, got nan
        """
        body = {
            "text": text,
            "tags": {key: str(value) for key, value in (tags or {}).items()},
            "alias": alias,
            "min_metrics": {k: metric_value(k, v) for k, v in (min_metrics or {}).items()},
            "max_metrics": {k: metric_value(k, v) for k, v in (max_metrics or {}).items()},
        }
        rows = self._call("POST", "/models/search", json=body).json()["versions"]
        for row in rows:
            row["aliases"] = tuple(row["aliases"])
        return pd.DataFrame(rows, columns=SEARCH_COLUMNS)

    def verify_audit_log(self, head: str | None = None) -> AuditVerification:
        """Check the audit log on the server (which holds its key), as
        :meth:`ModelRegistry.verify_audit_log` does.

        >>> HttpModelRegistry("http://127.0.0.1:1").verify_audit_log(head="x")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: head must be 64 lowercase hex digits, got 'x'
        """
        params = {}
        if head is not None:
            check_sha256(head, "head")
            params["head"] = head
        return AuditVerification.from_dict(self._call("GET", "/audit/verify", params=params).json())

    def audit_head(self) -> dict[str, object]:
        """The server's audit log head (newest entry's id, time, hash) and its length.

        >>> HttpModelRegistry("http://127.0.0.1:1", timeout_s=0.5).audit_head()
        Traceback (most recent call last):
        httpx.ConnectError: ...
        """
        return self._call("GET", "/audit/head").json()

    def audit(self, name: str | None = None) -> pd.DataFrame:
        """The audit log (every entity, or those of model ``name``), oldest first.

        >>> remote = HttpModelRegistry(server_url)
        >>> _ = remote.register("churn", b"onnx bytes", flavor="onnx")
        >>> _ = remote.register("churn-v2", b"onnx bytes", flavor="onnx")
        >>> remote.set_alias("churn", "champion", 1, reason="first model")
        >>> for entry in remote.audit("churn")[["action", "entity", "reason"]].values.tolist():
        ...     print(*entry)
        create_model model:churn None
        register_version model:churn/version:1 None
        set_alias model:churn/alias:champion first model
        """
        params = {} if name is None else {"model": name}
        rows = self._call("GET", "/audit", params=params).json()["entries"]
        return audit_frame({**row, "at_ms": row["time"]} for row in rows)

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
    ) -> ModelVersion:
        """Register a new version of ``name``: save the model here, upload it, register it.

        Without a model, ``artifact_sha256`` names an artifact already on the server.

        >>> registry = HttpModelRegistry("http://127.0.0.1:1")
        >>> registry.register("m", abs, metrics={"auc": float("inf")})
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: metric 'auc': value must be a finite number, got inf
        """
        refuse_actor(actor)
        checked_key("model name", name)
        signature = _signature(input_schema, output_type)
        body: dict[str, Any] = {
            "run_id": run_id,
            "input_schema": None if signature is None else signature["inputs"],
            "output_type": output_type,
            "metrics": {
                checked_key("metric", k): metric_value(k, v) for k, v in (metrics or {}).items()
            },
            "tags": {checked_key("tag", k): tag_text(k, v) for k, v in (tags or {}).items()},
            "description": description,
            "reason": reason,
        }
        if model is not None:
            flavor = flavor or infer_flavor(model)
            data, _ = dump_model(model, flavor)
            artifact_sha256 = hashlib.sha256(data).hexdigest()
            self._call(
                "PUT",
                f"/artifacts/{artifact_sha256}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
        else:
            if artifact_sha256 is None:
                raise InvalidArgumentError("register needs a model object or an artifact_sha256")
            check_sha256(artifact_sha256, "artifact_sha256")
            if flavor not in FLAVORS:
                raise InvalidArgumentError(
                    f"flavor must be one of {', '.join(FLAVORS)}, got {flavor!r}"
                )
        body["artifact_sha256"], body["flavor"] = artifact_sha256, flavor
        answer = self._call("POST", f"/models/{path_segment(name)}/versions", json=body)
        return _version(answer.json())

    def set_description(self, name: str, description: str, *, actor: str | None = None) -> None:
        """Describe a registered model (searchable by :meth:`search`).

        >>> remote = HttpModelRegistry(server_url)
        >>> _ = remote.register("churn", b"onnx bytes", flavor="onnx")
        >>> remote.set_description("churn", "monthly churn score")
        >>> remote.search("monthly")[["model", "version"]].values.tolist()
        [['churn', 1]]
        """
        refuse_actor(actor)
        self._call(
            "PUT", f"/models/{path_segment(name)}/description", json={"description": description}
        )

    def protect_alias(
        self,
        name: str,
        alias: str,
        required_approvals: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Require ``required_approvals`` distinct approvers before ``alias`` can move (admin).

        >>> remote = HttpModelRegistry(server_url)
        >>> _ = remote.register("churn", b"onnx bytes", flavor="onnx")
        >>> remote.protect_alias("churn", "champion", 2)
        >>> remote.set_alias("churn", "champion", 1)
        Traceback (most recent call last):
        opsloop.registry.users.PermissionDenied: alias 'champion' of model 'churn' is protected:
        moving it to version 1 needs 2 approvals from distinct approvers, has 0
        """
        refuse_actor(actor)
        checked_key("alias", alias)
        body = {"required_approvals": required_approvals, "reason": reason}
        self._call(
            "PUT",
            f"/models/{path_segment(name)}/aliases/{path_segment(alias)}/protection",
            json=body,
        )

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

        ``db`` is the server's store; each user acts with their own API token:

        >>> from opsloop.registry import add_user
        >>> admin = HttpModelRegistry(server_url, token=add_user(db, "ada", "admin")[1])
        >>> approver = HttpModelRegistry(server_url, token=add_user(db, "ana", "approver")[1])
        >>> _ = admin.register("churn", b"onnx bytes", flavor="onnx")
        >>> admin.protect_alias("churn", "champion", 1)
        >>> approver.approve("churn", "champion", 1, comment="validated on March data")
        1
        >>> admin.set_alias("churn", "champion", 1)
        >>> admin.get_version("churn", alias="champion").version
        1
        """
        refuse_actor(actor)
        checked_key("alias", alias)
        body = {"version": version, "comment": comment}
        path = f"/models/{path_segment(name)}/aliases/{path_segment(alias)}/approvals"
        return self._call("POST", path, json=body).json()["approvals"]

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Point ``alias`` at ``version`` (protected aliases need their approvals first).

        >>> remote = HttpModelRegistry(server_url)
        >>> for content in (b"first", b"second"):
        ...     _ = remote.register("churn", content, flavor="onnx")
        >>> remote.set_alias("churn", "champion", 1); remote.set_alias("churn", "champion", 2)
        >>> remote.get_version("churn", alias="champion").version
        2
        """
        refuse_actor(actor)
        checked_key("alias", alias)
        body = {"version": version, "reason": reason}
        self._call("PUT", f"/models/{path_segment(name)}/aliases/{path_segment(alias)}", json=body)
