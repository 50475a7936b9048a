"""The Open Inference Protocol's binary tensor extension, read and written.

A request with an ``Inference-Header-Content-Length: N`` header carries its JSON in the
first ``N`` bytes of the body; each input whose ``parameters`` hold ``binary_data_size``
has no ``data`` and its bytes follow, in input order: numbers little-endian in the
datatype's width, ``BOOL`` one byte each, ``BYTES`` each element as a 4-byte little-endian
length and its bytes. An answer is written the same way when the request asks for it
(``parameters.binary_data_output`` true, or an output's ``parameters.binary_data`` true).
This is what V2 clients such as ``tritonclient`` send and expect by default.

>>> import numpy as np
>>> header = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32",'
>>> header += b' "parameters": {"binary_data_size": 8}}]}'
>>> body = header + np.array([1.5, 2.0], dtype="<f4").tobytes()
>>> with_binary_data(body, len(header))["inputs"][0]["data"]
[1.5, 2.0]
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from opsloop.errors import InvalidArgumentError

#: Each fixed-width datatype's little-endian numpy type.
NUMPY_TYPES = {
    "BOOL": "|b1",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def _strings(data: bytes, where: str) -> list[str]:
    values, position = [], 0
    while position < len(data):
        if position + 4 > len(data):
            raise InvalidArgumentError(f"{where}: a BYTES element's length is cut short")
        (size,) = struct.unpack_from("<I", data, position)
        position += 4
        if position + size > len(data):
            raise InvalidArgumentError(f"{where}: a BYTES element runs past its data")
        try:
            values.append(data[position : position + size].decode())
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{where}: BYTES data must be UTF-8 text") from None
        position += size
    return values


def with_binary_data(body: bytes, header_length: int) -> dict[str, Any]:
    """The request's JSON with each binary input's values put in its ``data``.

    >>> with_binary_data(b'{"inputs": []}', 99)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: Inference-Header-Content-Length: 99 is past the body's 14 bytes
    """  # noqa: E501
    if not 0 < header_length <= len(body):
        raise InvalidArgumentError(
            f"Inference-Header-Content-Length: {header_length} is past the body's {len(body)} bytes"
        )
    try:
        document = json.loads(body[:header_length])
    except ValueError as error:
        raise InvalidArgumentError(f"body: the JSON header is not valid JSON ({error})") from None
    inputs = document.get("inputs") if isinstance(document, dict) else None
    position = header_length
    for index, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        where = f"inputs[{index}]"
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgumentError(f"{where}.parameters.binary_data_size: must be bytes >= 0")
        chunk = body[position : position + size]
        if len(chunk) != size:
            raise InvalidArgumentError(f"{where}: the body holds fewer than {size} binary bytes")
        position += size
        datatype = tensor.get("datatype")
        if datatype == "BYTES":
            tensor["data"] = _strings(chunk, where)
        elif datatype in NUMPY_TYPES:
            width = np.dtype(NUMPY_TYPES[datatype]).itemsize
            if size % width:
                raise InvalidArgumentError(
                    f"{where}: {size} bytes are not whole {datatype} values of {width} bytes"
                )
            tensor["data"] = np.frombuffer(chunk, dtype=NUMPY_TYPES[datatype]).tolist()
        else:
            raise InvalidArgumentError(f"{where}.datatype: unknown datatype {datatype!r}")
    return document


def _encoded(output: dict[str, Any]) -> bytes:
    if output["datatype"] == "BYTES":
        return b"".join(
            struct.pack("<I", len(text)) + text
            for text in (str(value).encode() for value in output["data"])
        )
    return np.asarray(output["data"], dtype=NUMPY_TYPES[output["datatype"]]).tobytes()


def binary_answer(document: dict[str, Any], binary: set[str]) -> tuple[bytes, int]:
    """The answer's body with the outputs named in ``binary`` as bytes after the JSON, and
    the JSON's length (the ``Inference-Header-Content-Length`` to send).

    >>> body, length = binary_answer(
    ...     {"outputs": [{"name": "p", "shape": [2], "datatype": "INT64", "data": [1, 0]}]},
    ...     {"p"})
    >>> json.loads(body[:length])["outputs"][0]["parameters"], body[length:][:8]
    ({'binary_data_size': 16}, b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
    """
    blobs = []
    outputs = []
    for output in document["outputs"]:
        if output["name"] in binary:
            blob = _encoded(output)
            output = {key: value for key, value in output.items() if key != "data"}
            output["parameters"] = {**output.get("parameters", {}), "binary_data_size": len(blob)}
            blobs.append(blob)
        outputs.append(output)
    header = json.dumps({**document, "outputs": outputs}).encode()
    return header + b"".join(blobs), len(header)
