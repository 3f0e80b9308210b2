"""Blobs by digest: which are missing, and sending them (one, or many in a bundle).

Clients hash before they send: ``POST /blobs/missing`` says which digests the store
lacks, so identical bytes never travel twice.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cairn.api.deps import BlobsDep
from cairn.api.streaming import RAW_BODY, body_stream
from cairn.schemas.datasets import BlobOut, DigestsIn, DigestsOut

router = APIRouter(tags=["blobs"])


@router.post("/blobs/missing", response_model=DigestsOut)
def missing_blobs(body: DigestsIn, blobs: BlobsDep) -> DigestsOut:
    """The digests among those given that the store does not hold yet."""
    return DigestsOut(missing=blobs.missing(body.digests))


@router.put("/blobs/{digest}", response_model=BlobOut, status_code=201, openapi_extra=RAW_BODY)
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
)
async def put_bundle(request: Request, blobs: BlobsDep) -> list[BlobOut]:
    """Many small blobs in one body: frames of ``<sha256> <size>\\n`` then the bytes.
    Each frame is verified; a bad frame fails the request (frames before it are kept)."""
    infos = await run_in_threadpool(blobs.put_bundle, body_stream(request))
    return [BlobOut(digest=i.digest, size=i.size) for i in infos]
