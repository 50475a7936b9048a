"""The bodies of the simple success answers, declared so the OpenAPI document describes them.

The services on the contract declare their answers in their operation tables
(:mod:`opsloop.contract`); these are the small answers of the routes still written by hand.

>>> RunCreated(run_id="4f2a").model_dump()
{'run_id': '4f2a'}
>>> RunCreated(run_id=7)
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for RunCreated
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


class ExperimentCreated(_Answer):
    """``POST /experiments``: the experiment's id (the existing one if the name is taken)."""

    experiment_id: int


class RunCreated(_Answer):
    """``POST /runs``: the new run's id."""

    run_id: str


class ArtifactStored(_Answer):
    """``PUT /artifacts/{sha256}``: the verified sha256 and the size in bytes."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
