"""Users, API tokens, roles on projects and UI sessions: who a caller is and what they hold.

A token is ``cairn_<key>_<secret>``: the key (64 bits, public) finds the row, the secret
(256 bits) proves possession and is stored only as its SHA-256, which a high-entropy
secret makes as safe as a slow hash. Passwords, chosen by people, get scrypt.
Every change is an audit event in the same transaction, actor included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from cairn.domain.access import (
    Principal,
    Role,
    TokenInfo,
    User,
    check_password,
    check_user_name,
)
from cairn.domain.errors import AlreadyExists, Invalid, NotFound, RateLimited, Unauthenticated
from cairn.domain.records import now_ms
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.repositories.identities import Credential, IdentityRepository
from cairn.store.repositories.projects import ProjectRepository

TOKEN_PREFIX = "cairn_"
SESSION_TTL_S = 12 * 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# Compared against when the user does not exist, so a wrong name costs what a wrong
# password costs and timing does not tell which names exist.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt$16384$8$1${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def split_token(token: str) -> tuple[str, str] | None:
    """``(key, secret)`` of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    key, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if len(key) != 16 or not secret or len(secret) > 100:
        return None
    return key, secret


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``token`` is shown once and never stored."""

    token: str
    info: TokenInfo


class FailedSignIns:
    """Failed sign-ins per client, in a sliding window: past ``limit`` the client waits.

    Kept in the server's memory: a restart forgets, and each worker process counts its
    own. What it stops is guessing at speed, which this is enough for.
    """

    def __init__(self, limit: int = 10, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def check(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) >= self.limit:
                wait = max(1, int(times[0] + self.window_s - now) + 1)
                raise RateLimited(
                    f"too many failed sign-ins from this address; try again in {wait} s",
                    details={"retry_after_s": wait},
                )

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # forget clients that have gone quiet
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]


class IdentityService:
    def __init__(self, db: Database, sign_ins: FailedSignIns | None = None) -> None:
        self.db = db
        self.sign_ins = sign_ins or FailedSignIns()

    # users

    def create_user(
        self, name: str, *, password: str | None = None, admin: bool = False, actor: str | None
    ) -> User:
        check_user_name(name)
        hashed = hash_password(check_password(password)) if password is not None else None
        with self.db.write() as tx:
            repo = IdentityRepository(tx.conn)
            if repo.find_user(name) is not None:
                raise AlreadyExists(f"user {name!r} already exists", details={"user": name})
            repo.add_user(name, hashed, admin)
            after = {"name": name, "admin": admin, "password": hashed is not None}
            EventRepository(tx.conn).add_many(
                actor, [NewEvent("user.created", "user", name, after=after)]
            )
            user = repo.find_user(name)
        assert user is not None
        return user

    def users(self) -> list[User]:
        with self.db.read() as conn:
            return IdentityRepository(conn).users()

    def has_users(self) -> bool:
        with self.db.read() as conn:
            return IdentityRepository(conn).count_users() > 0

    def set_password(self, name: str, password: str, *, actor: str | None) -> None:
        hashed = hash_password(check_password(password))
        self._change_user(name, "user.password_set", actor, password_hash=hashed)

    def disable(self, name: str, *, actor: str | None) -> None:
        self._change_user(name, "user.disabled", actor, disabled_at=now_ms())

    def _change_user(self, name: str, action: str, actor: str | None, **values: object) -> None:
        with self.db.write() as tx:
            repo = IdentityRepository(tx.conn)
            user = repo.find_user(name)
            if user is None:
                raise NotFound(f"user {name!r} does not exist", details={"user": name})
            repo.update_user(user.id, **values)
            shown = {k: v for k, v in values.items() if k != "password_hash"}
            EventRepository(tx.conn).add_many(actor, [NewEvent(action, "user", name, after=shown)])

    # roles

    def grant(self, project: str, user: str, role: Role, *, actor: str | None) -> None:
        with self.db.write() as tx:
            project_row = ProjectRepository(tx.conn).get(project)
            repo = IdentityRepository(tx.conn)
            found = repo.find_user(user)
            if found is None:
                raise NotFound(f"user {user!r} does not exist", details={"user": user})
            before = repo.set_role(project_row.id, found.id, role)
            event = NewEvent(
                "project.role_granted",
                "project",
                project,
                project_row.id,
                before={"user": user, "role": before.label} if before else None,
                after={"user": user, "role": role.label},
            )
            EventRepository(tx.conn).add_many(actor, [event])

    def revoke_role(self, project: str, user: str, *, actor: str | None) -> None:
        with self.db.write() as tx:
            project_row = ProjectRepository(tx.conn).get(project)
            repo = IdentityRepository(tx.conn)
            found = repo.find_user(user)
            before = repo.remove_role(project_row.id, found.id) if found else None
            if before is None:
                raise NotFound(
                    f"user {user!r} has no role on project {project!r}",
                    details={"user": user, "project": project},
                )
            event = NewEvent(
                "project.role_revoked",
                "project",
                project,
                project_row.id,
                before={"user": user, "role": before.label},
            )
            EventRepository(tx.conn).add_many(actor, [event])

    def members(self, project: str) -> list[tuple[str, Role]]:
        with self.db.read() as conn:
            return IdentityRepository(conn).members(ProjectRepository(conn).get(project).id)

    # tokens

    def create_token(
        self, user: str, name: str = "", *, expires_in_days: int | None = None, actor: str | None
    ) -> NewToken:
        if len(name) > 200:
            raise Invalid("token name must be at most 200 characters", field="name")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise Invalid("expires_in_days must be 1 to 3650", field="expires_in_days")
        key, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        expires = now_ms() + expires_in_days * 86_400_000 if expires_in_days else None
        with self.db.write() as tx:
            repo = IdentityRepository(tx.conn)
            found = repo.find_user(user)
            if found is None:
                raise NotFound(f"user {user!r} does not exist", details={"user": user})
            repo.add_token(found.id, key, _sha256(secret), name, expires)
            after = {"key": key, "name": name, "user": user}
            EventRepository(tx.conn).add_many(
                actor, [NewEvent("token.created", "user", user, after=after)]
            )
            info = next(t for t in repo.tokens(found.id) if t.key == key)
        return NewToken(f"{TOKEN_PREFIX}{key}_{secret}", info)

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self.db.read() as conn:
            repo = IdentityRepository(conn)
            if user is None:
                return repo.tokens()
            found = repo.find_user(user)
            return repo.tokens(found.id) if found else []

    def revoke_token(self, key: str, *, actor: str | None, caller: Principal | None = None) -> None:
        """Revoke at once. With ``caller`` (a request's): their own token, or any if admin."""
        with self.db.write() as tx:
            repo = IdentityRepository(tx.conn)
            owner = repo.token_owner(key)
            if owner is None:
                raise NotFound(f"no token {key!r}", details={"token": key})
            if caller is not None and owner != caller.name:
                caller.require_admin()
            if not repo.revoke_token(key):
                raise NotFound(f"token {key!r} is already revoked", details={"token": key})
            EventRepository(tx.conn).add_many(
                actor, [NewEvent("token.revoked", "user", owner, after={"key": key})]
            )

    # authentication

    def _principal(self, credential: Credential, via: str) -> Principal:
        with self.db.read() as conn:
            roles = IdentityRepository(conn).roles_of(credential.user_id)
        return Principal(credential.user, credential.admin, roles, via=via)

    def authenticate_token(self, token: str, client: str) -> Principal:
        """The token's owner, or ``Unauthenticated`` (the token itself is never echoed)."""
        self.sign_ins.check(client)
        parts = split_token(token)
        credential = None
        if parts is not None:
            with self.db.read() as conn:
                credential = IdentityRepository(conn).token_credential(parts[0])
        good = (
            parts is not None
            and credential is not None
            and hmac.compare_digest(credential.secret_hash, _sha256(parts[1]))
        )
        if not good or credential is None or parts is None:
            self.sign_ins.failed(client)
            raise Unauthenticated("the API token is not valid or has been revoked")
        if credential.expired:
            raise Unauthenticated("the API token has expired: create a new one")
        if credential.last_used_ms is None or credential.last_used_ms < now_ms() - 60_000:
            with self.db.write() as tx:  # at most once a minute a token, for `tokens ls`
                IdentityRepository(tx.conn).touch_token(parts[0])
        return self._principal(credential, "token")

    def sign_in(self, name: str, password: str, client: str) -> str:
        """A new session's cookie value (kept only as its SHA-256), or ``Unauthenticated``."""
        self.sign_ins.check(client)
        with self.db.read() as conn:
            found = IdentityRepository(conn).password_hash(name)
        user, stored = found if found else (None, None)
        ok = verify_password(password, stored or _DUMMY_HASH)
        if user is None or stored is None or user.disabled or not ok:
            self.sign_ins.failed(client)
            raise Unauthenticated("wrong user name or password")
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.db.write() as tx:
            repo = IdentityRepository(tx.conn)
            repo.delete_expired_sessions()
            repo.add_session(user.id, _sha256(cookie), csrf, now_ms() + SESSION_TTL_S * 1000)
            EventRepository(tx.conn).add_many(
                user.name, [NewEvent("user.signed_in", "user", user.name)]
            )
        return cookie

    def session(self, cookie: str) -> tuple[Principal, str] | None:
        """The session's user and its CSRF token; None when unknown or expired."""
        if not 20 <= len(cookie) <= 100:
            return None
        with self.db.read() as conn:
            credential = IdentityRepository(conn).session_credential(_sha256(cookie))
        if credential is None or credential.expired:
            return None
        return self._principal(credential, "session"), credential.csrf

    def sign_out(self, cookie: str) -> None:
        with self.db.write() as tx:
            IdentityRepository(tx.conn).delete_session(_sha256(cookie))
