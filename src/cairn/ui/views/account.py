"""Signing in and out, and the page where a signed-in user makes and revokes API tokens.

The session is a random secret in a ``Secure``, ``HttpOnly``, ``SameSite=Lax`` cookie;
the server keeps only its SHA-256. Every form here carries the CSRF token (``csrf.py``),
the sign-in form included, so another site cannot sign a browser in as someone else.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cairn.auth import SESSION_COOKIE, On, client_of, guard, principal
from cairn.domain.errors import CairnError, Invalid
from cairn.services.identities import SESSION_TTL_S, IdentityService
from cairn.ui import csrf
from cairn.ui.render import PageRoute, local_target, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _identities(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.identities
    return service


def _login_page(request: Request, target: str, error: str = "", status: int = 200) -> Response:
    return render(
        request,
        "login.html",
        status,
        project=None,
        crumbs=[("Sign in", None)],
        target=local_target(target),
        error=error,
        auth=request.app.state.settings.auth,
    )


@router.get("/login", response_class=HTMLResponse, dependencies=[guard(On.PUBLIC)])
def login_page(request: Request, next: str = "/") -> Response:
    return _login_page(request, next)


@router.post("/login", dependencies=[guard(On.PUBLIC)])
async def login(request: Request) -> Response:
    form = await csrf.checked_form(request)
    target = local_target(form.get("next"))
    if not request.app.state.settings.auth:
        return RedirectResponse(target, status_code=303)  # open server: nothing to sign in to
    try:
        cookie = await run_in_threadpool(
            _identities(request).sign_in,
            form.get("name", ""),
            form.get("password", ""),
            client_of(request),
        )
    except CairnError as exc:
        status = request.app.state.ui.status_for(exc.code)
        return _login_page(request, target, exc.message, status)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_TTL_S,
        httponly=True,
        secure=request.app.state.settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return response


@router.post("/logout", dependencies=[guard(On.PUBLIC)])
async def logout(request: Request) -> Response:
    await csrf.checked_form(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(_identities(request).sign_out, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _tokens_page(request: Request, created: str = "", status: int = 200) -> Response:
    who = principal(request)
    if who.name is None:
        raise Invalid("this server runs without accounts, so there are no tokens to manage")
    return render(
        request,
        "tokens.html",
        status,
        project=None,
        crumbs=[("API tokens", None)],
        twin="/api/v1/tokens",
        tokens=_identities(request).tokens(who.name),
        created=created,
    )


@router.get("/tokens", response_class=HTMLResponse, dependencies=[guard(On.SIGNED_IN)])
def tokens_page(request: Request) -> Response:
    return _tokens_page(request)


@router.post("/tokens", dependencies=[guard(On.SIGNED_IN)])
async def create_token(request: Request) -> Response:
    form = await csrf.checked_form(request)
    who = principal(request)
    days = form.get("expires_in_days", "").strip()
    if days and not days.isdigit():
        raise Invalid("expires in: a whole number of days", field="expires_in_days")
    made = await run_in_threadpool(
        lambda: _identities(request).create_token(
            who.name or "",
            form.get("name", "").strip(),
            expires_in_days=int(days) if days else None,
            actor=who.name,
        )
    )
    # Shown on this response only (never in a URL, never stored).
    return _tokens_page(request, created=made.token)


@router.post("/tokens/{key}/revoke", dependencies=[guard(On.SIGNED_IN)])
async def revoke_token(request: Request, key: str) -> Response:
    await csrf.checked_form(request)
    who = principal(request)
    await run_in_threadpool(
        lambda: _identities(request).revoke_token(key, actor=who.name, caller=who)
    )
    return RedirectResponse("/tokens", status_code=303)
