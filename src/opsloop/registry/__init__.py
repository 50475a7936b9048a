"""The model registry: versions with lineage, moving aliases, approvals and an audit trail.

:class:`ModelRegistry` registers versions (artifact sha256, flavor, signature, source run,
metrics, tags), moves aliases such as ``champion`` (protected aliases need approvals from
distinct approvers), answers lineage and discovery queries, and loads models only after
verifying their hash. :mod:`.audit` keeps the hash-chained log of every change;
:mod:`.users` holds users, roles and API tokens; :mod:`.flavors` saves and loads models.

>>> import tempfile
>>> from opsloop.store import ArtifactStore, Database
>>> registry = ModelRegistry(Database("sqlite://"), ArtifactStore(tempfile.mkdtemp()))
>>> registry.register("scorer", abs).version
1
"""

from opsloop.registry.audit import AuditVerification, verify_audit_log
from opsloop.registry.flavors import FLAVORS
from opsloop.registry.model_registry import ModelRegistry, UnknownModelError
from opsloop.registry.records import Lineage, ModelVersion
from opsloop.registry.users import (
    ROLES,
    PermissionDenied,
    User,
    add_user,
    authenticate,
    get_user,
    list_users,
    new_token,
    revoke_token,
)

__all__ = [
    "FLAVORS",
    "ROLES",
    "AuditVerification",
    "Lineage",
    "ModelRegistry",
    "ModelVersion",
    "PermissionDenied",
    "UnknownModelError",
    "User",
    "add_user",
    "authenticate",
    "get_user",
    "list_users",
    "new_token",
    "revoke_token",
    "verify_audit_log",
]
