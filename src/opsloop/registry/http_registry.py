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

Generated from the registry's operation table
(:data:`~opsloop.registry.registry_service.REGISTRY_OPERATIONS`), but for ``register`` and
``load``, written here over the operations.

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

import httpx
import pandas as pd

from opsloop.contract.http_client import operation_call, over_http, path_segment, refuse_actor
from opsloop.data.training_reference import build_reference, encode_reference
from opsloop.errors import InvalidArgumentError
from opsloop.registry.flavors import (
    FLAVORS,
    CorruptModelError,
    dump_model,
    infer_flavor,
    load_model_bytes,
)
from opsloop.registry.model_registry import UnknownModelError, _signature
from opsloop.registry.records import ModelVersion
from opsloop.registry.references import ModelReferences
from opsloop.registry.registry_service import REGISTRY_OPERATIONS, RegistryService
from opsloop.registry.training_columns import training_inputs
from opsloop.registry.users import PermissionDenied, UnknownTokenError, UnknownUserError
from opsloop.store.artifacts import TamperedArtifactError, check_sha256
from opsloop.tracking.http_store import ServerConnection
from opsloop.tracking.limits import checked_key, metric_value, tag_text

__all__ = ["HttpModelRegistry", "ServerClient", "path_segment", "refuse_actor"]

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
            base_url,
            token=token,
            transport=transport,
            timeout_s=timeout_s,
            denied=PermissionDenied,
            owner=type(self).__name__,
        )
        self.base_url = self._server.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool, for good: an operation after it is a
        :class:`~opsloop.tracking.http_store.ClosedClientError` naming this client (closing
        again does nothing).

        >>> client = ServerClient("http://127.0.0.1:1")
        >>> client.close(); client._call("GET", "/models")
        Traceback (most recent call last):
        opsloop.tracking.http_store.ClosedClientError: ServerClient('http://127.0.0.1:1') is closed: create a new client to send requests
        """  # noqa: E501
        self._server.close()

    @property
    def closed(self) -> bool:
        """Whether the connection pool is closed.

        >>> client = ServerClient("http://127.0.0.1:1")
        >>> client.closed
        False
        >>> client.close(); client.closed
        True
        """
        return self._server.client.is_closed

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self._server.call(method, path, errors=self.errors, **kwargs)


@over_http(REGISTRY_OPERATIONS)
class HttpModelRegistry(ServerClient, ModelReferences, RegistryService):
    """The registry of the opsloop server at ``base_url``.

    >>> HttpModelRegistry("ftp://example.com")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: tracking server URL must start with http:// or https://...
    >>> HttpModelRegistry("http://127.0.0.1:1").get_version("m", 1, "champion")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: give a version or an alias, not both

    Against a server (``server_url``, one with no users, so it acts as the OS user):

    >>> remote = HttpModelRegistry(server_url)
    >>> remote.register("churn", b"\\x08\\x01", flavor="onnx", metrics={"auc": 0.91}).version
    1
    >>> remote.set_alias("churn", "champion", 1)
    >>> found = remote.get_version("churn", alias="champion")
    >>> found.version, found.metrics, remote.load("churn", alias="champion")
    (1, {'auc': 0.91}, b'\\x08\\x01')
    >>> remote.alias_at("churn", "champion", 0) is None
    True
    >>> remote.get_version("ghost")
    Traceback (most recent call last):
    opsloop.registry.model_registry.UnknownModelError: unknown model 'ghost'
    """

    errors = _ERRORS

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

        ``trust`` and ``trusted_types`` as in :meth:`ModelRegistry.load`. The version is
        read first and its loader record then asked for by number, so an alias that moves
        in between cannot pair one version's bytes with another's record.

        >>> HttpModelRegistry("http://127.0.0.1:1").load("m", 1, "champion")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: give a version or an alias, not both
        """
        if version is not None and alias is not None:
            raise InvalidArgumentError("give a version or an alias, not both")
        found = self.get_version(name, version, alias)
        loader = self.loader_record(name, found.version)
        data = self._download(found)
        return load_model_bytes(
            data,
            found.flavor,
            loader,
            trust=trust,
            trusted_types=trusted_types,
            source=f"models:/{name}/{found.version}",
            registered_by=found.created_by,
        )

    def artifact_bytes(self, name: str, version: int) -> bytes:
        """The bytes of a version's artifact, downloaded and checked here against the
        version's recorded sha256.

        >>> remote = HttpModelRegistry(server_url)
        >>> _ = remote.register("churn", b"\\x08\\x01", flavor="onnx")
        >>> remote.artifact_bytes("churn", 1)
        b'\\x08\\x01'
        """
        return self._download(self.get_version(name, version))

    def _download(self, found: ModelVersion) -> bytes:
        check_sha256(found.artifact_sha256, "artifact_sha256")
        artifact = f"/artifacts/{found.artifact_sha256}"
        data = self._call("GET", artifact).content
        digest = hashlib.sha256(data).hexdigest()
        if digest != found.artifact_sha256:
            raise TamperedArtifactError(
                found.artifact_sha256, digest, f"{self.base_url}/api/v1{artifact}"
            )
        return data

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
        """Register a new version of ``name``: save the model here, upload it, register it.

        Without a model, ``artifact_sha256`` names an artifact already on the server. The
        reference of ``training_data``'s input columns (its profile, schema and bounded
        sample; the ``label_column`` kept as its labels, see
        :mod:`~opsloop.registry.training_columns`) is built here and sent as
        ``training_reference``, which the server checks.

        >>> registry = HttpModelRegistry("http://127.0.0.1:1")
        >>> registry.register("m", abs, metrics={"auc": float("inf")})
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: metric 'auc': value must be a finite number, got inf
        """
        refuse_actor(actor)
        checked_key("model name", name)
        signature = _signature(input_schema, output_type)
        arguments: dict[str, Any] = {
            "name": name,
            "run_id": run_id,
            "input_schema": None if signature is None else signature["inputs"],
            "output_type": output_type,
            "metrics": {
                checked_key("metric", k): metric_value(k, v) for k, v in (metrics or {}).items()
            },
            "tags": {checked_key("tag", k): tag_text(k, v) for k, v in (tags or {}).items()},
            "description": description,
            "reason": reason,
            "training_reference": _sent_reference(
                training_data, training_reference, signature, label_column
            ),
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
        arguments["artifact_sha256"], arguments["flavor"] = artifact_sha256, flavor
        return self._register(**arguments)

    _register = operation_call(REGISTRY_OPERATIONS, "register")


def _sent_reference(
    training_data: Any,
    training_reference: str | None,
    signature: dict | None = None,
    label_column: str | None = None,
) -> str | None:
    """The reference of the training data's input columns as the server takes it (built
    here, so that the rows themselves never travel).

    >>> frame = pd.DataFrame({"x": [0.5, 1.5], "target": [0, 1]})
    >>> sent = _sent_reference(frame, None, {"inputs": {"columns": {"x": {}}}}, "target")
    >>> from opsloop.data.training_reference import decode_reference
    >>> decode_reference(sent, "training_reference").features
    ('x',)
    """
    if label_column is not None and training_data is None:
        raise InvalidArgumentError("label_column: names a column of training_data; give it too")
    if training_data is None:
        return training_reference
    if training_reference is not None:
        raise InvalidArgumentError(
            "training_reference: give the training data or its reference, not both"
        )
    if not isinstance(training_data, pd.DataFrame):
        raise InvalidArgumentError(
            f"training_data: a pandas DataFrame, got {type(training_data).__name__}"
        )
    inputs = None
    if signature is not None and signature.get("inputs") is not None:
        inputs = list(signature["inputs"]["columns"])
    frame, labels = training_inputs(training_data, inputs, label_column)
    try:
        return encode_reference(build_reference(frame, labels=labels))
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"training_data: {str(error).removeprefix('frame: ')}") from None
