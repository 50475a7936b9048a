"""A protected deployment's pending approvals that no longer count, of either kind.

A deployment has two kinds of pending approvals: of a new **definition**
(:meth:`~opsloop.serving.Deployments.approve`, counted by the deploy that applies it) and of
lowering its **protection** (:meth:`~opsloop.serving.Deployments.approve_protection`,
counted by the admin's ``protect``). Either stops counting once its approver is disabled or
demoted (:mod:`opsloop.registry.approver_standing`). :class:`LapsedApprovals` names both,
apart, so the deployment page can say which approvals a change still waits for.

On the wire (``GET /api/v1/deployments/NAME/approvals/lapsed``) ``lapsed`` keeps its first
meaning, the definition approvals by approver, and ``protection`` lists the protection
approvals; a document without ``protection`` (from a server older than it) reads as none.

>>> LapsedApprovals.from_dict({"lapsed": {"bo": "user bo is disabled"}})
LapsedApprovals(definitions={'bo': 'user bo is disabled'}, protection=())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from opsloop.registry.approver_standing import lapsed_approvers
from opsloop.registry.protection_approvals import (
    LapsedProtectionApproval,
    lapsed_protection_approvals,
)
from opsloop.serving.deployment_approvals import required_approvals, required_gate
from opsloop.store import tables


@dataclass(frozen=True)
class LapsedApprovals:
    """The pending approvals of a deployment that no longer count: ``definitions`` maps
    the approvers of pending definition approvals to why; ``protection`` holds the pending
    approvals of lowering its protection, each with why and the protection it approves.

    >>> LapsedApprovals().to_dict()
    {'lapsed': {}, 'protection': []}
    """

    definitions: dict[str, str] = field(default_factory=dict)
    protection: tuple[LapsedProtectionApproval, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.definitions or self.protection)

    def to_dict(self) -> dict[str, Any]:
        """The wire document (``lapsed``: the definition approvals, as before protection
        approvals were listed too).

        >>> one = LapsedProtectionApproval("cy", "user cy is disabled", 0, False, 7, None)
        >>> LapsedApprovals({"bo": "gone"}, (one,)).to_dict()["protection"][0]["approver"]
        'cy'
        """
        return {
            "lapsed": dict(self.definitions),
            "protection": [approval.to_dict() for approval in self.protection],
        }

    @classmethod
    def from_dict(cls, document: dict) -> LapsedApprovals:
        """The record from :meth:`to_dict`'s document; ``protection`` may be absent.

        >>> one = LapsedApprovals({"bo": "gone"})
        >>> LapsedApprovals.from_dict(one.to_dict()) == one
        True
        """
        return cls(
            dict(document["lapsed"]),
            tuple(LapsedProtectionApproval.from_dict(a) for a in document.get("protection", ())),
        )


class LapsedProtectionApprovalDocument(BaseModel):
    """A pending approval of lowering the deployment's protection that no longer counts."""

    model_config = ConfigDict(title="LapsedProtectionApproval")

    approver: str
    why: str = Field(description="why it no longer counts (disabled, demoted, gone)")
    required_approvals: int | None = Field(
        description="the approvals it approves lowering to (null: not in the log)"
    )
    require_gate: bool | str | None = Field(
        description="the release gate it approves lowering to (false: none; null: not in the log)"
    )
    created_ms: int
    comment: str | None


class LapsedApprovalsDocument(BaseModel):
    """The deployment's pending approvals that no longer count."""

    model_config = ConfigDict(title="LapsedApprovals")

    lapsed: dict[str, str] = Field(
        description="pending definition approvals: each approver, with why it no longer counts"
    )
    protection: list[LapsedProtectionApprovalDocument] = Field(
        default_factory=list,
        description="pending approvals of lowering the protection that no longer count",
    )


def read_lapsed_approvals(connection: Connection, name: str) -> LapsedApprovals:
    """The pending approvals of deployment ``name`` (definitions and protection) whose
    approvers can no longer approve, read in ``connection``.

    >>> from opsloop.store import Database
    >>> with Database("sqlite://").read() as c:
    ...     bool(read_lapsed_approvals(c, "api"))
    False
    """
    approvals = tables.deployment_approvals
    approvers = connection.execute(
        sa.select(approvals.c.approver)
        .distinct()
        .where(approvals.c.deployment == name, approvals.c.consumed.is_(False))
    ).scalars()
    current = (required_approvals(connection, name), required_gate(connection, name))
    return LapsedApprovals(
        dict(sorted(lapsed_approvers(connection, list(approvers)).items())),
        lapsed_protection_approvals(connection, f"deployment:{name}", current),
    )


__all__ = [
    "LapsedApprovals",
    "LapsedApprovalsDocument",
    "LapsedProtectionApprovalDocument",
    "read_lapsed_approvals",
]
