"""The bodies of the simple success answers, declared so the OpenAPI document describes them.

The records that carry a run, a version, a lineage or a deployment are still plain
dictionaries (their models belong with the service contract); these are the small answers
whose shape is fixed here.

>>> Health(status="ok", version="1.0", database="sqlite").model_dump()["database"]
'sqlite'
>>> ApprovalCount(approvals=True)
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for ApprovalCount
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


class ArtifactStored(_Answer):
    """``PUT /artifacts/{sha256}``: the verified sha256 and the size in bytes."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class ApprovalCount(_Answer):
    """How many distinct approvals the change has so far."""

    approvals: int = Field(ge=0)
