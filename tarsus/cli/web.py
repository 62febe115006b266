"""``tarsus web``: the framework's HTTP app on its own (``tarsus up`` also serves it).

    tarsus web                                  # 127.0.0.1:3000, the registry at 127.0.0.1:17890
    tarsus web --host 0.0.0.0 --locator 'tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890'
    tarsus web token                            # print the token scripts pass as ?ticket=
    tarsus web token --rotate                   # a new one; the old one stops working
    tarsus web passwd admin                     # set a console password (forgotten admin's)

docs/web.md.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from tarsus.ops.errors import OpError
from tarsus.store import StoreError
from tarsus.web.settings import DEFAULT_MAX_UPLOAD, DEFAULT_PORT, WebSettings
from tarsus.web.token import TokenError, ensure_token, write_new_token

app = typer.Typer(
    help="Run the HTTP app (the script API upload_and_publish), or print its token.",
    add_completion=False,
    rich_markup_mode=None,
)

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="The framework host's data directory (token under web/)."),
]


@app.callback(invoke_without_command=True)
def web(
    ctx: typer.Context,
    data_dir: DataDir = Path(".tarsus"),
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help=f"Port (upstream TarsWeb's: {DEFAULT_PORT}).")
    ] = DEFAULT_PORT,
    locator: Annotated[
        str,
        typer.Option("--locator", help="The registry, to find the admin registry and PatchObj."),
    ] = WebSettings.locator,
    admin: Annotated[
        str | None,
        typer.Option("--admin", help="AdminRegObj@tcp -h HOST -p PORT, instead of the locator."),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest package taken, in MiB.")
    ] = DEFAULT_MAX_UPLOAD / (1 << 20),
    publish_wait: Annotated[
        float,
        typer.Option("--publish-wait", help="Seconds upload_and_publish follows its task."),
    ] = WebSettings.publish_wait,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Store URL (users, roles, audit; default SQLite in --data-dir)."),
    ] = None,
    admin_password_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-password-file",
            help="At the first start, the admin user's password (else one is generated).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
) -> None:
    """Run the HTTP app (the script API upload_and_publish), or print its token."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if max_upload_mb <= 0 or publish_wait < 0:
        typer.echo("tarsus web: --max-upload-mb must be > 0 and --publish-wait >= 0", err=True)
        raise typer.Exit(2)
    settings = WebSettings(
        data_dir=data_dir.resolve(),
        host=host,
        port=port,
        locator=locator,
        admin=admin,
        max_upload=int(max_upload_mb * (1 << 20)),
        publish_wait=publish_wait,
        db_url=db,
        admin_password_file=admin_password_file,
    )
    raise typer.Exit(asyncio.run(_serve(settings)))


async def _serve(settings: WebSettings) -> int:
    from tarsus.web.server import WebServer

    server = WebServer(settings)
    try:
        await server.start()
    except (OSError, TokenError, StoreError, OpError) as e:
        typer.echo(f"tarsus web: cannot start on {settings.host}:{settings.port}: {e}", err=True)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    typer.echo(f"Tarsus web is up at {server.url} (token in {settings.token_file})", err=True)
    if server.admin_password is not None:
        typer.echo(
            f"The console's user admin has the password {server.admin_password} "
            f"(shown this once: change it at {server.url}/password)",
            err=True,
        )
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0


@app.command()
def token(
    data_dir: DataDir = Path(".tarsus"),
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Make a new token; the old one stops working.")
    ] = False,
) -> None:
    """Print the token scripts pass as ?ticket= (made now if there is none)."""
    path = WebSettings(data_dir=data_dir).token_file
    try:
        typer.echo(write_new_token(path) if rotate else ensure_token(path))
    except TokenError as e:
        typer.echo(f"tarsus web token: {e}", err=True)
        raise typer.Exit(1) from None


@app.command()
def passwd(
    uid: Annotated[str, typer.Argument(help="The console user (e.g. admin).")],
    data_dir: DataDir = Path(".tarsus"),
    db: Annotated[str | None, typer.Option("--db", help="Store URL (default SQLite).")] = None,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Read the new password from this file."),
    ] = None,
) -> None:
    """Set a console user's password at the framework host (a forgotten admin password);
    their sessions end. Recorded in the audit log as the local operator."""
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, UnicodeDecodeError, IndexError) as e:
            typer.echo(f"tarsus web passwd: cannot read {password_file}: {e}", err=True)
            raise typer.Exit(2) from None
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    raise typer.Exit(asyncio.run(_passwd(data_dir, db, uid, password)))


async def _passwd(data_dir: Path, db: str | None, uid: str, password: str) -> int:
    from tarsus.cli.admin_client import current_user
    from tarsus.ops.access import Actor
    from tarsus.ops.platform import Platform
    from tarsus.ops.users import reset_password
    from tarsus.store import open_store

    try:
        async with await open_store(db, data_dir=data_dir) as store:
            actor = Actor.local(current_user())
            await reset_password(Platform(store), actor, uid, password)
    except (OpError, StoreError) as e:
        typer.echo(f"tarsus web passwd: {getattr(e, 'message', e)}", err=True)
        return 1
    typer.echo(f"the password of {uid} is set; their sessions ended")
    return 0
