"""Artifact paths: POSIX, relative, never able to escape the run's artifact root.

>>> normalize_artifact_path("plots//./loss.png")
'plots/loss.png'
"""

from __future__ import annotations

import re

from cairn.domain.errors import Invalid

MAX_PATH_LENGTH = 1000
MAX_MEDIA_TYPE_LENGTH = 250

_DRIVE = re.compile(r"^[A-Za-z]:")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*(\s*;.*)?$")


def normalize_artifact_path(text: object, field: str = "path") -> str:
    """The canonical form of an artifact path, or ``Invalid`` naming ``field``.

    Refused: empty, absolute (``/x``, ``C:\\x``, ``C:/x``, ``\\\\server\\share``), any ``..``
    segment, backslashes, control characters, over 1000 characters. ``./`` and repeated
    slashes are collapsed.
    """
    if not isinstance(text, str):
        raise Invalid(f"{field} must be a string, got {type(text).__name__}", field=field)
    if not text:
        raise Invalid(f"{field} must not be empty", field=field)
    if len(text) > MAX_PATH_LENGTH:
        raise Invalid(
            f"{field} is {len(text)} characters; the limit is {MAX_PATH_LENGTH}",
            field=field,
            details={"max": MAX_PATH_LENGTH},
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise Invalid(f"{field} must not hold NUL or other control characters", field=field)
    if "\\" in text:
        raise Invalid(
            f"{field} {text!r} holds a backslash: artifact paths use forward slashes",
            field=field,
        )
    if text.startswith("/") or _DRIVE.match(text):
        raise Invalid(
            f"{field} {text!r} is absolute: artifact paths are relative to the run",
            field=field,
        )
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Invalid(f"{field} {text!r} has a '..' segment: paths may not go up", field=field)
    if not parts:
        raise Invalid(f"{field} {text!r} names no file", field=field)
    return "/".join(parts)


def check_media_type(value: object) -> str:
    """A media type such as ``image/png`` or ``text/csv; charset=utf-8``."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_MEDIA_TYPE_LENGTH
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
        or _MEDIA_TYPE.match(value) is None
    ):
        raise Invalid(
            f"media_type {value!r} is not a media type such as 'text/csv'", field="media_type"
        )
    return value
