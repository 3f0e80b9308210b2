"""Rendering: the Jinja2 environment, the page route that shows errors as pages, and the
small formatting filters the templates share (numbers, times, sizes, URLs)."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cairn._version import __version__
from cairn.domain.errors import CairnError, Unauthenticated
from cairn.ui import csrf

if TYPE_CHECKING:
    from cairn.ui.vendor import PlotlyAsset


@dataclass(frozen=True)
class UiState:
    """What the pages share, kept on ``app.state.ui`` (no module globals)."""

    env: Environment
    status_for: Callable[[str], int]
    plotly: PlotlyAsset


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("cairn.ui", "templates"),
        autoescape=select_autoescape(("html",)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt_num,
        exact=fmt_exact,
        size=fmt_size,
        ago=fmt_ago,
        stamp=fmt_stamp,
        duration=fmt_duration,
        q=quote_segment,
        short=lambda text, n=8: (text or "")[:n],
    )
    env.globals.update(url=url, version=__version__, asset=asset)
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page; every page carries the CSRF cookie its forms echo back."""
    ui: UiState = request.app.state.ui
    token, fresh = csrf.token_of(request)
    html = ui.env.get_template(template).render(
        request=request,
        csrf_token=token,
        who=getattr(request.state, "principal", None),
        plotly_url=ui.plotly.url,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if fresh:
        csrf.set_cookie(response, token)
    return response


def error_page(request: Request, code: str, message: str, status: int) -> HTMLResponse:
    return render(
        request, "error.html", status, code=code, message=message, project=None, crumbs=[]
    )


def local_target(target: str | None) -> str:
    """A path on this site to go back to, never another site (``//evil``, ``https:``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(url("/login", next=local_target(here)), status_code=303)


class PageRoute(APIRoute):
    """A route whose errors become pages: a missing run is a 404 page, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated:
                return sign_in_redirect(request)
            except CairnError as exc:
                status = request.app.state.ui.status_for(exc.code)
                message = exc.message if status < 500 else "Something went wrong on the server."
                return error_page(request, exc.code, message, status)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
                )
                return error_page(request, "invalid", f"Bad address: {problems}", 400)

        return page


# -- filters ---------------------------------------------------------------------------


def fmt_num(value: object) -> str:
    """A number for people: four significant digits, thousands separated."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    size = abs(value)
    if size >= 1e6 or size < 1e-4:
        return f"{value:.3e}"
    if size >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def fmt_exact(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def fmt_size(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{value} B"  # pragma: no cover


def fmt_stamp(value: datetime | str | None) -> str:
    """A UTC time to the second; ISO strings (as in model cards) too."""
    if value is None or value == "":
        return "—"
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    assert isinstance(when, datetime)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    seconds = ((now or datetime.now(tz=UTC)) - value).total_seconds()
    if seconds < 0:
        return "just now"
    for limit, size, unit in (
        (60, 1, "s"),
        (3600, 60, "min"),
        (86400, 3600, "h"),
        (86400 * 45, 86400, "d"),
    ):
        if seconds < limit:
            return (
                "just now" if unit == "s" and seconds < 5 else f"{int(seconds // size)} {unit} ago"
            )
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def asset(name: str) -> str:
    """Our own static file, its URL changing with each release so caches stay right."""
    return f"/ui/static/{name}?v={__version__}"


def quote_segment(text: object) -> str:
    return quote(str(text), safe="")


def url(path: str, params: Mapping[str, object] | None = None, **more: object) -> str:
    """``path`` with a query string; None and empty values are left out, lists repeat."""
    pairs: list[tuple[str, str]] = []
    for key, value in {**(params or {}), **more}.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, str(v)) for v in values if v is not None and v != "")
    return f"{path}?{urlencode(pairs)}" if pairs else path


def split_list(values: Sequence[str]) -> list[str]:
    """Repeated and comma-separated values, in order, once each: ``a,b`` + ``c``."""
    seen: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            if part.strip():
                seen.setdefault(part.strip(), None)
    return list(seen)
