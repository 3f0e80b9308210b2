"""Server settings: one object, read from arguments or ``CAIRN_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Settings:
    store: str = field(default_factory=lambda: os.environ.get("CAIRN_STORE", "./.cairn"))
    artifacts: str | None = field(default_factory=lambda: os.environ.get("CAIRN_ARTIFACTS"))
    host: str = field(default_factory=lambda: os.environ.get("CAIRN_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(os.environ.get("CAIRN_PORT", "5000")))
    workers: int = field(default_factory=lambda: int(os.environ.get("CAIRN_WORKERS", "1")))
    # The server never upgrades a store by itself: other processes may use the old schema.
    auto_upgrade: bool = field(default_factory=lambda: _env_bool("CAIRN_AUTO_UPGRADE", False))
    # A running run with no news for this long is marked killed (0: never).
    heartbeat_timeout_s: float = field(
        default_factory=lambda: float(os.environ.get("CAIRN_HEARTBEAT_TIMEOUT", "300"))
    )
    max_request_bytes: int = field(
        default_factory=lambda: int(os.environ.get("CAIRN_MAX_REQUEST_BYTES", str(64 << 20)))
    )
    # With an S3 artifact store, hand clients presigned URLs so large uploads go straight
    # to the object store (turn off when clients cannot reach it).
    presigned_uploads: bool = field(
        default_factory=lambda: _env_bool("CAIRN_PRESIGNED_UPLOADS", True)
    )
    # Require a signed-in user or an API token on every route but /healthz. Off only for
    # a single user on loopback (``cairn server`` turns it on otherwise).
    auth: bool = field(default_factory=lambda: _env_bool("CAIRN_AUTH", False))
    # The session cookie is ``Secure``: browsers send it over HTTPS, and to localhost.
    cookie_secure: bool = field(default_factory=lambda: _env_bool("CAIRN_COOKIE_SECURE", True))
