"""Who is calling, and whether they may: one guard on every route and page.

The caller is found once a request: an ``Authorization: Bearer`` API token, else the UI's
session cookie, else (only on a server run without authentication) the open single user.
Every route declares a ``Guard`` naming the role it needs and where the project comes
from; ``check_guarded`` refuses to build an app with a route that declares none.

A request authenticated by its session cookie and not a read (GET, HEAD) must carry the
session's CSRF token in ``X-CSRF-Token``: another site can make a browser send the
cookie, never read the token. A bearer token is not sent by browsers on their own.
"""

from __future__ import annotations

import enum
import hmac
import threading
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute, APIRouter
from starlette.concurrency import run_in_threadpool

from cairn.domain.access import Principal, Role
from cairn.domain.errors import Forbidden, Invalid, NotFound, Unauthenticated
from cairn.domain.refs import parse_ref
from cairn.services.identities import IdentityService
from cairn.store.repositories.runs import RunRepository

SESSION_COOKIE = "cairn_session"
CSRF_HEADER = "x-csrf-token"
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class On(enum.Enum):
    """Where a guard finds the project a request touches."""

    PUBLIC = "public"  # no one need be signed in (health, the sign-in page)
    SIGNED_IN = "signed_in"  # any signed-in user; the route shows only what they may see
    ADMIN = "admin"  # server-wide administration
    PATH = "path"  # the ``project`` (or ``/projects/{name}``) path parameter
    ALIAS = "alias"  # as PATH; a protected alias of the model needs a maintainer
    RUN = "run"  # the project of the ``run_id`` path parameter
    SOMEWHERE = "somewhere"  # content-addressed bytes: the role on any one project
    HANDLER = "handler"  # named in the body: the route checks, with ``principal``


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _open_caller(request: Request) -> Principal:
    actor = request.headers.get("x-cairn-actor")
    return Principal.open(actor[:250] if actor else None)


def _authenticate(request: Request) -> Principal:
    if not request.app.state.settings.auth:
        return _open_caller(request)
    identities: IdentityService = request.app.state.identities
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <API token>'")
        return identities.authenticate_token(token.strip(), client_of(request))
    cookie = request.cookies.get(SESSION_COOKIE)
    found = identities.session(cookie) if cookie else None
    if found is None:
        raise Unauthenticated(
            "sign in, or send an API token (Authorization: Bearer …; the SDK reads CAIRN_TOKEN)"
        )
    who, csrf = found
    if request.method not in READS and request.url.path.startswith("/api/"):
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise Forbidden("a change made with a session cookie needs its X-CSRF-Token header")
    return who


def principal(request: Request) -> Principal:
    """The caller of this request (found once, then kept on ``request.state``)."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is None:
        found = _authenticate(request)
        request.state.principal = found
    return found


PrincipalDep = Annotated[Principal, Depends(principal)]


class RunProjects:
    """Run id -> project name, remembered: a run never changes project."""

    def __init__(self, db: Any, capacity: int = 100_000) -> None:
        self.db = db
        self.capacity = capacity
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def of(self, run_ids: Iterable[str]) -> dict[str, str]:
        ids = set(run_ids)
        found = {i: self._known[i] for i in ids if i in self._known}
        missing = ids - found.keys()
        if missing:
            with self.db.read() as conn:
                fresh = RunRepository(conn).projects_of(missing)
            with self._lock:
                if len(self._known) + len(fresh) > self.capacity:
                    self._known.clear()
                self._known.update(fresh)
            found.update(fresh)
        return found

    def project(self, run_id: str) -> str:
        found = self.of([run_id]).get(run_id)
        if found is None:
            raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})
        return found


def _alias_role(request: Request, project: str, role: Role) -> Role:
    """Moving a protected alias (production, say) is a maintainer's decision."""
    params = request.path_params
    try:
        model = request.app.state.registry.get_model(params["name"], project)
    except NotFound:
        return role  # the route answers 404
    return Role.MAINTAINER if params["alias"] in model.protected_aliases else role


class Guard:
    """A route's policy: the role it needs (none: signed in is enough) and where the
    project comes from. As a dependency it returns the caller."""

    def __init__(self, on: On, role: Role | None = None) -> None:
        self.on = on
        self.role = role

    def __repr__(self) -> str:
        return f"Guard({self.on.value}, {self.role.label if self.role else None})"

    async def __call__(self, request: Request) -> Principal | None:
        """Async, so an open server (or an admin) costs no worker-thread hop; what needs
        the database runs in the thread pool."""
        if self.on is On.PUBLIC:
            return None
        if request.app.state.settings.auth:
            who = await run_in_threadpool(principal, request)
        else:
            who = principal(request)  # the open single user: no database
        if not who.admin:  # an admin may do everything: no lookups on the hot paths
            await run_in_threadpool(self.check, request, who)
        return who

    def check(self, request: Request, who: Principal) -> None:
        role = self.role or Role.VIEWER
        if self.on is On.ADMIN:
            who.require_admin()
        elif self.on is On.SOMEWHERE:
            who.require_somewhere(role)
        elif self.on is On.ALIAS:
            project = self.project_of(request)
            who.require(project, _alias_role(request, project, role))
        elif self.on in (On.PATH, On.RUN):
            who.require(self.project_of(request), role)

    def project_of(self, request: Request) -> str:
        if self.on in (On.PATH, On.ALIAS):
            params = request.path_params
            return str(params.get("project") or params["name"])
        runs: RunProjects = request.app.state.run_projects
        return runs.project(str(request.path_params["run_id"]))


def guard(on: On, role: Role | None = None) -> Any:
    """``dependencies=[guard(On.PATH, Role.EDITOR)]`` on a route."""
    return Depends(Guard(on, role))


def guard_of(route: APIRoute) -> Guard | None:
    for dependency in route.dependencies:
        if isinstance(dependency.dependency, Guard):
            return dependency.dependency
    return None


def check_guarded(routers: Iterable[APIRouter]) -> None:
    """Refuse to build an app with a route that declares no policy."""
    bare = [
        f"{sorted(route.methods or ())} {route.path}"
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and guard_of(route) is None
    ]
    if bare:
        raise RuntimeError("routes without a Guard (cairn.auth): " + ", ".join(bare))


def require_projects(who: Principal, projects: Iterable[str], role: Role) -> None:
    """For ``On.HANDLER`` routes: the caller holds ``role`` on every project named."""
    for project in sorted(set(projects)):
        who.require(project, role)


def install_auth(app: FastAPI, identities: IdentityService, db: Any) -> None:
    app.state.identities = identities
    app.state.run_projects = RunProjects(db)


def require_project_or_admin(who: Principal, project: str | None, role: Role) -> None:
    """A project named: ``role`` on it; none (every project, or server-wide): an admin."""
    if project is None:
        who.require_admin()
    else:
        who.require(project, role)


def require_refs(who: Principal, refs: Iterable[str | None], project: str, role: Role) -> None:
    """References may name another project (``other/wine:2``): the caller must hold
    ``role`` there too. A malformed reference is left for the route to report."""
    if who.admin:
        return
    named: set[str] = set()
    for text in refs:
        if not text:
            continue
        try:
            ref = parse_ref(text)
        except Invalid:
            continue
        named.add(ref.project or project)
    require_projects(who, named, role)
