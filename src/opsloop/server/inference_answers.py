"""The answers of the Open Inference Protocol (KServe V2) endpoints, declared so the data
plane's OpenAPI document describes them. The routes write their own JSON (a binary infer
answer is not JSON at all), so these models document; they do not validate.

>>> ModelReady(name="credit-api", ready=True).model_dump()
{'name': 'credit-api', 'ready': True}
>>> TensorMetadata(name="age", datatype="INT64", shape=[-1]).shape
[-1]
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class ServerLive(_Answer):
    """``GET /v2/health/live``."""

    live: bool


class ServerReady(_Answer):
    """``GET /v2/health/ready``: whether every deployment this data plane names can answer."""

    ready: bool


class ServerMetadata(_Answer):
    """``GET /v2``: the server's name, version and protocol extensions."""

    name: str
    version: str
    extensions: list[str]


class ModelReady(_Answer):
    """``GET /v2/models/{name}[/versions/{v}]/ready``."""

    name: str
    ready: bool


class TensorMetadata(_Answer):
    """One input or output tensor: its name, V2 datatype and shape (-1: any length)."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(_Answer):
    """``GET /v2/models/{name}[/versions/{v}]``: the deployment's variants as versions, its
    input signature and its outputs."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] = Field(default_factory=dict)


class OutputTensor(_Answer):
    """One output tensor of an inference answer."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferenceAnswer(_Answer):
    """``POST /v2/models/{name}[/versions/{v}]/infer`` as JSON; with the binary tensor
    extension the answer is ``application/octet-stream`` instead."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[OutputTensor]


#: How a binary infer answer is documented beside the JSON one.
BINARY_ANSWER = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
