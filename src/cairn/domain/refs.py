"""The one parser for references that people type.

    runs/01JD2...       a run
    iris                a model or dataset by name (latest version)
    iris:3              version 3
    iris@production     an alias
    iris@1.2.0          a semantic version
    project/iris:3      any of the above inside a project

SDK, CLI, API and UI all call ``parse_ref``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cairn.domain.errors import Invalid
from cairn.domain.ids import is_ulid

_NAME = r"[A-Za-z0-9][A-Za-z0-9_\-.]*"
_REF_RE = re.compile(
    rf"^(?:(?P<project>{_NAME})/)?(?P<name>{_NAME}?)"
    r"(?:(?::(?P<version>\d+))|(?:@(?P<at>[A-Za-z0-9_\-.+]+)))?$"
)
_SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+$")
MAX_VERSION = 2**31 - 1  # version columns are 32-bit integers


class RefKind(StrEnum):
    RUN = "run"
    NAME = "name"
    VERSION = "version"
    ALIAS = "alias"
    SEMVER = "semver"


@dataclass(frozen=True, slots=True)
class Ref:
    kind: RefKind
    name: str
    project: str | None = None
    version: int | None = None
    alias: str | None = None
    semver: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.project}/" if self.project else ""
        if self.kind is RefKind.RUN:
            return f"runs/{self.name}"
        if self.kind is RefKind.VERSION:
            return f"{prefix}{self.name}:{self.version}"
        if self.kind is RefKind.ALIAS:
            return f"{prefix}{self.name}@{self.alias}"
        if self.kind is RefKind.SEMVER:
            return f"{prefix}{self.name}@{self.semver}"
        return f"{prefix}{self.name}"


def parse_ref(text: str) -> Ref:
    """Parse a reference; a malformed one raises ``Invalid`` naming the reference.

    >>> parse_ref("iris@production").alias
    'production'
    >>> parse_ref("wine:2").version
    2
    """
    if not isinstance(text, str) or not text.strip():
        raise Invalid("reference must be a non-empty string", field="ref")
    text = text.strip()
    if text.startswith("runs/"):
        run_id = text[len("runs/") :]
        if not is_ulid(run_id.upper()):
            raise Invalid(f"reference {text!r}: {run_id!r} is not a run id", field="ref")
        return Ref(RefKind.RUN, run_id.upper())
    match = _REF_RE.match(text)
    if not match or not match.group("name"):
        raise Invalid(
            f"reference {text!r} is not one of name, name:N, name@alias, name@1.2.3, runs/ID",
            field="ref",
        )
    name, project = match.group("name"), match.group("project")
    if match.group("version") is not None:
        version = int(match.group("version"))
        if not 1 <= version <= MAX_VERSION:
            raise Invalid(f"reference {text!r}: versions run from 1 to {MAX_VERSION}", field="ref")
        return Ref(RefKind.VERSION, name, project, version=version)
    at = match.group("at")
    if at is not None:
        if _SEMVER_RE.match(at):
            return Ref(RefKind.SEMVER, name, project, semver=at)
        return Ref(RefKind.ALIAS, name, project, alias=at)
    return Ref(RefKind.NAME, name, project)
