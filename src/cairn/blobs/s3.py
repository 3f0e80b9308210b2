"""Blobs in S3-compatible object storage: keys ``prefix/ab/cd/<digest>``.

A put hashes while it uploads. A blob that fits one part (``PART_SIZE``) is hashed first
and written with one ``put_object`` straight to its final key (S3 makes a single put
atomic). A larger one is streamed as a multipart upload to a temporary key
(``prefix/tmp/<uuid>``); only once every part is sent and the digest is verified is the
upload completed, copied server-side to its final key and the temporary key deleted. If
the blob is already stored, or the stream fails, or the digest is not the one expected,
the upload is aborted and nothing becomes visible.

boto3 is imported only when a client is built here, so the SDK's HTTP path never loads it;
credentials come from boto3's usual environment (variables, profile, instance role).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from cairn.blobs.base import (
    CHUNK,
    BlobInfo,
    BlobStoreBase,
    blob_not_found,
    check_digest,
    check_expected,
    is_digest,
    read_chunk,
    verifying_reader,
)
from cairn.domain.errors import Invalid, NotFound

PART_SIZE = 8 * 1024 * 1024
COPY_OBJECT_LIMIT = 5 * 1024**3  # the largest object copy_object copies in one call
COPY_PART_SIZE = 1024**3
_MAX_PARTS = 10_000
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_TOKEN = re.compile(r"[0-9a-f]{32}")


class S3BlobStore(BlobStoreBase):
    """Content-addressed blobs in a bucket. Example: ``S3BlobStore("ml", prefix="blobs")``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            try:
                import boto3
            except ImportError as exc:
                raise Invalid(
                    "an s3:// artifact store needs boto3: pip install 'cairn[s3]'",
                    field="artifacts",
                ) from exc
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self.client: Any = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"S3BlobStore({self.bucket!r}, prefix={self.prefix!r})"

    def key(self, digest: str) -> str:
        """The object key of a blob."""
        digest = check_digest(digest)
        return self._prefixed(f"{digest[:2]}/{digest[2:4]}/{digest}")

    def put(self, stream: BinaryIO, *, expected_digest: str | None = None) -> BlobInfo:
        if expected_digest is not None:
            check_digest(expected_digest)
        hasher = hashlib.sha256()
        part = _read_part(stream, hasher)
        if len(part) < PART_SIZE:  # the whole blob: hash first, then one atomic put
            return self._put_whole(part, hasher.hexdigest(), expected_digest)
        tmp_key = self._prefixed(f"tmp/{uuid.uuid4().hex}")
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=tmp_key)
        upload_id = upload["UploadId"]
        try:
            sent: list[dict[str, Any]] = []
            size = 0
            while part:
                number = len(sent) + 1
                etag = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=tmp_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                )["ETag"]
                sent.append({"PartNumber": number, "ETag": etag})
                size += len(part)
                del part  # free the sent part first: only one part is ever held in memory
                part = _read_part(stream, hasher)
            digest = hasher.hexdigest()
            check_expected(digest, expected_digest)
            key = self.key(digest)
            stored_already = self._head_size(key) == size
            if not stored_already:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=tmp_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": sent},
                )
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                self._abort(tmp_key, upload_id)
            raise
        if stored_already:
            self._abort(tmp_key, upload_id)
        else:
            try:
                self._copy(tmp_key, key, size)
            finally:
                self.client.delete_object(Bucket=self.bucket, Key=tmp_key)
        return BlobInfo(digest, size)

    def _put_whole(self, data: bytearray, digest: str, expected_digest: str | None) -> BlobInfo:
        check_expected(digest, expected_digest)
        key = self.key(digest)
        if self._head_size(key) != len(data):  # absent, or damaged: (re)write it
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return BlobInfo(digest, len(data))

    def _abort(self, key: str, upload_id: str) -> None:
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _copy(self, source: str, target: str, size: int) -> None:
        """Server-side copy; above 5 GB copy_object cannot, so a multipart copy does it."""
        copy_source = {"Bucket": self.bucket, "Key": source}
        if size <= COPY_OBJECT_LIMIT:
            self.client.copy_object(Bucket=self.bucket, Key=target, CopySource=copy_source)
            return
        part_size = max(COPY_PART_SIZE, -(-size // _MAX_PARTS))
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=target)
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, part_size), start=1):
                end = min(start + part_size, size) - 1
                copied = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._abort(target, upload_id)
            raise

    def open(self, digest: str) -> BinaryIO:
        key = self.key(digest)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                raise blob_not_found(digest) from None
            raise
        body: BinaryIO = response["Body"]
        return verifying_reader(body, digest)

    def open_range(self, digest: str, start: int, length: int) -> BinaryIO:
        key = self.key(digest)
        if length <= 0:
            return io.BytesIO(b"")
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
        except Exception as exc:
            if _is_missing(exc):
                raise blob_not_found(digest) from None
            raise
        body: BinaryIO = response["Body"]
        return body

    def exists(self, digest: str) -> bool:
        return self._head_size(self.key(digest)) is not None

    def modified(self, digest: str) -> float:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except Exception as exc:
            if _is_missing(exc):
                raise blob_not_found(digest) from None
            raise
        return float(head["LastModified"].timestamp())

    def touch(self, digest: str) -> None:
        """Objects cannot be touched in place cheaply; garbage collection re-checks the
        manifests just before it deletes instead (see services/gc.py)."""

    def size(self, digest: str) -> int:
        size = self._head_size(self.key(digest))
        if size is None:
            raise blob_not_found(digest)
        return size

    def delete(self, digest: str) -> bool:
        key = self.key(digest)
        if self._head_size(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def digests(self) -> Iterator[str]:
        start = self._prefixed("")
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                parts = str(item["Key"])[len(start) :].split("/")
                if len(parts) != 3:
                    continue
                first, second, digest = parts
                if first == digest[:2] and second == digest[2:4] and is_digest(digest):
                    yield digest

    def presigned_get(self, digest: str, expires_s: int = 3600) -> str:
        """A URL that downloads the blob without credentials until it expires."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(digest)},
            ExpiresIn=expires_s,
        )
        return url

    def presign_incoming(
        self, digest: str, size: int, expires_s: int = 3600
    ) -> tuple[str, str, dict[str, str]]:
        """``(token, url, headers)``: a PUT of exactly these bytes to a private incoming key.

        The URL is signed with the size and the sha256 (``x-amz-checksum-sha256``), so an
        object store that checks checksums refuses other bytes; ``adopt_incoming`` then
        verifies again before the blob becomes visible under its digest.
        """
        digest = check_digest(digest)
        token = uuid.uuid4().hex
        checksum = base64.b64encode(bytes.fromhex(digest)).decode("ascii")
        url: str = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._incoming_key(digest, token),
                "ContentLength": size,
                "ChecksumSHA256": checksum,
            },
            ExpiresIn=expires_s,
        )
        headers = {"Content-Length": str(size), "x-amz-checksum-sha256": checksum}
        return token, url, headers

    def adopt_incoming(self, digest: str, token: str) -> BlobInfo:
        """Make an incoming object the blob ``digest``, once its bytes are proven to be it.

        The object store's own SHA-256 checksum is trusted when it reports one that
        matches; otherwise the object is read back and hashed. Bytes that do not match
        are deleted and ``Invalid(field="digest")`` raised.
        """
        digest = check_digest(digest)
        if _TOKEN.fullmatch(token or "") is None:
            raise Invalid("the upload token is malformed", field="token")
        incoming = self._incoming_key(digest, token)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=incoming, ChecksumMode="ENABLED")
        except Exception as exc:
            if _is_missing(exc):
                raise NotFound(
                    f"nothing was uploaded for blob {digest} with this token",
                    details={"digest": digest},
                ) from None
            raise
        size = int(head["ContentLength"])
        checksum = base64.b64encode(bytes.fromhex(digest)).decode("ascii")
        if head.get("ChecksumSHA256") != checksum:
            body = self.client.get_object(Bucket=self.bucket, Key=incoming)["Body"]
            hasher = hashlib.sha256()
            with contextlib.closing(body):
                while chunk := body.read(CHUNK):
                    hasher.update(chunk)
            try:
                check_expected(hasher.hexdigest(), digest)
            except Invalid:
                self.client.delete_object(Bucket=self.bucket, Key=incoming)
                raise
        try:
            if self._head_size(self.key(digest)) != size:
                self._copy(incoming, self.key(digest), size)
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=incoming)
        return BlobInfo(digest, size)

    def _incoming_key(self, digest: str, token: str) -> str:
        return self._prefixed(f"incoming/{digest}/{token}")

    def _prefixed(self, rest: str) -> str:
        return f"{self.prefix}/{rest}" if self.prefix else rest

    def _head_size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        return int(head["ContentLength"])


def _read_part(stream: BinaryIO, hasher: Any) -> bytearray:
    """Read up to ``PART_SIZE`` bytes, a chunk at a time, hashing them."""
    part = bytearray()
    while len(part) < PART_SIZE:
        chunk = read_chunk(stream, min(CHUNK, PART_SIZE - len(part)))
        if not chunk:
            break
        hasher.update(chunk)
        part += chunk
    return part


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return str(response.get("Error", {}).get("Code")) in _MISSING_CODES
