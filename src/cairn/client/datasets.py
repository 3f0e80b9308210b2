"""What ``log_dataset`` accepts, turned into a manifest to send.

- a pandas DataFrame -> ``data.csv`` (deterministic bytes, so unchanged data keeps its
  version) and its profile;
- a numpy array -> ``data.npy`` and its profile;
- a file -> that file (profiled when it is a .csv, .tsv or .parquet table);
- a folder -> every file under it, by relative path;
- a URI kept by reference (the bytes are not copied): ``file://`` (size and mtime of each
  file), ``http(s)://`` (size and ETag or Last-Modified), ``s3://`` (size and ETag of each
  object under the key, with boto3's usual credentials).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from cairn.client import profiling
from cairn.client.transfer import LocalFile, Progress, folder_files, local_file
from cairn.domain.datasets import DatasetFile, DatasetKind
from cairn.domain.errors import Invalid

REFERENCE_SCHEMES = ("file", "http", "https", "s3")
log = logging.getLogger("cairn")


@dataclass
class PreparedSource:
    kind: DatasetKind
    files: list[LocalFile] = field(default_factory=list)
    references: list[DatasetFile] = field(default_factory=list)
    source: str | None = None
    profile: dict[str, Any] | None = None

    def manifest(self) -> list[DatasetFile]:
        if self.kind is DatasetKind.REFERENCE:
            return self.references
        return [DatasetFile(f.name, f.digest, f.size) for f in self.files]


@contextlib.contextmanager
def prepared(source: Any, progress: Progress | None = None) -> Iterator[PreparedSource]:
    """The manifest of ``source``; temporary files (for in-memory data) live until exit."""
    scratch: Path | None = None
    try:
        if _is_dataframe(source):
            scratch = Path(tempfile.mkdtemp(prefix="cairn-dataset-"))
            target = scratch / "data.csv"
            source.to_csv(target, index=False)
            yield PreparedSource(
                DatasetKind.FILES,
                [local_file(target, "data.csv", progress)],
                profile=_profile(profiling.profile_dataframe, source),
            )
        elif _is_ndarray(source):
            import numpy

            scratch = Path(tempfile.mkdtemp(prefix="cairn-dataset-"))
            target = scratch / "data.npy"
            numpy.save(target, source, allow_pickle=False)
            yield PreparedSource(
                DatasetKind.FILES,
                [local_file(target, "data.npy", progress)],
                profile=_profile(profiling.profile_array, source),
            )
        elif isinstance(source, str) and _uri_scheme(source):
            yield PreparedSource(
                DatasetKind.REFERENCE, references=reference_manifest(source), source=source
            )
        elif isinstance(source, (str, os.PathLike)):
            yield _from_path(Path(source), progress)
        else:
            raise Invalid(
                "source must be a file, a folder, a pandas DataFrame, a numpy array, or a "
                f"file://, http(s):// or s3:// URI; got {type(source).__name__}",
                field="source",
            )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _from_path(path: Path, progress: Progress | None) -> PreparedSource:
    if path.is_file():
        profile = (
            _profile(profiling.profile_table_file, path)
            if profiling.is_tabular_file(path)
            else None
        )
        return PreparedSource(
            DatasetKind.FILES, [local_file(path, path.name, progress)], profile=profile
        )
    if path.is_dir():
        files = folder_files(path, progress=progress)
        if not files:
            raise Invalid(f"folder {str(path)!r} holds no files", field="source")
        return PreparedSource(DatasetKind.FILES, files)
    raise Invalid(f"source {str(path)!r} is neither a file nor a folder", field="source")


def _profile(compute: Callable[[Any], dict[str, Any] | None], data: Any) -> dict[str, Any] | None:
    """A profile is a bonus: data that cannot be profiled here (no pandas, an unreadable or
    too-wide table) is still versioned, without one."""
    try:
        return compute(data)
    except (Invalid, ValueError, OSError) as exc:
        log.info("cairn: no profile for this dataset version: %s", exc)
        return None


def _is_dataframe(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "to_csv")


def _is_ndarray(obj: Any) -> bool:
    return type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray"


def _uri_scheme(text: str) -> str | None:
    scheme = urlsplit(text).scheme.lower()
    if "://" not in text or len(scheme) < 2:  # C:\data is a path, not a URI
        return None
    if scheme not in REFERENCE_SCHEMES:
        raise Invalid(
            f"cannot keep a {scheme}:// source by reference: use file://, http(s):// or s3://",
            field="source",
        )
    return scheme


def reference_manifest(uri: str) -> list[DatasetFile]:
    """The identity of what a URI names now: paths, sizes and ETags (or mtimes)."""
    scheme = _uri_scheme(uri)
    if scheme == "file":
        return _file_references(uri)
    if scheme in ("http", "https"):
        return [_http_reference(uri)]
    return _s3_references(uri)


def _file_references(uri: str) -> list[DatasetFile]:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise Invalid("a file:// source names a local path: file:///path", field="source")
    root = Path(url2pathname(unquote(parts.path)))
    if root.is_file():
        stat = root.stat()
        return [DatasetFile(root.name, None, stat.st_size, f"mtime:{stat.st_mtime_ns}")]
    if not root.is_dir():
        raise Invalid(f"{uri} names nothing on this machine", field="source")
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        name = path.relative_to(root).as_posix()
        out.append(DatasetFile(name, None, stat.st_size, f"mtime:{stat.st_mtime_ns}"))
    if not out:
        raise Invalid(f"{uri} holds no files", field="source")
    return out


def _http_reference(uri: str) -> DatasetFile:
    import httpx

    try:
        response = httpx.head(uri, follow_redirects=True, timeout=30.0)
    except httpx.HTTPError as exc:
        raise Invalid(f"cannot reach {uri}: {exc}", field="source") from exc
    if response.status_code >= 400:
        raise Invalid(f"{uri} answered HTTP {response.status_code}", field="source")
    size = int(response.headers.get("content-length") or 0)
    etag = response.headers.get("etag") or (
        f"last-modified:{response.headers['last-modified']}"
        if "last-modified" in response.headers
        else None
    )
    name = Path(unquote(urlsplit(uri).path)).name or "data"
    return DatasetFile(name, None, size, etag)


def _s3_references(uri: str) -> list[DatasetFile]:
    try:
        import boto3
    except ImportError:
        raise Invalid(
            "keeping an s3:// source by reference needs boto3: pip install 'cairn[s3]'",
            field="source",
        ) from None
    parts = urlsplit(uri)
    bucket, key = parts.netloc, unquote(parts.path).lstrip("/")
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    out = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Contents", []):
            full = str(item["Key"])
            if full == key:
                name = Path(full).name
            elif full.startswith(key.rstrip("/") + "/") or not key:
                name = full[len(key.rstrip("/")) :].lstrip("/")
            else:
                continue  # a sibling that only shares the prefix: data.csv vs data.csv.bak
            out.append(DatasetFile(name, None, int(item["Size"]), str(item["ETag"]).strip('"')))
    if not out:
        raise Invalid(f"{uri} names no object", field="source")
    return out
