"""``cairn server``: the API (and, later, the UI) on uvicorn.

Several workers share one store. Measured pitfall: with ``--workers`` > 1 uvicorn hands
the workers a listening socket whose accepted connections do not get TCP_NODELAY, so
every small response waits ~40 ms for the client's delayed ACK. Our protocol class sets
TCP_NODELAY on every connection, whatever the worker count.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
from typing import Any

import click

from cairn.cli.output import handle_errors

_ENV_KEYS = ("store", "artifacts", "host", "port", "workers")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost (a name is resolved; every address must be loopback)."""
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def _decide_auth(
    host: str, store: str, asked: bool | None, insecure_no_auth: bool, has_users: bool
) -> bool:
    """Whether to require authentication; refuses the combinations that would expose data."""
    loopback = is_loopback(host)
    if insecure_no_auth:
        if not loopback:
            click.secho(
                f"WARNING: serving on {host} with NO authentication (--insecure-no-auth): "
                "anyone who can reach this address can read and change everything.",
                fg="red",
                bold=True,
                err=True,
            )
        return False
    if asked is False and not loopback:
        raise click.UsageError(
            f"refusing to serve on {host} without authentication: anyone who can reach it "
            "could read and change everything. Pass --insecure-no-auth if that is meant."
        )
    auth = asked if asked is not None else (has_users or not loopback)
    if auth and not has_users:
        raise click.UsageError(
            f"authentication is required on {host}, but the store has no users yet. Create "
            f"an admin first:  cairn users create NAME --admin --store {store}"
        )
    return auth


def app_from_env() -> Any:
    """Factory for uvicorn workers: settings travel in ``CAIRN_*`` environment variables."""
    from cairn.api.app import create_app
    from cairn.settings import Settings

    app = create_app(Settings())
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Leave what start-up built (the app, its schemas, SQLAlchemy's tables) out of every
    later garbage collection: a batch of 2,000 logged predictions allocates enough to
    set off collections that would walk all of it (a tenth of the time of logging it)."""
    gc.collect()
    gc.freeze()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base

    class NoDelayHttpToolsProtocol(_Base):
        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):  # not a TCP socket after all
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

except ImportError:  # the [server] extra is not installed; `cairn server` says so
    NoDelayHttpToolsProtocol = None  # type: ignore[assignment,misc]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--store",
    default="./.cairn",
    show_default=True,
    help="Metadata store: a folder, sqlite:///FILE or postgresql://…",
)
@click.option("--artifacts", default=None, help="Artifact store: a folder or s3://bucket/prefix.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="Require sign-in or an API token. Default: on when the store has users or the "
    "address is not loopback.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve with no authentication even on a non-loopback address (anyone who can reach "
    "it can read and change everything).",
)
@handle_errors
def server(
    host: str,
    port: int,
    store: str,
    artifacts: str | None,
    workers: int,
    log_level: str,
    auth: bool | None,
    insecure_no_auth: bool,
) -> None:
    """Start the Cairn server (REST API under /api/v1, OpenAPI at /openapi.json, UI at /).

    It binds to loopback by default, open to its one local user until the store has
    accounts (``cairn users create NAME --admin``); from then on, and on any other address,
    every request needs a signed-in user or an API token. ``--insecure-no-auth`` serves
    a non-loopback address open, and says so loudly.
    """
    try:
        import uvicorn
    except ImportError:
        raise click.ClickException(
            "the server needs the extra: pip install 'cairn[server]'"
        ) from None
    from cairn.services.identities import IdentityService
    from cairn.settings import Settings
    from cairn.store.database import Database
    from cairn.store.engine import store_exists

    has_users = False
    if store_exists(store):  # a store not there yet has no users, and is not made here
        db = Database(store, auto_upgrade=False)
        try:
            has_users = IdentityService(db).has_users()
        finally:
            db.close()
    auth = _decide_auth(host, store, auth, insecure_no_auth, has_users)
    os.environ["CAIRN_AUTH"] = "1" if auth else "0"
    # Check the schema here, once, so an old store stops the server with a clear message.
    Database(store, auto_upgrade=False).close()
    os.environ.update(
        {
            "CAIRN_STORE": store,
            "CAIRN_HOST": host,
            "CAIRN_PORT": str(port),
            "CAIRN_WORKERS": str(workers),
        }
    )
    if artifacts:
        os.environ["CAIRN_ARTIFACTS"] = artifacts
    how = "sign-in or API token required" if auth else "open, no authentication"
    if auth and not is_loopback(host) and Settings().cookie_secure:
        click.echo(
            "note: UI sign-in cookies are Secure, so browsers send them over HTTPS only: put "
            "TLS in front (a reverse proxy), or set CAIRN_COOKIE_SECURE=0 on a trusted network.",
            err=True,
        )
    click.echo(f"Cairn is serving {store} at http://{host}:{port}  (API docs: /docs; {how})")
    uvicorn.run(
        "cairn.cli.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=NoDelayHttpToolsProtocol,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
