"""Users, tokens and project members on the wire. A token's secret appears only once."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from cairn.domain.access import Principal, TokenInfo, User
from cairn.schemas.base import Wire

RoleName = Literal["viewer", "editor", "maintainer"]


class WhoAmIOut(Wire):
    name: str | None
    admin: bool
    authenticated: bool
    via: str
    roles: dict[str, RoleName]

    @classmethod
    def of(cls, who: Principal) -> WhoAmIOut:
        roles = {p: r.label for p, r in sorted(who.roles.items())}
        return cls(
            name=who.name,
            admin=who.admin,
            authenticated=who.authenticated,
            via=who.via,
            roles=roles,  # type: ignore[arg-type]
        )


class UserIn(Wire):
    name: str = Field(min_length=1, max_length=100)
    password: str | None = Field(default=None, max_length=1024)
    admin: bool = False


class UserOut(Wire):
    name: str
    admin: bool
    has_password: bool
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            name=user.name,
            admin=user.admin,
            has_password=user.has_password,
            disabled=user.disabled,
            created_at=user.created_at,
        )


class TokenIn(Wire):
    name: str = Field(default="", max_length=200)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    user: str | None = Field(default=None, description="Another user's (admins only)")


class TokenOut(Wire):
    key: str
    user: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls(
            key=info.key,
            user=info.user,
            name=info.name,
            created_at=info.created_at,
            expires_at=info.expires_at,
            last_used_at=info.last_used_at,
            revoked_at=info.revoked_at,
        )


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The token itself: shown this once, never stored")


class MemberIn(Wire):
    role: RoleName


class MemberOut(Wire):
    user: str
    role: RoleName
