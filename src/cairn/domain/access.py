"""Who may do what: roles on projects, the server admin, and the caller of one request.

Roles are ordered: a maintainer may do all an editor may, an editor all a viewer may.

    viewer      reads everything in the project
    editor      logs runs, artifacts, datasets, model versions, predictions and feedback
    maintainer  approves or rejects versions, moves and protects aliases, manages
                endpoints, promotes A/B winners, manages the project's webhooks
    admin       (server-wide, not a project role) users, projects, tokens of others

A server without authentication (embedded mode, or a server bound to loopback) has one
caller, ``Principal.open()``, who may do everything.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cairn.domain.errors import Forbidden, Invalid

USER_NAME_MAX = 100
PASSWORD_MIN = 8
PASSWORD_MAX = 1024


class Role(enum.IntEnum):
    """A project role; a higher value includes every lower one."""

    VIEWER = 1
    EDITOR = 2
    MAINTAINER = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(r.label for r in cls)
            raise Invalid(f"role must be one of {choices}, not {text!r}", field="role") from None


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a user (by token or session), or the open single user."""

    name: str | None
    admin: bool = False
    roles: Mapping[str, Role] = field(default_factory=dict)
    authenticated: bool = True
    via: str = "open"  # open, token, session

    @classmethod
    def open(cls, name: str | None = None) -> Principal:
        """The one user of a server run without authentication: allowed everything."""
        return cls(name=name, admin=True, authenticated=False, via="open")

    def role_in(self, project: str) -> Role | None:
        if self.admin:
            return Role.MAINTAINER
        return self.roles.get(project)

    def may(self, project: str, role: Role) -> bool:
        held = self.role_in(project)
        return held is not None and held >= role

    def may_somewhere(self, role: Role) -> bool:
        """For what belongs to no one project (blobs, upload sessions)."""
        return self.admin or any(r >= role for r in self.roles.values())

    def require(self, project: str, role: Role) -> None:
        if not self.may(project, role):
            held = self.role_in(project)
            what = f"is {held.label}" if held else "has no role"
            raise Forbidden(
                f"{self.name or 'this caller'} {what} on project {project!r}; "
                f"this needs {role.label} or above",
                details={"project": project, "needs": role.label},
            )

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden(
                f"{self.name or 'this caller'} is not a server admin; this needs an admin",
                details={"needs": "admin"},
            )

    def require_somewhere(self, role: Role) -> None:
        if not self.may_somewhere(role):
            raise Forbidden(
                f"{self.name or 'this caller'} is not {role.label} on any project; "
                f"this needs {role.label} or above on at least one",
                details={"needs": role.label},
            )


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    admin: bool
    has_password: bool
    created_at: datetime
    disabled: bool


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as ``ls`` shows it: never its secret."""

    id: int
    key: str
    user: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def check_user_name(name: str) -> str:
    """A login name: 1-100 characters of letters, digits, ``.``, ``_``, ``-`` and ``@``."""
    if not isinstance(name, str) or not name or len(name) > USER_NAME_MAX:
        raise Invalid(f"user name must be 1 to {USER_NAME_MAX} characters", field="name")
    if not all(c.isalnum() or c in "._-@" for c in name) or not name.isascii():
        raise Invalid(
            f"user name {name!r} may hold only ASCII letters, digits, '.', '_', '-' and '@'",
            field="name",
        )
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Invalid(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )
    return password
