"""CSRF protection for the UI's forms: a random token in a cookie, echoed in a hidden field.

A form POST is accepted only when its ``csrf`` field equals the cookie. Another site can
make a browser send the cookie but cannot read it, so it cannot fill in the field. The
cookie is ``SameSite=Strict`` as well. Sign-in, when it comes, keeps this as it is.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from fastapi import Request, Response

from cairn.domain.errors import Forbidden, Invalid

COOKIE = "cairn_csrf"
FIELD = "csrf"
MAX_FORM_BYTES = 64 * 1024


def token_of(request: Request) -> tuple[str, bool]:
    """The request's token and whether it is new (then the response must set it)."""
    token = request.cookies.get(COOKIE)
    if token and 20 <= len(token) <= 100:
        return token, False
    return secrets.token_urlsafe(32), True


def set_cookie(response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")


def check(request: Request, submitted: str | None) -> None:
    """Raise ``Forbidden`` unless the form echoed the cookie's token."""
    cookie = request.cookies.get(COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise Forbidden(
            "this form has expired or did not come from Cairn: reload the page and try again"
        )


async def checked_form(request: Request) -> dict[str, str]:
    """The POSTed form's fields (first value each), once its CSRF token checks out."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Invalid("the form is too large", field="form")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    check(request, form.get(FIELD, [""])[0])
    return {key: values[0] for key, values in form.items()}
