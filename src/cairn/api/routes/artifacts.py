"""Run artifacts: streaming upload and download, and the manifest.

Uploads are ``async`` routes: the body is read chunk by chunk from the ASGI
stream while the blocking blob store runs in the thread pool, so a large file is never
held whole in memory.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cairn.api.deps import ActorDep, ArtifactsDep
from cairn.api.route import ApiRoute
from cairn.api.streaming import RANGE_RESPONSES, RAW_BODY, blob_response, body_stream
from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.schemas.artifacts import ArtifactOut, ArtifactRecordIn

router = APIRouter(tags=["artifacts"], route_class=ApiRoute)


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    response_model=ArtifactOut,
    status_code=201,
    openapi_extra=RAW_BODY,
    dependencies=[guard(On.RUN, Role.EDITOR)],
)
async def upload_artifact(
    run_id: str, path: str, request: Request, artifacts: ArtifactsDep, actor: ActorDep
) -> ArtifactOut:
    """Store the raw request body as the run's file ``path`` (a new version if it exists).

    ``Content-Type`` is kept as the media type (guessed from the extension when absent
    or ``application/octet-stream``); ``X-Cairn-Digest`` (sha256 hex), when given, must
    match the bytes received, else nothing is stored.
    """
    content_type = request.headers.get("content-type")
    media_type = None if content_type in (None, "", "application/octet-stream") else content_type
    expected = request.headers.get("x-cairn-digest") or None
    stream = body_stream(request)
    entry = await run_in_threadpool(
        artifacts.log_artifact,
        run_id,
        path,
        stream,
        media_type,
        expected_digest=expected,
        actor=actor,
    )
    return ArtifactOut.of(entry)


@router.get(
    "/runs/{run_id}/artifacts",
    response_model=list[ArtifactOut],
    dependencies=[guard(On.RUN, Role.VIEWER)],
)
def list_artifacts(
    run_id: str, artifacts: ArtifactsDep, prefix: str | None = None
) -> list[ArtifactOut]:
    """The run's artifacts by path; ``prefix`` keeps the file it names or those under it."""
    return [ArtifactOut.of(e) for e in artifacts.list_artifacts(run_id, prefix)]


@router.post(
    "/runs/{run_id}/artifacts",
    response_model=list[ArtifactOut],
    status_code=201,
    dependencies=[guard(On.RUN, Role.EDITOR)],
)
def record_artifacts(
    run_id: str, body: list[ArtifactRecordIn], artifacts: ArtifactsDep, actor: ActorDep
) -> list[ArtifactOut]:
    """Record blobs already stored (see ``POST /blobs/missing``) as the run's files, in
    one transaction: logging bytes Cairn already holds moves none of them."""
    entries = artifacts.record_artifacts(
        run_id, [(b.path, b.digest, b.media_type) for b in body], actor=actor
    )
    return [ArtifactOut.of(e) for e in entries]


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses=RANGE_RESPONSES,
    dependencies=[guard(On.RUN, Role.VIEWER)],
)
def download_artifact(
    run_id: str, path: str, request: Request, artifacts: ArtifactsDep
) -> Response:
    """The file's bytes, streamed; ``ETag`` and ``X-Cairn-Digest`` carry its sha256.
    ``Range: bytes=a-b`` asks for a slice (206)."""
    entry = artifacts.get_artifact(run_id, path)
    return blob_response(request, artifacts.blobs, entry.digest, entry.size, entry.media_type)
