"""The model registry: versions with lineage, moving aliases, approvals and an audit trail.

:class:`ModelRegistry` registers versions (artifact sha256, flavor, signature, source run,
metrics, tags), moves aliases such as ``champion`` (protected aliases need approvals from
distinct approvers), answers lineage and discovery queries, and loads models only after
verifying their hash. :mod:`.audit` keeps the hash-chained log of every change;
:mod:`.users` holds users, roles and API tokens; :mod:`.flavors` saves and loads models
(:mod:`.torch_flavor` the PyTorch ones); :func:`register_override` registers a tree model's
edit (:mod:`.model_editing`). :class:`HttpModelRegistry` is the same registry
through an opsloop server, and :func:`open_registry` picks one or the other by
``OPSLOOP_TRACKING_URI``, as the tracking API does.

>>> from opsloop.store import ArtifactStore, Database
>>> registry = ModelRegistry(Database("sqlite://"), ArtifactStore(tmp_path))
>>> registry.register("scorer", abs).version
1
"""

from opsloop.registry.audit import AuditVerification, verify_audit_log
from opsloop.registry.backend import open_registry
from opsloop.registry.flavors import FLAVORS
from opsloop.registry.http_registry import HttpModelRegistry
from opsloop.registry.model_editing import register_override
from opsloop.registry.model_registry import ModelRegistry, UnknownModelError
from opsloop.registry.records import Lineage, ModelVersion
from opsloop.registry.references import (
    ModelReference,
    UnresolvedReferenceError,
    parse_model_reference,
)
from opsloop.registry.torch_flavor import registered_torch_builders, torch_builder
from opsloop.registry.users import (
    ROLES,
    LastAdminError,
    PermissionDenied,
    User,
    add_user,
    authenticate,
    get_user,
    list_tokens,
    list_users,
    new_token,
    revoke_token,
    rotate_token,
    set_user_disabled,
    set_user_role,
    token_id,
)

__all__ = [
    "FLAVORS",
    "ROLES",
    "AuditVerification",
    "HttpModelRegistry",
    "LastAdminError",
    "Lineage",
    "ModelReference",
    "ModelRegistry",
    "ModelVersion",
    "PermissionDenied",
    "UnknownModelError",
    "UnresolvedReferenceError",
    "User",
    "add_user",
    "authenticate",
    "get_user",
    "list_tokens",
    "list_users",
    "new_token",
    "open_registry",
    "parse_model_reference",
    "register_override",
    "registered_torch_builders",
    "revoke_token",
    "rotate_token",
    "set_user_disabled",
    "set_user_role",
    "token_id",
    "torch_builder",
    "verify_audit_log",
]
