"""Deployments through an opsloop server: :class:`~opsloop.serving.Deployments` over REST.

:class:`HttpDeployments` has the same methods and returns the same records and frames.
The connection, the Bearer token (``OPSLOOP_TRACKING_TOKEN`` or ``token=``) and the error
policy are the tracking client's (:class:`~opsloop.tracking.http_store.ServerConnection`):
an unknown deployment comes back as :class:`~opsloop.serving.UnknownDeploymentError`, a
missing model, version or alias as :class:`~opsloop.registry.UnknownModelError`, a broken
rule as a ``ValueError`` naming it, a refused role as
:class:`~opsloop.registry.PermissionDenied`. The acting user is the token's owner.

>>> HttpDeployments("http://127.0.0.1:5005/", token="olp_x")
HttpDeployments('http://127.0.0.1:5005')
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pandas as pd

from opsloop.registry.audit import audit_frame
from opsloop.registry.http_registry import ServerClient, path_segment, refuse_actor
from opsloop.registry.model_registry import UnknownModelError
from opsloop.registry.users import PermissionDenied
from opsloop.serving.deployment_records import (
    Deployment,
    Variant,
    VariantLineage,
    check_definition,
)
from opsloop.serving.deployments import LIST_COLUMNS, UnknownDeploymentError

_ERRORS = {
    "UnknownDeploymentError": UnknownDeploymentError,
    "UnknownModelError": UnknownModelError,
    "PermissionDenied": PermissionDenied,
}


def _definition(variants: Sequence[Variant], strategy: str, automation: str) -> dict:
    """A definition as the server takes it, checked first: a broken one is named before
    anything is sent (the server checks again)."""
    variants = tuple(variants)
    check_definition(strategy, automation, variants)
    return {
        "variants": [variant.to_dict() for variant in variants],
        "strategy": strategy,
        "automation": automation,
    }


class HttpDeployments(ServerClient):
    """The deployments of the opsloop server at ``base_url``.

    >>> HttpDeployments("ftp://example.com")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: tracking server URL must start with http:// or https://...
    """

    errors = _ERRORS

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        return super()._call(method, f"/deployments/{path}", **kwargs)

    def deploy(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        strategy: str = "single",
        automation: str = "full_automation",
        description: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Create the deployment ``name`` or replace its definition; return it as stored.

        >>> HttpDeployments("http://127.0.0.1:1").deploy("api", [], actor="ana")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
        """
        refuse_actor(actor)
        body = {
            **_definition(variants, strategy, automation),
            "description": description,
            "reason": reason,
        }
        return Deployment.from_dict(self._call("PUT", path_segment(name), json=body).json())

    def protect(
        self,
        name: str,
        required_approvals: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Require approvals before deployment ``name`` changes (admin role).

        >>> HttpDeployments.protect.__name__
        'protect'
        """
        refuse_actor(actor)
        body = {"required_approvals": required_approvals, "reason": reason}
        self._call("PUT", f"{path_segment(name)}/protection", json=body)

    def approve(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        strategy: str = "single",
        automation: str = "full_automation",
        actor: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Approve deploying exactly this definition as ``name``; the approvals so far.

        >>> HttpDeployments.approve.__name__
        'approve'
        """
        refuse_actor(actor)
        body = {**_definition(variants, strategy, automation), "comment": comment}
        return self._call("POST", f"{path_segment(name)}/approvals", json=body).json()["approvals"]

    def retire(self, name: str, *, actor: str | None = None, reason: str | None = None) -> None:
        """Remove the deployment ``name`` (its history stays in the audit log).

        >>> HttpDeployments.retire.__name__
        'retire'
        """
        refuse_actor(actor)
        params = {} if reason is None else {"reason": reason}
        self._call("DELETE", path_segment(name), params=params)

    def get(self, name: str) -> Deployment:
        """The deployment as defined now, with the version each variant serves.

        >>> HttpDeployments.get.__name__
        'get'
        """
        return Deployment.from_dict(self._call("GET", path_segment(name)).json())

    def list(self) -> pd.DataFrame:
        """One row per deployment (the local :meth:`~opsloop.serving.Deployments.list`'s).

        >>> HttpDeployments.list.__name__
        'list'
        """
        rows = super()._call("GET", "/deployments").json()["deployments"]
        return pd.DataFrame(rows, columns=list(LIST_COLUMNS))

    def lineage(self, name: str, variant: str | None = None) -> tuple[VariantLineage, ...]:
        """For each variant (or the one named): the lineage of the version it serves now.

        >>> HttpDeployments.lineage.__name__
        'lineage'
        """
        params = {} if variant is None else {"variant": variant}
        found = self._call("GET", f"{path_segment(name)}/lineage", params=params).json()
        return tuple(VariantLineage.from_dict(entry) for entry in found["variants"])

    def at(self, name: str, at_ms: int) -> Deployment | None:
        """The deployment as it was at ``at_ms`` (``None`` if it did not exist then).

        >>> HttpDeployments.at.__name__
        'at'
        """
        found = self._call("GET", path_segment(name), params={"at_ms": int(at_ms)}).json()
        return None if found["deployment"] is None else Deployment.from_dict(found["deployment"])

    def history(self, name: str) -> pd.DataFrame:
        """Every change of the deployment, oldest first.

        >>> HttpDeployments.history.__name__
        'history'
        """
        rows = self._call("GET", f"{path_segment(name)}/history").json()["entries"]
        return audit_frame({**row, "at_ms": row["time"]} for row in rows)
