"""The one error tree of Cairn.

Every failure a user can cause or meet is one of these classes, each with a stable
``code``. The API maps codes to HTTP status in one function (``cairn.api.errors``) and
renders ``{"error": {"code", "message", "details"}}``; the HTTP client turns that
envelope back into the same class, so ``except NotFound`` works embedded and remote.

    CairnError                 code        HTTP
    ├── Invalid                invalid     400   bad input; details name the field
    ├── Unauthenticated        unauthenticated 401
    ├── Forbidden              forbidden   403
    ├── NotFound               not_found   404
    ├── AlreadyExists          already_exists 409
    ├── Conflict               conflict    409   e.g. a param logged again with another value
    ├── MethodNotAllowed       method_not_allowed 405 (HTTP only)
    ├── TooLarge               too_large   413
    ├── RateLimited            rate_limited 429  too many failed sign-ins
    ├── SchemaOutdated         schema_outdated 503  the store needs ``cairn db upgrade``
    ├── CorruptBlob            corrupt     500   stored bytes no longer match their digest
    └── Unavailable            unavailable 503   the server cannot be reached (client side)
"""

from __future__ import annotations

from typing import Any


class CairnError(Exception):
    """Base class: a message for people, a stable code for programs, details for both."""

    code = "internal"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class Invalid(CairnError):
    """Bad input. ``details["field"]`` names what is wrong."""

    code = "invalid"

    def __init__(
        self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        merged = dict(details or {})
        if field is not None:
            merged["field"] = field
        super().__init__(message, details=merged)

    @property
    def field(self) -> str | None:
        value = self.details.get("field")
        return str(value) if value is not None else None


class Unauthenticated(CairnError):
    code = "unauthenticated"


class Forbidden(CairnError):
    code = "forbidden"


class NotFound(CairnError):
    code = "not_found"


class AlreadyExists(CairnError):
    code = "already_exists"


class Conflict(CairnError):
    code = "conflict"


class MethodNotAllowed(CairnError):
    code = "method_not_allowed"


class TooLarge(CairnError):
    code = "too_large"


class RateLimited(CairnError):
    """Too many failed sign-ins from one place: ``details["retry_after_s"]`` says when."""

    code = "rate_limited"


class SchemaOutdated(CairnError):
    code = "schema_outdated"


class Unavailable(CairnError):
    code = "unavailable"


class CorruptBlob(CairnError):
    """A stored blob's bytes no longer hash to its digest: damaged at rest or in transit."""

    code = "corrupt"


# Refusals that the same request may get past later, unchanged: the server back, or a
# credential fixed by someone. What is queued to be sent is kept and resent on these.
RESENDABLE: tuple[type[CairnError], ...] = (Unavailable, Unauthenticated, Forbidden)


ERRORS_BY_CODE: dict[str, type[CairnError]] = {
    cls.code: cls
    for cls in (
        CairnError,
        Invalid,
        Unauthenticated,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        AlreadyExists,
        Conflict,
        TooLarge,
        RateLimited,
        SchemaOutdated,
        Unavailable,
        CorruptBlob,
    )
}


def error_from_dict(payload: dict[str, Any]) -> CairnError:
    """Rebuild the error a server sent (its ``error`` object) as the same class."""
    cls = ERRORS_BY_CODE.get(str(payload.get("code")), CairnError)
    message = str(payload.get("message") or "error")
    details = payload.get("details") or {}
    if cls is Invalid:
        return Invalid(message, details=details)
    return cls(message, details=details)
