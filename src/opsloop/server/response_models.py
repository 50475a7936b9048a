"""The bodies of the simple success answers, declared so the OpenAPI document describes them.

The services on the contract declare their answers in their operation tables
(:mod:`opsloop.contract`); these are the small answers of the routes still written by hand.

>>> Health(status="ok", version="1.0", database="sqlite").model_dump()["database"]
'sqlite'
>>> ArtifactStored(sha256="not a hash", size=1)
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for ArtifactStored
...
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Health(_Answer):
    """``GET /health``: liveness, the server's version and its store's dialect."""

    status: str = Field(description="'ok' while the server answers")
    version: str
    database: str = Field(description="the store's SQL dialect, such as 'sqlite'")


class Caller(_Answer):
    """``GET /whoami``: the user a request's API token belongs to, with their role."""

    name: str
    role: str = Field(description="viewer, editor, approver or admin")


class ArtifactStored(_Answer):
    """``PUT /artifacts/{sha256}``: the verified sha256 and the size in bytes."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
