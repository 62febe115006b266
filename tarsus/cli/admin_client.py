"""The admin registry as the operator commands (``tarsus server|node|template``) see it.

Those commands talk to one servant only, ``tars.tarsAdminRegistry.AdminRegObj`` (the same API
the web console uses), over Tars RPC: its upstream interface ``AdminReg`` and, for what
AdminReg lacks (writing templates), our extension ``tarsus.AdminExt`` served on the same object
(``TarsusAdmin.tars``). This module holds what they share: where the admin
registry is (``--admin`` / ``--locator``), the blocking client, how its answers are judged
(``tarsErrCode`` in words), how results are printed (rich for people, ``--json`` for
scripts), and ``admin_command``, which gives a command those options and its session.

Exit status of every command: 0 done, 1 the admin registry (or the node behind it) refused or
failed, or could not be reached, 2 the command line was wrong. Expected failures print one
``error: ...`` line on stderr (with ``--json`` also ``{"error": {...}}`` on stdout), never a
traceback.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Concatenate, NoReturn, ParamSpec, TypeVar, cast

import typer
from rich.console import Console

from tarsus.cli.call import describe_failure
from tarsus.codec.constants import ADMIN_REG_OBJ as ADMIN_OBJ
from tarsus.codec.constants import ADMIN_REG_PORT
from tarsus.ops.access import Actor
from tarsus.ops.adminreg import explain_code, refusal
from tarsus.ops.errors import OpError, Unavailable
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import AdminReg, TarsusAdmin
from tarsus.rpc.endpoint import EndpointError, parse_proxy
from tarsus.rpc.errors import (
    ConnectError,
    InvokeTimeout,
    NoEndpointError,
    Ret,
    ServerError,
    TarsError,
)
from tarsus.rpc.security import CLIENT_KEYS_ENV, ServantSecurity, client_keys_from_env
from tarsus.rpc.sync import SyncCommunicator

__all__ = [
    "ADMIN_OBJ",
    "DEFAULT_ADMIN",
    "AdminAddress",
    "AdminClient",
    "CommandFailed",
    "Connection",
    "Output",
    "UsageError",
    "admin_command",
    "admin_session",
    "client_keys",
    "current_user",
    "explain_code",
    "object_beside_admin",
    "print_text",
    "read_text_file",
    "refused",
    "split_server_id",
]

DEFAULT_ADMIN = f"{ADMIN_OBJ}@tcp -h 127.0.0.1 -p {ADMIN_REG_PORT}"
#: Lifecycle calls wait for the node behind the admin registry (5 s per push, 15 s for a stop:
#: docs/admin.md; a restart is a stop and a start), so the default is well above that.
DEFAULT_TIMEOUT_MS = 30000
ADMIN_ENV = "TARSUS_ADMIN"
LOCATOR_ENV = "TARSUS_LOCATOR"

EXIT_FAILED = 1
EXIT_USAGE = 2

P = ParamSpec("P")
R = TypeVar("R")


def current_user() -> str:
    """Who runs the command, as recorded with what it changes (``--user``'s default)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "tarsus"


# --------------------------------------------------------------------------- errors


class UsageError(Exception):
    """The command line cannot be carried out as given (exit status 2); nothing was sent."""


@dataclass(eq=False)
class CommandFailed(Exception):
    """The admin registry refused or failed, or could not be reached (exit status 1)."""

    message: str
    code: int | None = None
    name: str = ""
    result: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"message": self.message, "code": self.code, "name": self.name}
        doc["result"] = self.result
        doc.update(self.extra)
        return doc


def refused(
    doing: str,
    code: int,
    result: str = "",
    *,
    meanings: Mapping[int, str] | None = None,
    **extra: Any,
) -> CommandFailed:
    """A non-zero tarsErrCode from the admin registry as a ``CommandFailed``; ``meanings``
    words a code better than :data:`tarsus.ops.adminreg.ERROR_MEANINGS` does for this command.
    Worded by :func:`tarsus.ops.adminreg.refusal`, as the console words it."""
    return CommandFailed(
        refusal(doing, code, result, meanings).message, code, explain_code(code)[0], result, extra
    )


def split_server_id(text: str) -> tuple[str, str]:
    """``"Test.HelloServer"`` → ``("Test", "HelloServer")``."""
    app, dot, server = text.partition(".")
    if not dot or not app or not server or "." in server or any(c.isspace() for c in text):
        raise UsageError(f"give the server as APP.SERVER (e.g. Test.HelloServer), not {text!r}")
    return app, server


# --------------------------------------------------------------------------- where it is


@dataclass(frozen=True)
class AdminAddress:
    """The admin registry's proxy string, direct or resolved through a registry locator."""

    proxy: str
    locator: str | None = None

    def describe(self) -> str:
        if self.locator is None:
            return self.proxy
        return f"{self.proxy} (resolved through {self.locator})"


def resolve_address(admin: str | None, locator: str | None) -> AdminAddress:
    """Where to call, from the options, then ``$TARSUS_ADMIN`` / ``$TARSUS_LOCATOR``.

    An admin proxy with endpoints is called directly; a bare object name (``ADMIN_OBJ`` when
    nothing is given) is resolved through the locator. A flag beats an environment variable;
    with neither, the admin registry is expected on 127.0.0.1:12000.
    """
    if admin is None and locator is None:
        admin = os.environ.get(ADMIN_ENV) or None
        if admin is None:
            locator = os.environ.get(LOCATOR_ENV) or None
    if admin is None:
        admin = ADMIN_OBJ if locator is not None else DEFAULT_ADMIN
    admin = admin.strip()
    if admin.split(" ", 1)[0] in ("tcp", "udp", "ssl"):  # just the endpoints
        admin = f"{ADMIN_OBJ}@{admin}"
    try:
        target = parse_proxy(admin)
    except EndpointError as e:
        raise UsageError(f"bad --admin {admin!r}: {e}") from None
    if target.endpoints:
        return AdminAddress(admin)
    locator = locator or os.environ.get(LOCATOR_ENV) or None
    if locator is None:
        raise UsageError(
            f"--admin {admin!r} names no endpoint: write '{ADMIN_OBJ}@tcp -h HOST -p 12000', "
            "or give --locator (or $TARSUS_LOCATOR) to ask the registry"
        )
    try:
        if not parse_proxy(locator).endpoints:
            raise EndpointError("it names no endpoint")
    except EndpointError as e:
        raise UsageError(
            f"bad --locator {locator!r} ({e}); write "
            "'tars.tarsregistry.QueryObj@tcp -h HOST -p 17890'"
        ) from None
    return AdminAddress(admin, locator)


def object_beside_admin(
    given: str | None, admin: AdminAddress, *, obj: str, port: int, option: str, env: str
) -> str:
    """The proxy string of another framework object a command calls (the package store, the
    config center): ``option`` as given, else ``$env``, else on the admin registry's host at
    upstream's ``port``, or the bare ``obj`` resolved through the locator when the admin
    registry is. A value of just endpoints (``tcp -h H -p P``) is ``obj`` at them."""
    if given is None:
        given = os.environ.get(env) or None
    if given is not None:
        given = given.strip()
        if given.split(" ", 1)[0] in ("tcp", "udp", "ssl"):  # just the endpoints
            given = f"{obj}@{given}"
        try:
            target = parse_proxy(given)
        except EndpointError as e:
            raise UsageError(f"bad {option} {given!r}: {e}") from None
        if not target.endpoints and admin.locator is None:
            raise UsageError(
                f"{option} {given!r} names no endpoint: write "
                f"'{obj}@tcp -h HOST -p {port}', or give --locator"
            )
        return given
    if admin.locator is not None:
        return obj
    endpoints = parse_proxy(admin.proxy).endpoints
    host = endpoints[0].host if endpoints else "127.0.0.1"
    return f"{obj}@tcp -h {host} -p {port}"


def client_keys() -> dict[str, ServantSecurity]:
    """The keys a command signs with (:func:`~tarsus.rpc.security.client_keys_from_env`); a
    file that cannot be used is a :class:`UsageError` naming it, not a traceback."""
    try:
        return client_keys_from_env()
    except ValueError as e:
        raise UsageError(f"{e} (fix the file, or point ${CLIENT_KEYS_ENV} at another)") from None


# --------------------------------------------------------------------------- calling it


class AdminClient:
    """Blocking calls to AdminRegObj; transport failures become one clear ``CommandFailed``."""

    def __init__(self, address: AdminAddress, timeout_ms: int) -> None:
        self.address = address
        self.timeout_ms = timeout_ms
        self._comm: SyncCommunicator | None = None
        self._proxies: dict[type[Any], Any] = {}

    def call(self, method: str, *args: Any) -> Any:
        """``AdminReg.<method>(*args)`` in the proxy's result shape (``(ret, out1, ...)``)."""
        return self._invoke(AdminReg.AdminRegProxy, method, args)

    def call_ext(self, method: str, *args: Any) -> Any:
        """``tarsus.AdminExt.<method>(*args)``, on the same object and connection as
        :meth:`call`. An upstream admin registry has no such function: that failure says so."""
        return self._invoke(TarsusAdmin.AdminExtProxy, method, args)

    def check(
        self,
        ret: int,
        result: str,
        doing: str,
        *,
        meanings: Mapping[int, str] | None = None,
        **extra: Any,
    ) -> None:
        """Raise ``CommandFailed`` (the code in words) unless ``ret`` is 0."""
        if ret != 0:
            raise refused(doing, ret, result, meanings=meanings, **extra)

    def call_checked(self, method: str, *args: Any, doing: str) -> str:
        """The result text of a method answering ``(ret, result)``; ``CommandFailed`` (saying
        ``doing`` failed) unless ``ret`` is 0."""
        ret, result = self.call(method, *args)
        self.check(ret, result, doing)
        return str(result)

    def run(
        self,
        op: Callable[Concatenate[Platform, Actor, P], Coroutine[Any, Any, R]],
        user: str | None,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run a service-layer operation (:mod:`tarsus.ops`, the one the console and the REST
        API call) as the local operator ``user`` (default: who runs the command), on this
        command's communicator. Its refusal is a ``CommandFailed`` (the admin registry's code
        kept); a call that fails on the way is worded as :meth:`call` words it."""
        actor = Actor.local(user or current_user())
        return self.run_plain(lambda platform: op(platform, actor, *args, **kwargs))

    def run_plain(self, op: Callable[[Platform], Coroutine[Any, Any, R]]) -> R:
        """:meth:`run` for a step of the service layer that checks no actor (adding a task
        the command built, reading one)."""
        comm = self.communicator()
        try:
            return comm.run(op(self._platform()))
        except _Unreachable as e:
            raise e.failed from None
        except OpError as e:
            name = explain_code(e.code)[0] if e.code is not None else ""
            raise CommandFailed(e.message, e.code, name, e.result) from None

    def _platform(self) -> Platform:
        """What an operation works on from here: the admin registry only, no database (its
        audit is the admin registry's own record of who asked; docs/cli-operate.md)."""
        comm = self.communicator()
        return Platform(
            None,
            comm.communicator,
            # the proxies' transport failures in this client's words (not the ops' 503)
            cast(Any, _Reporting(self, AdminReg.AdminRegProxy)),
            cast(Any, _Reporting(self, TarsusAdmin.AdminExtProxy)),
        )

    def close(self) -> None:
        if self._comm is not None:
            self._comm.close()
            self._comm = None
            self._proxies.clear()

    def communicator(self) -> SyncCommunicator:
        """The blocking communicator of this command (the locator's, when one is given): other
        framework objects a command calls (the package store) share it."""
        if self._comm is None:
            self._comm = SyncCommunicator(
                self.address.locator,
                timeout_ms=self.timeout_ms,
                connect_timeout_ms=min(self.timeout_ms, 1500),
                security=client_keys(),  # keys of a secured install (docs/security.md)
            )
        return self._comm

    def _invoke(self, proxy_cls: type[Any], method: str, args: tuple[Any, ...]) -> Any:
        proxy = self._proxies.get(proxy_cls)
        if proxy is None:
            proxy = self._proxies[proxy_cls] = self.communicator().string_to_proxy(
                proxy_cls, self.address.proxy
            )
        try:
            return getattr(proxy, method)(*args)
        except TarsError as e:
            raise self._transport_failure(method, e) from None

    def _transport_failure(self, method: str, e: TarsError) -> CommandFailed:
        where = self.address.describe()
        name = Ret(e.code).name if e.code in Ret._value2member_map_ else ""
        if isinstance(e, ConnectError):
            message = f"cannot reach the admin registry {where}: {e.message or 'connect failed'}"
        elif isinstance(e, NoEndpointError) and self.address.locator is not None:
            message = f"cannot find the admin registry: {e.message}"
        elif isinstance(e, NoEndpointError):
            message = f"cannot reach the admin registry {where}: {e.message}"
        elif isinstance(e, InvokeTimeout):
            message = (
                f"the admin registry {where} did not answer {method} within "
                f"{self.timeout_ms} ms (raise --timeout-ms if the node is slow)"
            )
        elif isinstance(e, ServerError) and e.code == Ret.SERVER_NO_FUNC:
            message = f"the admin registry {where} does not implement {method}"
            if method in TarsusAdmin.AdminExtProxy._tars_ops_:
                message += " (a Tarsus extension, AdminExt: upstream's admin registry lacks it)"
        else:
            message = f"the admin registry {where} failed on {method}: {describe_failure(e)}"
        return CommandFailed(message, e.code, name)


class _Unreachable(Unavailable):
    """A call of an operation run by :meth:`AdminClient.run` that failed on the way: to the
    operation, the service layer's :class:`~tarsus.ops.errors.Unavailable` (one that goes on
    past a failed instance, as a config push does, says this message for it); to the command,
    this client's ``CommandFailed`` (``failed``)."""

    def __init__(self, failed: CommandFailed) -> None:
        super().__init__(failed.message)
        self.failed = failed


class _Reporting:
    """An async proxy of the admin registry for an operation run by :meth:`AdminClient.run`:
    a call that fails on the way raises :class:`_Unreachable` with this client's
    ``CommandFailed`` (which names the method, and an AdminExt function an upstream admin
    registry lacks), not a Tars error."""

    def __init__(self, client: AdminClient, proxy_cls: type[Any]) -> None:
        self._client = client
        self._proxy = client.communicator().communicator.string_to_proxy(
            proxy_cls, client.address.proxy
        )

    def __getattr__(self, method: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        call = getattr(self._proxy, method)

        async def reporting(*args: Any) -> Any:
            try:
                return await call(*args)
            except TarsError as e:
                raise _Unreachable(self._client._transport_failure(method, e)) from None

        return reporting


# --------------------------------------------------------------------------- printing


class Output:
    """Human output (rich, stdout) or one JSON document (stdout); progress goes to stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.err_console = Console(stderr=True, highlight=False)

    def emit(self, doc: dict[str, Any], human: Callable[[Console], None]) -> None:
        if self.as_json:
            typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            human(self.console)

    def note(self, text: str) -> None:
        """A remark for people (stderr), silent with ``--json``."""
        if not self.as_json:
            self.err_console.print(text, markup=False)


def print_text(text: str) -> None:
    """A stored text exactly (rich would expand tabs and turn ``:name:`` into emoji)."""
    typer.echo(text, nl=not text.endswith("\n"))


def read_text_file(file: str, option: str = "--file") -> str:
    """The text of the file an option names (``-``: stdin); a file that cannot be read is a
    usage error saying why."""
    if file == "-":
        return sys.stdin.read()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{option} {file}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{option} {file}: is a directory, not a file") from None
    except UnicodeDecodeError as e:
        raise UsageError(
            f"{option} {file}: not UTF-8 text ({e.reason} at byte {e.start})"
        ) from None
    except OSError as e:
        raise UsageError(f"{option} {file}: cannot read it ({e.strerror or e})") from None


# --------------------------------------------------------------------------- the options

AdminOption = Annotated[
    str | None,
    typer.Option(
        "--admin",
        metavar="PROXY",
        help=(
            f"the admin registry, '{ADMIN_OBJ}@tcp -h HOST -p 12000' "
            f"(default ${ADMIN_ENV}, else 127.0.0.1:12000)"
        ),
        show_default=False,
    ),
]
LocatorOption = Annotated[
    str | None,
    typer.Option(
        "--locator",
        metavar="PROXY",
        help=(
            "find the admin registry through the registry: "
            f"'tars.tarsregistry.QueryObj@tcp -h HOST -p 17890' (default ${LOCATOR_ENV})"
        ),
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    int,
    typer.Option("--timeout-ms", metavar="MS", min=1, help="timeout of each admin registry call"),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="print one JSON document on stdout instead of text")
]
NodeOption = Annotated[
    str,
    typer.Option("--node", metavar="NODE", help="the node (machine) name", show_default=False),
]
ServerArgument = Annotated[
    str,
    typer.Argument(metavar="APP.SERVER", help="e.g. Test.HelloServer", show_default=False),
]


@dataclass(frozen=True)
class Connection:
    """The common options of every operator command."""

    admin: str | None
    locator: str | None
    timeout_ms: int
    as_json: bool


@contextmanager
def admin_session(conn: Connection) -> Iterator[tuple[AdminClient, Output]]:
    """The client and the output of one command; turns expected failures into exit codes."""
    out = Output(conn.as_json)
    # The runtime's own warnings (a shielded endpoint...) repeat what the error line says.
    runtime_log = logging.getLogger("tarsus")
    saved_level = runtime_log.level
    runtime_log.setLevel(logging.CRITICAL)
    client: AdminClient | None = None
    try:
        client = AdminClient(resolve_address(conn.admin, conn.locator), conn.timeout_ms)
        yield client, out
    except UsageError as e:
        _fail(str(e), EXIT_USAGE)
    except CommandFailed as e:
        if conn.as_json:
            typer.echo(json.dumps({"error": e.as_json()}, indent=2, ensure_ascii=False))
        _fail(str(e), EXIT_FAILED)
    finally:
        if client is not None:
            client.close()
        runtime_log.setLevel(saved_level)


#: The options every command takes after its own, in this order.
_CONNECTION_PARAMETERS = tuple(
    inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=option
    )
    for name, option, default in (
        ("admin", AdminOption, None),
        ("locator", LocatorOption, None),
        ("timeout_ms", TimeoutOption, DEFAULT_TIMEOUT_MS),
        ("as_json", JsonOption, False),
    )
)


def admin_command(
    app: typer.Typer, **settings: Any
) -> Callable[[Callable[Concatenate[AdminClient, Output, P], None]], Callable[..., None]]:
    """Register ``run(client, out, <its own options>)`` as a command of ``app``.

    The command line takes ``run``'s own options, then ``--admin``, ``--locator``,
    ``--timeout-ms`` and ``--json``; ``run`` is called inside :func:`admin_session`. Typer has
    no option group that subcommands inherit (a group callback's options would have to come
    before the command name), so the common options are added to the signature typer reads.
    ``settings`` go to ``app.command`` (``name``, ``help``, ``no_args_is_help``...).
    """

    def register(run: Callable[Concatenate[AdminClient, Output, P], None]) -> Callable[..., None]:
        own = list(inspect.signature(run, eval_str=True).parameters.values())[2:]
        parameters = [*own, *_CONNECTION_PARAMETERS]

        @functools.wraps(run)
        def command(
            *,
            admin: str | None,
            locator: str | None,
            timeout_ms: int,
            as_json: bool,
            **options: Any,
        ) -> None:
            with admin_session(Connection(admin, locator, timeout_ms, as_json)) as (client, out):
                run(client, out, **options)  # type: ignore[call-arg]

        signature = inspect.Signature(parameters, return_annotation=None)
        command.__signature__ = signature  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        app.command(**settings)(command)
        return command

    return register


def _fail(message: str, code: int) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)
