"""Turning Python objects into artifact bytes, and writing downloads atomically."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from cairn.client.transfer import sha256_of
from cairn.domain.errors import CorruptBlob, Invalid

_FIGURE_FORMATS = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def media_type_for(name: str, default: str) -> str:
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    return guessed or default


def text_bytes(text: str) -> bytes:
    if not isinstance(text, str):
        raise Invalid(f"text must be a string, got {type(text).__name__}", field="text")
    return text.encode("utf-8")


def json_bytes(obj: Any) -> bytes:
    try:
        return json.dumps(obj, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise Invalid(f"the object cannot be written as JSON: {exc}", field="obj") from None


def figure_bytes(fig: Any, name: str) -> tuple[bytes, str]:
    """A matplotlib figure saved in the format its name asks for (PNG by default)."""
    suffix = Path(name).suffix.lower().lstrip(".")
    fmt = suffix if suffix in _FIGURE_FORMATS else "png"
    if not callable(getattr(fig, "savefig", None)):
        raise Invalid("log_figure needs a matplotlib figure (an object with savefig)", field="fig")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue(), _FIGURE_FORMATS[fmt]


def table_bytes(df: Any, name: str) -> tuple[bytes, str]:
    """A pandas DataFrame as CSV, or parquet when the name ends ``.parquet``."""
    if not callable(getattr(df, "to_csv", None)):
        raise Invalid("log_table needs a pandas DataFrame", field="df")
    if name.lower().endswith(".parquet"):
        try:
            import pyarrow  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            raise Invalid(
                "writing .parquet needs pyarrow (pip install pyarrow); or name the table .csv",
                field="name",
            ) from None
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        return buffer.getvalue(), "application/vnd.apache.parquet"
    return cast(str, df.to_csv(index=False)).encode("utf-8"), "text/csv"


class _HashingWriter:
    def __init__(self, out: BinaryIO, progress: Callable[[int], None] | None = None) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.progress = progress

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        if self.progress is not None:
            self.progress(len(data))
        view = memoryview(data)
        while view:  # an unbuffered file may write less than it was given
            view = view[self.out.write(view) or 0 :]
        return len(data)


def write_atomically(
    target: Path,
    fill: Callable[[BinaryIO], None],
    digest: str,
    progress: Callable[[int], None] | None = None,
    *,
    source: Path | None = None,
) -> None:
    """Write ``target`` through a temp file beside it; only bytes matching ``digest`` land.

    ``source``, when the blob is a local file (an embedded store), is hashed and then copied
    by the kernel (``copy_file_range``/``sendfile``) instead of through Python. No fsync:
    a download is a copy Cairn can make again, and ``get_dataset`` re-checks what it finds.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        if source is not None:
            os.close(fd)
            _check_digest(target.name, sha256_of(source, progress)[0], digest)
            shutil.copyfile(source, tmp_name)
        else:
            with os.fdopen(fd, "wb", buffering=0) as out:
                writer = _HashingWriter(cast(BinaryIO, out), progress)
                fill(cast(BinaryIO, writer))
            _check_digest(target.name, writer.hash.hexdigest(), digest)
        os.replace(tmp_name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _check_digest(name: str, actual: str, digest: str) -> None:
    if actual != digest:
        raise CorruptBlob(
            f"{name} arrived damaged: its bytes do not match the digest {digest}",
            details={"digest": digest},
        )
