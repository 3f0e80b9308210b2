"""Who am I, users (admins), API tokens (one's own; admins: anyone's), project members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard
from cairn.domain.access import Principal, Role
from cairn.domain.errors import Invalid
from cairn.schemas.identities import (
    MemberIn,
    MemberOut,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    WhoAmIOut,
)
from cairn.services.identities import IdentityService

router = APIRouter(tags=["identities"], route_class=ApiRoute)


def get_identities(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.identities
    return service


IdentitiesDep = Annotated[IdentityService, Depends(get_identities)]
TokenKey = Annotated[str, Path(min_length=1, max_length=32)]


def _own_name(who: Principal) -> str:
    if who.name is None:
        raise Invalid("this server runs without accounts: name the user", field="user")
    return who.name


@router.get("/whoami", response_model=WhoAmIOut, dependencies=[guard(On.SIGNED_IN)])
def whoami(who: PrincipalDep) -> WhoAmIOut:
    """The caller: name, admin or not, roles per project."""
    return WhoAmIOut.of(who)


@router.get("/users", response_model=list[UserOut], dependencies=[guard(On.ADMIN)])
def list_users(identities: IdentitiesDep) -> list[UserOut]:
    return [UserOut.of(u) for u in identities.users()]


@router.post("/users", response_model=UserOut, status_code=201, dependencies=[guard(On.ADMIN)])
def create_user(body: UserIn, identities: IdentitiesDep, who: PrincipalDep) -> UserOut:
    """A user; without a password they can use API tokens but not sign in to the UI."""
    user = identities.create_user(
        body.name, password=body.password, admin=body.admin, actor=who.name
    )
    return UserOut.of(user)


@router.get("/tokens", response_model=list[TokenOut], dependencies=[guard(On.SIGNED_IN)])
def list_tokens(
    identities: IdentitiesDep, who: PrincipalDep, user: str | None = None
) -> list[TokenOut]:
    """The caller's tokens; an admin may name any ``user``. Never the secrets."""
    if user is not None and user != who.name:
        who.require_admin()
    return [TokenOut.of(t) for t in identities.tokens(user or _own_name(who))]


@router.post(
    "/tokens", response_model=TokenCreatedOut, status_code=201, dependencies=[guard(On.SIGNED_IN)]
)
def create_token(body: TokenIn, identities: IdentitiesDep, who: PrincipalDep) -> TokenCreatedOut:
    """A new token for the caller (an admin: for anyone). ``token`` is shown this once."""
    if body.user is not None and body.user != who.name:
        who.require_admin()
    made = identities.create_token(
        body.user or _own_name(who),
        body.name,
        expires_in_days=body.expires_in_days,
        actor=who.name,
    )
    return TokenCreatedOut(**TokenOut.of(made.info).model_dump(), token=made.token)


@router.delete("/tokens/{key}", status_code=204, dependencies=[guard(On.SIGNED_IN)])
def revoke_token(key: TokenKey, identities: IdentitiesDep, who: PrincipalDep) -> Response:
    """Revoke a token at once: the caller's own, or (an admin) anyone's."""
    identities.revoke_token(key, actor=who.name, caller=who)
    return Response(status_code=204)


@router.get(
    "/projects/{project}/members",
    response_model=list[MemberOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_members(project: str, identities: IdentitiesDep) -> list[MemberOut]:
    return [MemberOut(user=u, role=r.label) for u, r in identities.members(project)]  # type: ignore[arg-type]


@router.put("/projects/{project}/members/{user}", status_code=204, dependencies=[guard(On.ADMIN)])
def set_member(
    project: str, user: str, body: MemberIn, identities: IdentitiesDep, who: PrincipalDep
) -> Response:
    """Give ``user`` a role on the project (replacing the one they held)."""
    identities.grant(project, user, Role.parse(body.role), actor=who.name)
    return Response(status_code=204)


@router.delete(
    "/projects/{project}/members/{user}", status_code=204, dependencies=[guard(On.ADMIN)]
)
def remove_member(
    project: str, user: str, identities: IdentitiesDep, who: PrincipalDep
) -> Response:
    identities.revoke_role(project, user, actor=who.name)
    return Response(status_code=204)
