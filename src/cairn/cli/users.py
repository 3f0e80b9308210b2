"""``cairn users …`` and ``cairn tokens …``: accounts, roles and API tokens.

They work on the store directly (``--store``, as ``cairn db`` and ``cairn gc`` do), so the
first admin can be made on the server's host before anyone can sign in:

    cairn users create alice --admin --store ./.cairn
    cairn tokens create --user alice --name laptop     # prints the token, once

Over HTTP the same things are at ``/api/v1/users``, ``/api/v1/tokens`` and
``/api/v1/projects/{p}/members``, and a signed-in user manages their tokens at ``/tokens``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from cairn.cli.output import handle_errors, print_json, print_table
from cairn.cli.projects import json_option
from cairn.client.identity import login_name
from cairn.domain.access import Role
from cairn.services.identities import IdentityService

_STORE_HELP = "The store: a folder, sqlite:///FILE or postgresql://… (default: $CAIRN_STORE)"


def _store_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--store",
        default=lambda: os.environ.get("CAIRN_STORE", "./.cairn"),
        show_default="./.cairn",
        help=_STORE_HELP,
    )(func)


@contextmanager
def _identities(store: str) -> Iterator[IdentityService]:
    from cairn.store.database import Database

    db = Database(store, auto_upgrade=False)
    try:
        yield IdentityService(db)
    finally:
        db.close()


def _actor() -> str:
    return f"{login_name() or 'unknown'} (cli)"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def users() -> None:
    """Accounts: create, list, give roles on projects, set passwords, disable."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="A server admin: manages users and projects.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--no-password", is_flag=True, help="No UI sign-in; the user works with API tokens only."
)
@_store_option
@json_option
@handle_errors
def create_user(
    name: str, admin: bool, password_stdin: bool, no_password: bool, store: str, as_json: bool
) -> None:
    """Create user NAME (asks for a password unless --no-password)."""
    password = None if no_password else _read_password(password_stdin)
    with _identities(store) as identities:
        user = identities.create_user(name, password=password, admin=admin, actor=_actor())
    if as_json:
        print_json(user)
        return
    kind = "admin" if user.admin else "user"
    click.echo(f"created {kind} {user.name}")


@users.command("ls")
@_store_option
@json_option
@handle_errors
def list_users(store: str, as_json: bool) -> None:
    """Every user, with whether they are admins and can sign in."""
    with _identities(store) as identities:
        found = identities.users()
    if as_json:
        print_json(found)
        return
    rows = [
        (u.name, "yes" if u.admin else "", "yes" if u.has_password else "no", u.created_at)
        for u in found
    ]
    if u_disabled := [u.name for u in found if u.disabled]:
        click.echo(f"disabled: {', '.join(u_disabled)}")
    print_table(("NAME", "ADMIN", "SIGN-IN", "CREATED"), rows)


@users.command("grant")
@click.argument("name")
@click.argument("project")
@click.argument("role", type=click.Choice([r.label for r in Role]))
@_store_option
@handle_errors
def grant(name: str, project: str, role: str, store: str) -> None:
    """Give user NAME a ROLE (viewer, editor, maintainer) on PROJECT."""
    with _identities(store) as identities:
        identities.grant(project, name, Role.parse(role), actor=_actor())
    click.echo(f"{name} is {role} on {project}")


@users.command("revoke")
@click.argument("name")
@click.argument("project")
@_store_option
@handle_errors
def revoke(name: str, project: str, store: str) -> None:
    """Take away user NAME's role on PROJECT."""
    with _identities(store) as identities:
        identities.revoke_role(project, name, actor=_actor())
    click.echo(f"{name} has no role on {project} any more")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_store_option
@handle_errors
def passwd(name: str, password_stdin: bool, store: str) -> None:
    """Set user NAME's password."""
    password = _read_password(password_stdin)
    with _identities(store) as identities:
        identities.set_password(name, password, actor=_actor())
    click.echo(f"password of {name} set")


@users.command("disable")
@click.argument("name")
@_store_option
@handle_errors
def disable(name: str, store: str) -> None:
    """Disable user NAME: their tokens and sessions stop working at once."""
    with _identities(store) as identities:
        identities.disable(name, actor=_actor())
    click.echo(f"{name} is disabled")


@click.group()
def tokens() -> None:
    """API tokens: the SDK and CLI send one as CAIRN_TOKEN."""


@tokens.command("create")
@click.option("--user", "user", required=True, help="Whose token.")
@click.option("--name", default="", help="What it is for (shown in `tokens ls`).")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None)
@_store_option
@json_option
@handle_errors
def create_token(
    user: str, name: str, expires_in_days: int | None, store: str, as_json: bool
) -> None:
    """Create a token; it is printed this once and never stored."""
    with _identities(store) as identities:
        made = identities.create_token(user, name, expires_in_days=expires_in_days, actor=_actor())
    if as_json:
        print_json({"token": made.token, "key": made.info.key, "user": made.info.user})
        return
    click.echo(made.token)
    click.echo(f"token {made.info.key} for {user}: shown once; use it as CAIRN_TOKEN", err=True)


@tokens.command("ls")
@click.option("--user", "user", default=None, help="Only this user's tokens.")
@_store_option
@json_option
@handle_errors
def list_tokens(user: str | None, store: str, as_json: bool) -> None:
    """Tokens with their owner, name, dates, and whether revoked. Never the secrets."""
    with _identities(store) as identities:
        found = identities.tokens(user)
    if as_json:
        print_json(found)
        return
    rows = [
        (t.key, t.user, t.name, t.created_at, t.last_used_at, t.expires_at, t.revoked_at)
        for t in found
    ]
    headers = ("KEY", "USER", "NAME", "CREATED", "LAST USED", "EXPIRES", "REVOKED")
    print_table(headers, rows)


@tokens.command("revoke")
@click.argument("key")
@_store_option
@handle_errors
def revoke_token(key: str, store: str) -> None:
    """Revoke the token with this KEY (see `tokens ls`): it stops working at once."""
    with _identities(store) as identities:
        identities.revoke_token(key, actor=_actor())
    click.echo(f"token {key} revoked")
