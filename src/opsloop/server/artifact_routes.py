"""REST routes for content-addressed artifacts: upload under a sha256, download verified.

An upload names the sha256 its bytes must have; bytes that hash to something else are
refused with both hashes (a 422), so a truncated or altered upload is never stored. A
download re-hashes the stored bytes and answers 409 with both hashes if they changed on
disk. ``POST /runs/{run_id}/artifacts?path=...`` stores a file and records it in the run.

>>> sorted(route.path for route in router.routes)
['/api/v1/artifacts/{sha256}', '/api/v1/artifacts/{sha256}', '/api/v1/runs/{run_id}/artifacts']
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from opsloop.server.identity import Editor, Viewer
from opsloop.store.artifacts import check_sha256

router = APIRouter(prefix="/api/v1")
_OCTETS = "application/octet-stream"


@router.put("/artifacts/{sha256}", status_code=201)
async def upload_artifact(sha256: str, request: Request, _: Editor) -> dict:
    """Store the request body under ``sha256`` after checking that it hashes to it."""
    try:
        check_sha256(sha256)
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    data = await request.body()
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise HTTPException(422, f"artifact body: expected sha256 {sha256}, found sha256 {found}")
    artifacts = request.app.state.tracking.artifacts
    await run_in_threadpool(artifacts.put_bytes, data)
    return {"sha256": sha256, "size": len(data)}


@router.get("/artifacts/{sha256}")
def download_artifact(sha256: str, request: Request, _: Viewer) -> Response:
    """The stored bytes, verified against their sha256 before they are sent."""
    data = request.app.state.tracking.artifacts.get_bytes(sha256)
    return Response(data, media_type=_OCTETS, headers={"X-Opsloop-Sha256": sha256})


@router.post("/runs/{run_id}/artifacts", status_code=201)
async def log_artifact(
    run_id: str,
    request: Request,
    _: Editor,
    path: Annotated[str, Query(min_length=1, max_length=1000)],
) -> dict:
    """Store the body content-addressed and record it in the run under ``path``."""
    data = await request.body()
    store = request.app.state.tracking
    record = await run_in_threadpool(store.log_artifact, run_id, data, path)
    return record.to_dict()
