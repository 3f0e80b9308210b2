"""Content-addressed blob storage: a local folder or S3-compatible object storage.

Choose a backend by URI with ``open_blob_store``::

    store = open_blob_store("/data/cairn/blobs")            # or file:///data/cairn/blobs
    store = open_blob_store("s3://ml-bucket/cairn?endpoint_url=http://minio:9000&region=eu")
    info = store.put_file("model.pkl")                       # BlobInfo(digest=..., size=...)
    with store.open(info.digest) as f:                       # verified as it is read
        data = f.read()
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import url2pathname

from cairn.blobs.base import CHUNK, BlobInfo, BlobStore, check_digest
from cairn.blobs.local import LocalBlobStore
from cairn.domain.errors import Invalid

__all__ = ["CHUNK", "BlobInfo", "BlobStore", "LocalBlobStore", "check_digest", "open_blob_store"]

_S3_OPTIONS = frozenset({"endpoint_url", "region"})
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-_]{1,254}")


def open_blob_store(uri: str) -> BlobStore:
    """The blob store a URI names: a folder path, ``file://…`` or ``s3://bucket/prefix``.

    S3 options go in the query: ``endpoint_url`` (MinIO and other S3-compatible stores)
    and ``region``. Example: ``open_blob_store("s3://ml/blobs?region=eu-west-1")``.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise _bad_uri("the artifact store URI is empty")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and uri[1:2] == ":"):  # a path, or C:\ on Windows
        return LocalBlobStore(uri)
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query:
            raise _bad_uri("a file:// artifact URI names a local folder: file:///path")
        return LocalBlobStore(url2pathname(unquote(parts.path)))
    if scheme == "s3":
        return _open_s3(uri)
    raise _bad_uri(f"unsupported artifact store scheme {scheme!r}: use a folder, file:// or s3://")


def _open_s3(uri: str) -> BlobStore:
    parts = urlsplit(uri)
    bucket = parts.netloc
    if _BUCKET.fullmatch(bucket) is None:
        raise _bad_uri("an s3:// artifact URI needs a bucket: s3://bucket/prefix")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _bad_uri("the s3:// artifact URI has a malformed query") from None
    unknown = sorted(set(query) - _S3_OPTIONS)
    if unknown:
        raise _bad_uri(f"unknown s3:// option(s) {', '.join(unknown)}: use endpoint_url, region")
    options: dict[str, str] = {}
    for name, values in query.items():
        if len(values) != 1 or not values[0]:
            raise _bad_uri(f"the s3:// option {name} needs exactly one value")
        options[name] = values[0]
    endpoint = options.get("endpoint_url")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise _bad_uri("endpoint_url must be an http:// or https:// URL")
    from cairn.blobs.s3 import S3BlobStore

    return S3BlobStore(
        bucket, prefix=unquote(parts.path), endpoint_url=endpoint, region=options.get("region")
    )


def _bad_uri(message: str) -> Invalid:
    return Invalid(message, field="artifacts")
