"""Which registry to use: the local store or an opsloop server, by ``OPSLOOP_TRACKING_URI``.

The rule is the tracking API's (:func:`opsloop.tracking.api.tracking_backend`): unset, the
local store (``OPSLOOP_STORE_URI`` or SQLite under ``OPSLOOP_HOME``, artifacts under
``OPSLOOP_ARTIFACT_URI``); an ``http(s)://`` URL, that server's registry with the token in
``OPSLOOP_TRACKING_TOKEN``; anything else, a database URI. Both answers have the same
methods, so code and the ``opsloop models`` commands run unchanged against either.

With ``OPSLOOP_TRACKING_URI`` unset, every call opens the one local store:

>>> _ = open_registry().register("churn", b"onnx bytes", flavor="onnx")
>>> open_registry().list_models()["name"].tolist()
['churn']

A URL opens that server's registry (here a server on ``registry``'s store), a database URI
that database:

>>> _ = registry.register("fraud", b"onnx bytes", flavor="onnx")
>>> open_registry(server_url).list_models()["name"].tolist()
['fraud']
>>> open_registry(f"sqlite:///{tmp_path}/team.db").list_models()["name"].tolist()
[]
"""

from __future__ import annotations

from opsloop.registry.http_registry import HttpModelRegistry, refuse_actor
from opsloop.registry.http_users import HttpUsers
from opsloop.registry.local_users import LocalUsers
from opsloop.registry.model_registry import ModelRegistry
from opsloop.tracking.api import is_server, tracking_target


def open_registry(
    uri: str | None = None, *, token: str | None = None, actor: str | None = None
) -> ModelRegistry | HttpModelRegistry:
    """The registry at ``uri`` (default ``$OPSLOOP_TRACKING_URI``; unset: the local store).

    ``token`` (default ``$OPSLOOP_TRACKING_TOKEN``) authenticates to a server; ``actor``
    names the acting user of a local store (default: the OS user) and is refused for a
    server, where the token decides who acts.

    >>> open_registry("https://ops.example.com", actor="ana")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
    """
    target = tracking_target(uri)
    if is_server(target):
        refuse_actor(actor)
        # The client's methods are generated from the contract (``over_http``).
        return HttpModelRegistry(target, token=token)  # type: ignore[abstract]
    from opsloop.store import ArtifactStore, open_database
    from opsloop.store.location import artifact_uri

    return ModelRegistry(open_database(target or None), ArtifactStore(artifact_uri()), actor)


def open_users(
    uri: str | None = None, *, token: str | None = None, actor: str | None = None
) -> LocalUsers | HttpUsers:
    """The users at ``uri``, by the same rule as :func:`open_registry`: a server's (its
    token's owner acts and must be an admin) or a store's (``actor``, when named, must be
    an admin of it; unnamed, whoever opens the store acts).

    >>> open_users("https://ops.example.com")
    HttpUsers('https://ops.example.com')
    >>> open_users("https://ops.example.com", actor="ana")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
    """
    target = tracking_target(uri)
    if is_server(target):
        refuse_actor(actor)
        return HttpUsers(target, token=token)  # type: ignore[abstract]
    from opsloop.store import open_database

    return LocalUsers(open_database(target or None), actor=actor)
