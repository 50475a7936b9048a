"""The Open Inference Protocol (KServe V2) over REST, where a model is a deployment.

Endpoints: ``GET /v2`` (server metadata), ``GET /v2/health/live`` and ``/v2/health/ready``
(no authentication, as probes need none), ``GET /v2/models/{name}`` (metadata with the
input signature) and ``/v2/models/{name}/ready``, and ``POST /v2/models/{name}/infer``.
A ``/versions/{version}`` segment names one variant of the deployment, which then answers
instead of the routed one.

A tabular request sends one tensor per input column (``{"name": "age", "shape": [n],
"datatype": "INT64", "data": [...]}``; shape ``[n]`` or ``[n, 1]``), or a single tensor of
shape ``[n, k]`` whose columns are the signature's ``k`` inputs in order. Data may be flat
(row-major) or nested as the shape says. The answer holds the ``predict`` tensor (shape
``[n]``) and, where the model has probabilities, ``predict_proba`` (``[n, classes]``,
FP64); ``parameters`` carries the opsloop request id (for feedback), the variant and the
model version that answered. A routing key comes in the request's ``parameters``
(``routing_key``) or the ``X-Routing-Key`` header. Tensor data may be JSON or use the
binary tensor extension (:mod:`.inference_binary`), in the request and in the answer.
An inference request is answered as a records request is: on the event loop, through the
variant's micro-batcher where the deployment's settings turn batching on
(:mod:`opsloop.serving.micro_batching`), so concurrent V2 and records requests of one
variant share model calls.

Errors follow the protocol: ``{"error": message}``, with opsloop's ``code`` beside it.

>>> rows_of([{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
...          {"name": "y", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["b"]]}],
...         ("x", "y"))
[{'x': 1.0, 'y': 'a'}, {'x': 2.0, 'y': 'b'}]
"""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from opsloop import __version__
from opsloop.data.excerpt import excerpt
from opsloop.errors import InvalidArgumentError, OpsloopError
from opsloop.server.identity import Viewer
from opsloop.server.inference_answers import (
    BINARY_ANSWER,
    InferenceAnswer,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from opsloop.server.inference_binary import binary_answer, with_binary_data

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
probes = APIRouter(prefix="/v2", tags=["open inference protocol"])

#: The protocol's datatypes, each with the Python types its JSON data may hold.
DATATYPES: dict[str, tuple[type, ...]] = {
    "BOOL": (bool,),
    **{f"{kind}{bits}": (int,) for kind in ("INT", "UINT") for bits in (8, 16, 32, 64)},
    **{f"FP{bits}": (int, float) for bits in (16, 32, 64)},
    "BYTES": (str,),
}
#: The values each integer datatype holds, both included.
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
}
#: The largest finite magnitude of each narrower float datatype (IEEE 754 half and single).
FLOAT_LIMITS: dict[str, float] = {
    "FP16": 65504.0,
    "FP32": 3.4028234663852886e38,
    "FP64": sys.float_info.max,
}
# The signature's column types as protocol datatypes.
_SCHEMA_DATATYPES = {
    "bool": "BOOL",
    "int": "INT64",
    "float": "FP64",
    "category": "BYTES",
    "string": "BYTES",
    "datetime": "BYTES",
}


class TensorIn(BaseModel):
    """One input tensor: name, shape, datatype and its data (flat or nested)."""

    name: str = Field(max_length=1000)
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list


class RequestedOutput(BaseModel):
    """An output the client asks for by name."""

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """The protocol's inference request."""

    id: str | None = Field(default=None, max_length=1000)
    parameters: dict[str, Any] | None = None
    inputs: list[TensorIn]
    outputs: list[RequestedOutput] | None = None


def _protocol_error(error: OpsloopError) -> JSONResponse:
    return JSONResponse(
        {"error": str(error), "code": error.code, "detail": str(error)}, status_code=error.status
    )


def _flat(data: list, where: str) -> list:
    flat: list = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    if len(flat) > 10_000_000:
        raise InvalidArgumentError(f"{where}.data: too many values ({len(flat)})")
    return flat


def _checked_tensor(tensor: dict | TensorIn, position: int) -> tuple[str, list[int], list]:
    if isinstance(tensor, TensorIn):
        tensor = tensor.model_dump()
    where = f"inputs[{position}] ({tensor['name']!r})"
    datatype, shape = tensor["datatype"], tensor["shape"]
    if datatype not in DATATYPES:
        raise InvalidArgumentError(
            f"{where}.datatype: must be one of {', '.join(DATATYPES)}, got {datatype!r}"
        )
    if not shape or any(size < 0 for size in shape):
        raise InvalidArgumentError(f"{where}.shape: must be non-negative sizes, got {shape}")
    values = _flat(tensor["data"], where)
    if math.prod(shape) != len(values):
        raise InvalidArgumentError(
            f"{where}.data: shape {shape} holds {math.prod(shape)} values, got {len(values)}"
        )
    allowed = DATATYPES[datatype]
    for index, value in enumerate(values):
        # bool is an int in Python; only BOOL takes it.
        if not isinstance(value, allowed) or (isinstance(value, bool) and datatype != "BOOL"):
            raise InvalidArgumentError(
                f"{where}.data[{index}]: {datatype} data must be "
                f"{' or '.join(t.__name__ for t in allowed)}, got {value!r}"
            )
    _check_range(datatype, values, where)
    if datatype.startswith("FP"):
        values = [float(value) for value in values]
    return datatype, shape, values


def _check_range(datatype: str, values: list, where: str) -> None:
    """Refuse a value its datatype cannot hold (``UINT8`` 1000, ``FP32`` 1e39), naming it.

    >>> _check_range("UINT8", [3, 1000], "inputs[0] ('x')")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: inputs[0] ('x').data[1]: UINT8 data must be in [0, 255], got 1000
    >>> _check_range("FP16", [1.0, -7e4], "inputs[0] ('x')")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: inputs[0] ('x').data[1]: FP16 data must be finite values within ±65504.0 (or non-finite), got -70000.0
    >>> _check_range("INT8", [-128, 127], "inputs[0] ('x')")
    """  # noqa: E501 - a doctest's expected output is one line
    if not values:
        return
    if datatype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[datatype]
        if low <= min(values) and max(values) <= high:  # one pass in C when all fit
            return
        index = next(i for i, v in enumerate(values) if not low <= v <= high)
        raise InvalidArgumentError(
            f"{where}.data[{index}]: {datatype} data must be in [{low}, {high}], "
            f"got {excerpt(values[index])}"
        )
    limit = FLOAT_LIMITS.get(datatype)
    if limit is None:
        return
    for index, value in enumerate(values):
        # A non-finite value is the signature's to allow or refuse (allow_non_finite); an
        # integer is compared as it is (a float() of a huge one would overflow).
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if abs(value) > limit:
            raise InvalidArgumentError(
                f"{where}.data[{index}]: {datatype} data must be finite values within "
                f"±{limit} (or non-finite), got {excerpt(value)}"
            )


def rows_of(inputs: list, columns: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The records that the input tensors hold (see the module docstring); ``columns``
    are the signature's input names in order (``None`` without a signature).

    >>> rows_of([{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}],
    ...         ("a", "b"))
    [{'a': 1.0, 'b': 2.0}]
    >>> rows_of([{"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0]}], ("x",))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: inputs[0] ('x').data: shape [2] holds 2 values, got 1
    """
    if not inputs:
        raise InvalidArgumentError("inputs: at least one input tensor is needed")
    tensors = [_checked_tensor(tensor, i) for i, tensor in enumerate(inputs)]
    names = [t.name if isinstance(t, TensorIn) else t["name"] for t in inputs]
    if len(tensors) == 1 and names[0] not in (columns or ()) and len(tensors[0][1]) == 2:
        _, (n, k), values = tensors[0]
        if columns is None or k != len(columns):
            expected = "the signature's inputs" if columns is not None else "a signature"
            raise InvalidArgumentError(
                f"inputs[0] ({names[0]!r}).shape: a [rows, columns] tensor needs {expected} "
                f"to name its columns; got {k} columns for {len(columns or ())} inputs"
            )
        return [
            dict(zip(columns, values[row * k : (row + 1) * k], strict=True)) for row in range(n)
        ]
    rows = None
    columns_of: dict[str, list] = {}
    for position, (name, (_, shape, values)) in enumerate(zip(names, tensors, strict=True)):
        where = f"inputs[{position}] ({name!r})"
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InvalidArgumentError(
                f"{where}.shape: a column tensor has shape [rows] or [rows, 1], got {shape}"
            )
        if rows is None:
            rows = shape[0]
        elif shape[0] != rows:
            raise InvalidArgumentError(
                f"{where}.shape: every input needs the same number of rows, {rows}, got {shape[0]}"
            )
        if name in columns_of:
            raise InvalidArgumentError(f"{where}.name: input {name!r} is given twice")
        columns_of[name] = values
    assert rows is not None  # set by the first of the inputs, which are never empty here
    return [{name: values[row] for name, values in columns_of.items()} for row in range(rows)]


def _datatype_of(values: list) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def _outputs(answer, requested: list[RequestedOutput] | None) -> list[dict[str, Any]]:
    predictions = answer.predictions
    outputs = {
        "predict": {
            "name": "predict",
            "shape": [len(predictions)],
            "datatype": _datatype_of(predictions),
            "data": predictions
            if _datatype_of(predictions) != "BYTES"
            else [str(v) for v in predictions],
        }
    }
    if answer.answer.probabilities is not None:
        probabilities = answer.answer.probabilities
        width = len(probabilities[0]) if probabilities else 0
        outputs["predict_proba"] = {
            "name": "predict_proba",
            "shape": [len(probabilities), width],
            "datatype": "FP64",
            "data": [p for row in probabilities for p in row],
            "parameters": {"classes": [str(c) for c in answer.answer.classes or []]},
        }
    if not requested:
        return list(outputs.values())
    chosen = []
    for position, output in enumerate(requested):
        if output.name not in outputs:
            raise InvalidArgumentError(
                f"outputs[{position}].name: this model answers {', '.join(outputs)}, "
                f"got {output.name!r}"
            )
        chosen.append(outputs[output.name])
    return chosen


@probes.get("/health/live", response_model=ServerLive)
def live() -> dict:
    """The server process answers."""
    return {"live": True}


@probes.get(
    "/health/ready",
    responses={200: {"model": ServerReady}, 503: {"description": "some deployment is not ready"}},
)
def ready(request: Request) -> JSONResponse:
    """Every deployment this data plane names can answer (200), or not (503)."""
    is_ready = request.app.state.runtime.ready()
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


@router.get("", response_model=ServerMetadata)
def server_metadata(user: Viewer) -> dict:
    """The server's name, version and protocol extensions."""
    return {"name": "opsloop", "version": __version__, "extensions": []}


def _prediction_datatype(variant) -> str:
    """What the variant's predictions are: its classes' type, numbers for a regressor."""
    if variant.flavor not in ("sklearn", "onnx", "pytorch"):
        return "BYTES"  # a callable may answer anything
    classes = getattr(variant.model, "classes_", None)
    return "FP64" if classes is None else _datatype_of(list(classes.tolist()))


def _model_metadata(request: Request, name: str, version: str | None) -> JSONResponse:
    runtime = request.app.state.runtime
    try:
        served = runtime.served(name)
        schema = runtime.input_schema(name, version)
        loaded = served.variant(version) if version else None
    except OpsloopError as error:
        return _protocol_error(error)
    inputs = (
        []
        if schema is None
        else [
            {"name": c.name, "datatype": _SCHEMA_DATATYPES[c.type], "shape": [-1]}
            for c in schema.columns
            if "serving" not in c.absent_in
        ]
    )
    primary = loaded or next(
        served.loaded[v.name] for v in served.definition.variants if v.role == "primary"
    )
    outputs = [{"name": "predict", "datatype": _prediction_datatype(primary), "shape": [-1]}]
    if primary.has_probabilities:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
    return JSONResponse(
        {
            "name": name,
            "versions": [v.name for v in served.definition.variants],
            "platform": "opsloop",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {"strategy": served.definition.strategy, "model": primary.ref},
        }
    )


@router.get("/models/{name}", responses={200: {"model": ModelMetadata}})
def model_metadata(name: str, request: Request, user: Viewer) -> JSONResponse:
    """The deployment's variants (as versions), its input signature and its outputs."""
    return _model_metadata(request, name, None)


@router.get("/models/{name}/versions/{version}", responses={200: {"model": ModelMetadata}})
def version_metadata(name: str, version: str, request: Request, user: Viewer) -> JSONResponse:
    """One variant's input signature and outputs."""
    return _model_metadata(request, name, version)


def _model_ready(request: Request, name: str, version: str | None) -> JSONResponse:
    runtime = request.app.state.runtime
    try:
        served = runtime.served(name)
        is_ready = served.ready if version is None else served.answers(version)
        if version is not None and not is_ready:
            served.variant(version)  # 404 for a variant the deployment does not have
    except OpsloopError as error:
        if error.status == 503:
            return JSONResponse({"name": name, "ready": False}, status_code=503)
        return _protocol_error(error)
    return JSONResponse({"name": name, "ready": is_ready}, status_code=200 if is_ready else 503)


@router.get("/models/{name}/ready", responses={200: {"model": ModelReady}})
def model_ready(name: str, request: Request, user: Viewer) -> JSONResponse:
    """200 when the deployment can answer, 503 when a live variant is not loaded."""
    return _model_ready(request, name, None)


@router.get("/models/{name}/versions/{version}/ready", responses={200: {"model": ModelReady}})
def version_ready(name: str, version: str, request: Request, user: Viewer) -> JSONResponse:
    """200 when the variant is loaded."""
    return _model_ready(request, name, version)


async def _infer(
    request: Request,
    name: str,
    version: str | None,
    body: InferenceRequest,
    routing_header: str | None,
) -> Response:
    runtime = request.app.state.runtime
    revision = getattr(request.state, "audit_revision", None)
    parameters = body.parameters or {}
    key = routing_header if routing_header is not None else parameters.get("routing_key")
    try:
        schema = runtime.input_schema(name, version, revision)
        columns = None
        if schema is not None:
            columns = tuple(c.name for c in schema.columns if "serving" not in c.absent_in)
        records = rows_of(body.inputs, columns)
        # As the records endpoint: through the variant's micro-batcher where the
        # deployment's settings turn batching on (see :mod:`.prediction_routes`).
        answer = await runtime.predict_async(
            name,
            records,
            routing_key=key,
            variant=version,
            revision=revision,
            arrival=getattr(request.state, "arrival", None),
        )
        # A request queued for review has no model answer to give (see serving.automation).
        outputs = [] if answer.answer is None else _outputs(answer, body.outputs)
    except OpsloopError as error:
        return _protocol_error(error)
    document = {
        "model_name": name,
        "model_version": answer.variant,
        "outputs": outputs,
        "parameters": {
            "request_id": answer.request_id,
            "variant": answer.variant,
            "model": f"{answer.model}/{answer.version}",
            "status": answer.status,
        },
    }
    if answer.review_item is not None:
        document["parameters"]["review_item"] = answer.review_item
    if body.id is not None:
        document["id"] = body.id
    binary = _binary_outputs(body, [output["name"] for output in outputs])
    if not binary:
        return JSONResponse(document)
    content, header_length = binary_answer(document, binary)
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


def _binary_outputs(body: InferenceRequest, names: list[str]) -> set[str]:
    """The outputs to answer as binary data: all when the request's ``binary_data_output``
    is true, each requested output's own ``binary_data`` deciding for it."""
    every = (body.parameters or {}).get("binary_data_output") is True
    if not body.outputs:
        return set(names) if every else set()
    return {
        output.name
        for output in body.outputs
        if (output.parameters or {}).get("binary_data", every) is True
    }


async def _parsed(request: Request) -> InferenceRequest:
    """The request body as the protocol's request: V2 clients send JSON without always
    saying so (tritonclient sends no Content-Type), so the body is read as JSON here, with
    binary tensor data after it when the extension's header says so."""
    raw = await request.body()
    header = request.headers.get("inference-header-content-length")
    if header is not None:
        if not header.strip().isdigit():
            raise InvalidArgumentError(
                f"Inference-Header-Content-Length: must be a number of bytes, got {header!r}"
            )
        document = with_binary_data(raw, int(header))
    else:
        try:
            document = json.loads(raw)
        except ValueError as error:
            raise InvalidArgumentError(f"body: not valid JSON ({error})") from None
    try:
        return InferenceRequest.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors()[:10]
        )
        raise InvalidArgumentError(f"body: {problems}") from None


async def _answer(
    request: Request, name: str, version: str | None, routing_header: str | None
) -> Response:
    try:
        body = await _parsed(request)
    except OpsloopError as error:
        return _protocol_error(error)
    # On the event loop, as the records endpoint (see :mod:`.prediction_routes`).
    return await _infer(request, name, version, body, routing_header)


_INFER_ANSWER: dict[int | str, dict] = {200: {"model": InferenceAnswer, "content": BINARY_ANSWER}}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}}


@router.post("/models/{name}/infer", openapi_extra=_BODY, responses=_INFER_ANSWER)
async def infer(
    name: str,
    request: Request,
    user: Viewer,
    x_routing_key: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """Answer the input tensors (an inference request) with the deployment's routed variant."""
    return await _answer(request, name, None, x_routing_key)


@router.post(
    "/models/{name}/versions/{version}/infer", openapi_extra=_BODY, responses=_INFER_ANSWER
)
async def infer_version(
    name: str,
    version: str,
    request: Request,
    user: Viewer,
    x_routing_key: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """Answer the input tensors (an inference request) with the variant ``version``."""
    return await _answer(request, name, version, x_routing_key)
