"""Resumable uploads of large blobs: start, append chunks at an offset, complete.

POST   /uploads                 {"size": n, "digest": d} -> {"id", "offset": 0}
PATCH  /uploads/{id}            Upload-Offset: k, raw body -> {"offset": k + len}
GET    /uploads/{id}            -> {"offset"}: after a broken connection, resume there
POST   /uploads/{id}/complete   -> {"digest", "size"}: verified into the blob store
DELETE /uploads/{id}
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from cairn.api.deps import UploadsDep
from cairn.api.route import ApiRoute
from cairn.api.streaming import RAW_BODY, body_stream
from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.domain.errors import NotFound
from cairn.schemas.datasets import BlobOut, UploadIn, UploadOut
from cairn.services.uploads import Upload

router = APIRouter(tags=["uploads"], route_class=ApiRoute)


def _out(upload: Upload) -> UploadOut:
    return UploadOut(id=upload.id, offset=upload.offset, size=upload.size, digest=upload.digest)


@router.post(
    "/uploads",
    response_model=UploadOut,
    status_code=201,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
def start_upload(body: UploadIn, uploads: UploadsDep) -> UploadOut:
    """Begin an upload; ``size`` and ``digest`` (sha256), when given, are enforced."""
    return _out(uploads.start(body.size, body.digest))


@router.get(
    "/uploads/{upload_id}",
    response_model=UploadOut,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
def upload_status(upload_id: str, uploads: UploadsDep, response: Response) -> UploadOut:
    """How many bytes have arrived: the offset to resume from."""
    found = uploads.status(upload_id)
    response.headers["Upload-Offset"] = str(found.offset)
    return _out(found)


@router.patch(
    "/uploads/{upload_id}",
    response_model=UploadOut,
    openapi_extra=RAW_BODY,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
async def append_upload(
    upload_id: str,
    request: Request,
    uploads: UploadsDep,
    upload_offset: Annotated[int, Header(ge=0, description="Where this chunk starts.")],
) -> UploadOut:
    """Append the body at ``Upload-Offset``; any other offset than the current one is a
    409 whose details carry the current offset."""
    found = await run_in_threadpool(uploads.append, upload_id, upload_offset, body_stream(request))
    return _out(found)


@router.post(
    "/uploads/{upload_id}/complete",
    response_model=BlobOut,
    status_code=201,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
def complete_upload(upload_id: str, uploads: UploadsDep) -> BlobOut:
    info = uploads.complete(upload_id)
    return BlobOut(digest=info.digest, size=info.size)


@router.delete(
    "/uploads/{upload_id}", status_code=204, dependencies=[guard(On.SOMEWHERE, Role.EDITOR)]
)
def cancel_upload(upload_id: str, uploads: UploadsDep) -> Response:
    if not uploads.cancel(upload_id):
        raise NotFound(f"upload {upload_id} does not exist", details={"upload_id": upload_id})
    return Response(status_code=204)
