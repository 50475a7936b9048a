"""REST routes for content-addressed artifacts: upload under a sha256, download verified.

An upload names the sha256 its bytes must have; bytes that hash to something else are
refused with both hashes (a 422), so a truncated or altered upload is never stored. A
download re-hashes the stored bytes and answers 409 with both hashes if they changed on
disk. ``POST /runs/{run_id}/artifacts?path=...`` stores a file and records it in the run.

These routes are written by hand, not generated from the tracking table: their bodies are
bytes, streamed, and the client checks what it downloads against the hash
(:meth:`~opsloop.tracking.HttpTrackingStore.read_artifact` and ``log_artifact`` are the
table's composed methods). Their paths are the service's
(:data:`~opsloop.tracking.tracking_service.ARTIFACT_PATH`,
:data:`~opsloop.tracking.tracking_service.RUN_ARTIFACTS_PATH`), and each declares its
answer for the OpenAPI document.

An upload is streamed: each piece is hashed and written to a temporary file as it arrives,
in a worker thread, so neither the whole body nor its hashing ever sits on the event loop
(``/health`` answers during a large upload). Its size is bounded by
:mod:`opsloop.server.limits`.

>>> sorted(route.path for route in router.routes)
['/api/v1/artifacts/{sha256}', '/api/v1/artifacts/{sha256}', '/api/v1/runs/{run_id}/artifacts']
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from opsloop.contract.wire_types import NO_NUL_PATTERN
from opsloop.server.identity import Editor, Viewer
from opsloop.server.response_models import ArtifactStored
from opsloop.store.artifacts import check_sha256
from opsloop.tracking.local_store import check_artifact_path
from opsloop.tracking.tracking_service import ARTIFACT_PATH, RUN_ARTIFACTS_PATH
from opsloop.tracking.wire_documents import SHA256_PATTERN, ArtifactDocument

router = APIRouter(prefix="/api/v1")
_OCTETS = "application/octet-stream"
_BYTES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The stored bytes; the header X-Opsloop-Sha256 repeats their hash",
        "content": {_OCTETS: {"schema": {"type": "string", "format": "binary"}}},
    }
}
# Pieces are gathered to this size before a thread writes them: fewer hand-offs, and
# hashlib releases the GIL on large buffers.
_PIECE = 1 << 20
# The hash is checked by the store, which names the rule; the document states it too.
Sha256Path = Annotated[str, Path(json_schema_extra={"pattern": SHA256_PATTERN})]
RunIdPath = Annotated[str, Path(max_length=250, json_schema_extra={"pattern": NO_NUL_PATTERN})]


async def _receive(request: Request, expected: str | None = None) -> tuple[str, int]:
    """Stream the body into the artifact store; return its sha256 and size."""
    receiver = await run_in_threadpool(request.app.state.tracking.artifacts.receive)
    try:
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= _PIECE:
                piece, pending = pending, bytearray()
                await run_in_threadpool(receiver.write, piece)
        if pending:
            await run_in_threadpool(receiver.write, pending)
        digest = await run_in_threadpool(receiver.commit, expected)
    finally:
        await run_in_threadpool(receiver.discard)
    return digest, receiver.size


@router.put(ARTIFACT_PATH, status_code=201, response_model=ArtifactStored)
async def upload_artifact(sha256: Sha256Path, request: Request, _: Editor) -> dict:
    """Store the request body under ``sha256`` after checking that it hashes to it."""
    try:
        check_sha256(sha256)
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    digest, size = await _receive(request, expected=sha256)
    return {"sha256": digest, "size": size}


@router.get(ARTIFACT_PATH, response_class=Response, responses=_BYTES)
def download_artifact(sha256: Sha256Path, request: Request, _: Viewer) -> Response:
    """The stored bytes, verified against their sha256 before they are sent."""
    data = request.app.state.tracking.artifacts.get_bytes(sha256)
    return Response(data, media_type=_OCTETS, headers={"X-Opsloop-Sha256": sha256})


@router.post(RUN_ARTIFACTS_PATH, status_code=201, response_model=ArtifactDocument)
async def log_artifact(
    run_id: RunIdPath,
    request: Request,
    _: Editor,
    path: Annotated[
        str, Query(min_length=1, max_length=1000, json_schema_extra={"pattern": NO_NUL_PATTERN})
    ],
) -> dict:
    """Store the body content-addressed and record it in the run under ``path``."""
    check_artifact_path(path)
    digest, _size = await _receive(request)
    store = request.app.state.tracking
    record = await run_in_threadpool(store.record_artifact, run_id, path, digest)
    return record.to_dict()
