"""The model registry's records: registered models, their versions, aliases and moves.

A version is numbered (1, 2, …) and carries a semantic version picked by the rule in
``semver.py``; its files are a manifest of blobs, like a dataset version's. An alias
("production", "staging") points to one version; every move is kept, so "what did
production point to on 3 March?" has an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cairn.domain.errors import Invalid

MAX_ALIAS_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 100_000
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
RESERVED_ALIASES = frozenset({"latest"})
# The flavors Cairn can load (cairn.flavors); a version of any other could never be served.
KNOWN_FLAVORS = ("sklearn", "pickle", "pytorch", "onnx")


class Approval(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ModelFile:
    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    project: str
    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)
    protected_aliases: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A registered version. ``str(v)`` is its reference, ``iris:3``."""

    project: str
    name: str
    version: int
    semver: str
    bump_reason: str
    run_id: str | None
    flavor: str
    algorithm: str | None
    signature: dict[str, Any] | None
    digest: str
    size: int
    approval: Approval
    created_at: datetime
    training_data: list[str] = field(default_factory=list)
    requirements: dict[str, str] = field(default_factory=dict)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    approval_comment: str | None = None
    approval_actor: str | None = None
    approval_at: datetime | None = None
    author: str | None = None
    aliases: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def ref(self) -> str:
        return f"{self.project}/{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One move of an alias; a None version means unset (before: new alias; after: deleted)."""

    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str | None
    at: datetime


def check_alias(alias: object) -> str:
    if (
        not isinstance(alias, str)
        or len(alias) > MAX_ALIAS_LENGTH
        or _ALIAS.match(alias) is None
        or alias in RESERVED_ALIASES
    ):
        raise Invalid(
            f"alias {alias!r} must start with a letter and hold only letters, digits, '_' "
            f"and '-' (at most {MAX_ALIAS_LENGTH} characters; 'latest' is reserved)",
            field="alias",
        )
    return alias
