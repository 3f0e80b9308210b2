"""Users, API tokens, project memberships and UI sessions, as rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, delete, func, select, update

from cairn.domain.access import Role, TokenInfo, User
from cairn.domain.records import ms_to_datetime, now_ms
from cairn.store.tables import ApiTokenRow, ProjectMemberRow, ProjectRow, SessionRow, UserRow

_U = cast(Table, UserRow.__table__)
_T = cast(Table, ApiTokenRow.__table__)
_M = cast(Table, ProjectMemberRow.__table__)
_S = cast(Table, SessionRow.__table__)
_P = cast(Table, ProjectRow.__table__)


@dataclass(frozen=True, slots=True)
class Credential:
    """What a token or session resolves to, with what is needed to check it."""

    user_id: int
    user: str
    admin: bool
    secret_hash: str
    expired: bool
    csrf: str = ""
    last_used_ms: int | None = None


def _user(row: object) -> User:
    created = ms_to_datetime(row.created_at)  # type: ignore[attr-defined]
    assert created is not None
    return User(
        row.id,  # type: ignore[attr-defined]
        row.name,  # type: ignore[attr-defined]
        bool(row.admin),  # type: ignore[attr-defined]
        row.password_hash is not None,  # type: ignore[attr-defined]
        created,
        row.disabled_at is not None,  # type: ignore[attr-defined]
    )


class IdentityRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # users

    def add_user(self, name: str, password_hash: str | None, admin: bool) -> int:
        stmt = _U.insert().values(
            name=name, password_hash=password_hash, admin=admin, created_at=now_ms()
        )
        return int(self.conn.execute(stmt.returning(_U.c.id)).scalar_one())

    def find_user(self, name: str) -> User | None:
        found = self.password_hash(name)
        return found[0] if found else None

    def password_hash(self, name: str) -> tuple[User, str | None] | None:
        """The user and their stored password hash (None: token-only)."""
        row = self.conn.execute(select(_U).where(_U.c.name == name)).first()
        return (_user(row), row.password_hash) if row else None

    def users(self) -> list[User]:
        return [_user(r) for r in self.conn.execute(select(_U).order_by(_U.c.name))]

    def count_users(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(_U)).scalar_one())

    def update_user(self, user_id: int, **values: object) -> None:
        self.conn.execute(update(_U).where(_U.c.id == user_id).values(**values))

    # roles

    def roles_of(self, user_id: int) -> dict[str, Role]:
        stmt = (
            select(_P.c.name, _M.c.role)
            .join(_P, _P.c.id == _M.c.project_id)
            .where(_M.c.user_id == user_id)
        )
        return {name: Role(role) for name, role in self.conn.execute(stmt)}

    def set_role(self, project_id: int, user_id: int, role: Role) -> Role | None:
        """Grant ``role``; the role held before, if any."""
        where = (_M.c.project_id == project_id) & (_M.c.user_id == user_id)
        before = self.conn.execute(select(_M.c.role).where(where)).scalar()
        if before is None:
            self.conn.execute(
                _M.insert().values(project_id=project_id, user_id=user_id, role=int(role))
            )
        else:
            self.conn.execute(update(_M).where(where).values(role=int(role)))
        return Role(before) if before is not None else None

    def remove_role(self, project_id: int, user_id: int) -> Role | None:
        where = (_M.c.project_id == project_id) & (_M.c.user_id == user_id)
        before = self.conn.execute(select(_M.c.role).where(where)).scalar()
        self.conn.execute(delete(_M).where(where))
        return Role(before) if before is not None else None

    def members(self, project_id: int) -> list[tuple[str, Role]]:
        stmt = (
            select(_U.c.name, _M.c.role)
            .join(_U, _U.c.id == _M.c.user_id)
            .where(_M.c.project_id == project_id)
            .order_by(_U.c.name)
        )
        return [(name, Role(role)) for name, role in self.conn.execute(stmt)]

    # tokens

    def add_token(
        self, user_id: int, key: str, secret_hash: str, name: str, expires_at: int | None
    ) -> int:
        stmt = _T.insert().values(
            user_id=user_id,
            key=key,
            secret_hash=secret_hash,
            name=name,
            created_at=now_ms(),
            expires_at=expires_at,
        )
        return int(self.conn.execute(stmt.returning(_T.c.id)).scalar_one())

    def token_credential(self, key: str) -> Credential | None:
        """The live token with this public key, with its owner (none if revoked or disabled)."""
        stmt = (
            select(
                _T.c.secret_hash,
                _T.c.expires_at,
                _T.c.last_used_at,
                _U.c.id,
                _U.c.name,
                _U.c.admin,
            )
            .join(_U, _U.c.id == _T.c.user_id)
            .where(_T.c.key == key, _T.c.revoked_at.is_(None), _U.c.disabled_at.is_(None))
        )
        row = self.conn.execute(stmt).first()
        if row is None:
            return None
        expired = row.expires_at is not None and row.expires_at <= now_ms()
        return Credential(
            row.id,
            row.name,
            bool(row.admin),
            row.secret_hash,
            expired,
            last_used_ms=row.last_used_at,
        )

    def touch_token(self, key: str) -> None:
        self.conn.execute(update(_T).where(_T.c.key == key).values(last_used_at=now_ms()))

    def tokens(self, user_id: int | None = None) -> list[TokenInfo]:
        stmt = select(_T, _U.c.name.label("user")).join(_U, _U.c.id == _T.c.user_id)
        if user_id is not None:
            stmt = stmt.where(_T.c.user_id == user_id)
        return [
            TokenInfo(
                r.id,
                r.key,
                r.user,
                r.name,
                cast(datetime, ms_to_datetime(r.created_at)),
                ms_to_datetime(r.expires_at),
                ms_to_datetime(r.last_used_at),
                ms_to_datetime(r.revoked_at),
            )
            for r in self.conn.execute(stmt.order_by(_T.c.id))
        ]

    def token_owner(self, key: str) -> str | None:
        stmt = select(_U.c.name).join(_T, _T.c.user_id == _U.c.id).where(_T.c.key == key)
        return cast(str | None, self.conn.execute(stmt).scalar())

    def revoke_token(self, key: str) -> bool:
        """True when a live token was revoked by this call."""
        stmt = (
            update(_T).where(_T.c.key == key, _T.c.revoked_at.is_(None)).values(revoked_at=now_ms())
        )
        return bool(self.conn.execute(stmt).rowcount)

    # sessions

    def add_session(self, user_id: int, secret_hash: str, csrf: str, expires_at: int) -> None:
        self.conn.execute(
            _S.insert().values(
                user_id=user_id,
                secret_hash=secret_hash,
                csrf=csrf,
                created_at=now_ms(),
                expires_at=expires_at,
            )
        )

    def session_credential(self, secret_hash: str) -> Credential | None:
        stmt = (
            select(_S.c.secret_hash, _S.c.expires_at, _S.c.csrf, _U.c.id, _U.c.name, _U.c.admin)
            .join(_U, _U.c.id == _S.c.user_id)
            .where(_S.c.secret_hash == secret_hash, _U.c.disabled_at.is_(None))
        )
        row = self.conn.execute(stmt).first()
        if row is None:
            return None
        expired = row.expires_at <= now_ms()
        return Credential(row.id, row.name, bool(row.admin), row.secret_hash, expired, row.csrf)

    def delete_session(self, secret_hash: str) -> None:
        self.conn.execute(delete(_S).where(_S.c.secret_hash == secret_hash))

    def delete_expired_sessions(self) -> None:
        self.conn.execute(delete(_S).where(_S.c.expires_at <= now_ms()))
