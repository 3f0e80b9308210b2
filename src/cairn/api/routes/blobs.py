"""Blobs by digest: which are missing, and sending them (one, or many in a bundle).

Clients hash before they send: ``POST /blobs/missing`` says which digests the store
lacks, so identical bytes never travel twice.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cairn.api.deps import BlobsDep
from cairn.api.route import ApiRoute
from cairn.api.streaming import RAW_BODY, body_stream
from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.schemas.datasets import (
    BlobOut,
    DigestsIn,
    DigestsOut,
    PresignCompleteIn,
    PresignIn,
    PresignOut,
)

router = APIRouter(tags=["blobs"], route_class=ApiRoute)


@router.post(
    "/blobs/missing", response_model=DigestsOut, dependencies=[guard(On.SOMEWHERE, Role.EDITOR)]
)
def missing_blobs(body: DigestsIn, blobs: BlobsDep) -> DigestsOut:
    """The digests among those given that the store does not hold yet."""
    return DigestsOut(missing=blobs.missing(body.digests))


@router.put(
    "/blobs/{digest}",
    response_model=BlobOut,
    status_code=201,
    openapi_extra=RAW_BODY,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
async def put_blob(digest: str, request: Request, blobs: BlobsDep) -> BlobOut:
    """Store the raw body under its sha256, which must equal ``digest`` (else nothing is
    stored). Sending bytes already stored is harmless."""
    info = await run_in_threadpool(blobs.put, body_stream(request), expected_digest=digest)
    return BlobOut(digest=info.digest, size=info.size)


@router.post(
    "/blobs/bundle",
    response_model=list[BlobOut],
    status_code=201,
    openapi_extra=RAW_BODY,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
async def put_bundle(request: Request, blobs: BlobsDep) -> list[BlobOut]:
    """Many small blobs in one body: frames of ``<sha256> <size>\\n`` then the bytes.
    Each frame is verified; a bad frame fails the request and stores none of them."""
    infos = await run_in_threadpool(blobs.put_bundle, body_stream(request))
    return [BlobOut(digest=i.digest, size=i.size) for i in infos]


@router.post(
    "/blobs/presigned-uploads",
    response_model=PresignOut,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
def presign_upload(body: PresignIn, blobs: BlobsDep) -> PresignOut:
    """A URL to PUT the bytes to, straight into the object store (S3 backends), with the
    headers to send; ``url`` is null when uploads go through this server instead."""
    found = blobs.presign_upload(body.digest, body.size)
    if found is None:
        return PresignOut()
    return PresignOut(url=found.url, headers=found.headers, token=found.token)


@router.post(
    "/blobs/presigned-uploads/{token}/complete",
    response_model=BlobOut,
    status_code=201,
    dependencies=[guard(On.SOMEWHERE, Role.EDITOR)],
)
def complete_presigned_upload(token: str, body: PresignCompleteIn, blobs: BlobsDep) -> BlobOut:
    """Verify the bytes sent to the presigned URL and store them under their digest."""
    info = blobs.complete_presigned(body.digest, token)
    return BlobOut(digest=info.digest, size=info.size)
