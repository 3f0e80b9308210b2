"""Limits and the checks that enforce them. Each error names the field and the limit.

The table in ``docs/limits.md`` is generated from ``LIMITS`` (a test keeps them equal).
"""

from __future__ import annotations

import operator
import re
from typing import Any, TypeGuard

from cairn.domain.errors import Invalid

DEFAULT_PROJECT = "default"

LIMITS: dict[str, int] = {
    "key_length": 250,
    "name_length": 250,
    "param_value_length": 6000,
    "tag_value_length": 8000,
    "notes_length": 1_000_000,
    "project_name_length": 100,
    "batch_points": 500_000,
    "batch_params": 100_000,
    "batch_tags": 100_000,
    "batch_runs": 10_000,
    "search_filter_length": 10_000,
    "page_size": 10_000,
}

STEP_MIN = -(2**63)
STEP_MAX = 2**63 - 1

_KEY_RE = re.compile(r"^[A-Za-z0-9_\-./: ]+$")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")


# Keys seen valid: a run logs the same few keys again and again, and the SDK's hot path
# checks membership here before calling anything.
KNOWN_GOOD_KEYS: set[str] = set()


def check_key(key: object, field: str) -> str:
    """A param, metric or tag key: 1..250 characters of letters, digits, ``_-./: ``."""
    if type(key) is str and key in KNOWN_GOOD_KEYS:
        return key
    _check_key(key, field)
    assert isinstance(key, str)
    if len(KNOWN_GOOD_KEYS) < 100_000:
        KNOWN_GOOD_KEYS.add(key)
    return key


def _check_key(key: object, field: str) -> None:
    if not isinstance(key, str):
        raise Invalid(f"{field} must be a string, got {type(key).__name__}", field=field)
    if not key:
        raise Invalid(f"{field} must not be empty", field=field)
    if len(key) > LIMITS["key_length"]:
        raise Invalid(
            f"{field} is {len(key)} characters; the limit (key_length) is {LIMITS['key_length']}",
            field=field,
            details={"limit": "key_length", "max": LIMITS["key_length"]},
        )
    if not _KEY_RE.fullmatch(key) or key != key.strip() or ".." in key or key.startswith("/"):
        raise Invalid(
            f"{field} {key!r} may hold only letters, digits and _ - . / : and inner spaces",
            field=field,
        )


def check_text(value: object, field: str, limit: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string, got {type(value).__name__}", field=field)
    if not allow_empty and not value.strip():
        raise Invalid(f"{field} must not be empty", field=field)
    if len(value) > LIMITS[limit]:
        raise Invalid(
            f"{field} is {len(value)} characters; the limit ({limit}) is {LIMITS[limit]}",
            field=field,
            details={"limit": limit, "max": LIMITS[limit]},
        )
    return check_storable(value, field)


def check_storable(value: str, field: str) -> str:
    """Text every database can store: no NUL character, no lone UTF-16 surrogate."""
    if "\x00" in value:
        raise Invalid(f"{field} must not contain the NUL character", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{field} is not valid Unicode (a lone surrogate)", field=field) from None
    return value


_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> TypeGuard[str]:
    """A sha256 as Cairn names blobs: 64 lowercase hex characters."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def check_name(name: object, what: str, field: str = "name") -> str:
    """A dataset, model or endpoint name: the project-name rules, named for what it is."""
    if not isinstance(name, str) or not is_project_name(name):
        raise Invalid(
            f"{what} name {name!r} must start with a letter or digit and hold only letters, "
            f"digits, '_', '-' and '.' (at most {LIMITS['project_name_length']} characters)",
            field=field,
        )
    return name


def is_project_name(name: str) -> bool:
    return len(name) <= LIMITS["project_name_length"] and bool(_PROJECT_RE.fullmatch(name))


def check_project_name(name: object) -> str:
    check_text(name, "project", "project_name_length", allow_empty=False)
    assert isinstance(name, str)
    if not _PROJECT_RE.fullmatch(name):
        raise Invalid(
            f"project {name!r} must start with a letter or digit and hold only "
            "letters, digits, _ - and .",
            field="project",
        )
    return name


def param_value(value: object, field: str) -> str:
    """Params are strings; numbers and booleans are written the way Python prints them."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = str(value)
    else:
        text = str(value)
    return check_text(text, field, "param_value_length")


def tag_value(value: object, field: str) -> str:
    text = value if isinstance(value, str) else str(value)
    return check_text(text, field, "tag_value_length")


def metric_value(value: Any, field: str) -> float:
    """A metric value: any real number; NaN and +-inf are accepted and kept."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool | str | bytes):
        raise Invalid(f"{field} must be a number, got {type(value).__name__}", field=field)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Invalid(
            f"{field} must be a number, got {type(value).__name__}", field=field
        ) from None


def step_value(value: Any, field: str) -> int:
    """A step: any integer that fits in 64 bits (Python, numpy or torch); never a bool."""
    if isinstance(value, bool):
        raise Invalid(f"{field} must be an integer, got bool", field=field)
    try:
        step = operator.index(value)
    except TypeError:
        raise Invalid(
            f"{field} must be an integer, got {type(value).__name__}", field=field
        ) from None
    if not STEP_MIN <= step <= STEP_MAX:
        raise Invalid(f"{field} {step} does not fit in 64 bits", field=field)
    return step
