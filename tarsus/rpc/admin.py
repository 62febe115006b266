"""``AdminObj``: the admin servant every Tars server exposes on its ``local`` endpoint.

tarsnode (and through it the web console) calls ``AdminF.shutdown()`` to stop the server,
``AdminF.getPid()``, and ``AdminF.notify("tars.viewstatus")`` for admin commands. Commands are
``name args``: the name is everything before the first space. Built in, as in TarsCpp (the
reply texts follow TarsCpp where it has the command):

=====================  ==========================================================================
``tars.help``          the command names, one per line
``tars.viewstatus``    client settings, server settings, each adapter (connections, in flight)
``tars.viewversion``   the tarsus version (also sent to the node by ``reportVersion``)
``tars.setloglevel``   ``NONE|ERROR|WARN|INFO|DEBUG|TARS``: the rolling log's level
``tars.enabledaylog``  ``local|[logname]|true|false``: switch a day log's file on or off
``tars.loadconfig``    ``<file>``: pull a file from tarsconfig into basepath
``tars.connection``    the connections of every adapter
=====================  ==========================================================================

An application adds its own with ``app.register_admin(name, handler)``; the handler gets the
text after the name and returns the reply (it may be ``async``). Anything else is answered
``"<command> not support now!"``, TarsGo's reply (TarsCpp answers an empty string).
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import tarsus
from tarsus.protocol.gen import AdminF
from tarsus.rpc import logs
from tarsus.rpc.servant import Servant

if TYPE_CHECKING:
    from tarsus.rpc.application import Application
    from tarsus.rpc.server import Adapter

__all__ = [
    "ADMIN_ADAPTER",
    "AdminCommands",
    "AdminHandler",
    "admin_servant",
]

log = logging.getLogger("tarsus.rpc.admin")

#: The adapter name upstream gives the admin object (tarsnode expects it); the servant is
#: ``tarsus.codec.constants.SERVER_ADMIN_OBJ`` ("AdminObj").
ADMIN_ADAPTER = "AdminAdapter"

#: An admin command: gets the text after the command name, returns the reply.
AdminHandler = Callable[[str], str | Awaitable[str]]

_LINE = "-" * 100
_LINE_LONG = "=" * 100
_DAYLOG_USAGE = "usage: tars.enabledaylog {remote|local}|[logname]|{true|false}"


def _fill(key: str, width: int = 50) -> str:
    """TarsCpp's ``TC_Common::outfill``: the key padded with spaces to ``width``."""
    return key.ljust(width)


class AdminCommands:
    """The admin commands of one application: the built-ins and those it registers."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.handlers: dict[str, AdminHandler] = {
            "tars.help": self.help,
            "tars.viewstatus": self.view_status,
            "tars.viewversion": self.view_version,
            "tars.setloglevel": self.set_log_level,
            "tars.enabledaylog": self.enable_day_log,
            "tars.loadconfig": self.load_config,
            "tars.connection": self.connections,
        }

    def register(self, name: str, handler: AdminHandler) -> None:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"admin command name {name!r} must be one word")
        self.handlers[name] = handler

    async def notify(self, command: str) -> str:
        """Run ``command`` (``"name args"``) and return its reply."""
        text = command.strip()
        name, _, args = text.partition(" ")
        handler = self.handlers.get(name)
        if handler is None:
            return f"{command} not support now!"
        log.info("admin command: %s", text)
        try:
            result = handler(args.strip())
            if inspect.isawaitable(result):
                result = await result
        except Exception as e:
            log.exception("admin command %r failed", text)
            return f"{name} failed: {type(e).__name__}: {e}"
        return str(result)

    # -- built-ins ---------------------------------------------------------------------------

    def help(self, args: str) -> str:
        return "".join(f"{name}\r\n" for name in sorted(self.handlers))

    def view_version(self, args: str) -> str:
        return tarsus.__version__

    def set_log_level(self, args: str) -> str:
        level = args.strip()
        try:
            logs.set_level(level)
        except ValueError:
            return f"set log level [{level}] error"
        self.app.log_level = level.upper()
        return f"set log level [{level}] ok"

    def enable_day_log(self, args: str) -> str:
        parts = args.strip().split("|")
        if len(parts) not in (2, 3) or parts[0] not in ("local", "remote"):
            return _DAYLOG_USAGE
        switch = parts[-1]
        if switch not in ("true", "false"):
            return _DAYLOG_USAGE
        name = parts[1] if len(parts) == 3 else ""
        if parts[0] == "remote":
            return "[fail] remote day logs are not supported by tarsus: nothing is sent remotely"
        logs.enable_day_log(name, switch == "true")
        return f"set {' '.join(parts)} ok"

    async def load_config(self, args: str) -> str:
        filename = args.strip()
        if not filename:
            return "usage: tars.loadconfig <filename>"
        return await self.app.load_pushed_config(filename)

    def connections(self, args: str) -> str:
        out = [_LINE_LONG]
        now_wall, now_mono = time.time(), time.monotonic()
        for adapter in self.app.all_adapters():
            conns = list(adapter.connections)
            out.append(_LINE)
            out.append(_fill(f"[adapter:{adapter.name}] [connections:{len(conns)}]"))
            out.append(
                f"{'ip:port'.ljust(25)}{'last-time'.ljust(25)}{'timeout'.ljust(10)}"
                f"{'inflight'.ljust(10)}"
            )
            for conn in conns:
                peer = f"{conn.peer[0]}:{conn.peer[1]}" if conn.peer else "?"
                last = time.localtime(now_wall - (now_mono - conn.last_active))
                out.append(
                    f"{peer.ljust(25)}{time.strftime('%Y-%m-%d %H:%M:%S', last).ljust(25)}"
                    f"{str(adapter.endpoint.timeout).ljust(10)}{str(conn.pending).ljust(10)}"
                )
        out.append(_LINE_LONG)
        return "\n".join(out) + "\n"

    def view_status(self, args: str) -> str:
        app = self.app
        out = [_LINE_LONG, _fill("[proxy config]:"), _LINE, _fill("[load client]:")]
        for key, value in app.client_settings().items():
            out.append(f"{_fill(key)}{value}")
        out += [_LINE, _fill("[server config]:")]
        for key, value in app.server_settings().items():
            out.append(f"{_fill(key)}{value}")
        out.append(_LINE)
        for adapter in app.all_adapters():
            out += _adapter_status(adapter)
            out.append(_LINE)
        return "\n".join(out) + "\n"


def _adapter_status(adapter: Adapter) -> list[str]:
    rows = [
        ("name", adapter.name),
        ("servant", adapter.servant_name),
        ("endpoint", str(adapter.bound_endpoint)),
        ("maxconns", str(adapter.max_conns)),
        ("queuecap", str(adapter.queue_cap)),
        ("queuetimeout", f"{round(adapter.queue_timeout * 1000)}ms"),
        ("connections", str(len(adapter.connections))),
        ("inflight", str(adapter.inflight)),
        ("protocol", "tars"),
        ("accepting", "yes" if adapter.accepting else "no"),
    ]
    return [f"{_fill(key)}{value}" for key, value in rows]


def admin_servant(app: Application) -> Servant:
    """The ``AdminObj`` servant of ``app``."""

    class AdminServant(AdminF.AdminFServant):
        async def shutdown(self) -> None:
            log.warning("AdminF.shutdown: stopping (from the node)")
            app.request_stop()

        async def notify(self, command: str) -> str:
            return await app.admin.notify(command)

        async def getPid(self) -> int:
            return os.getpid()

    servant: Servant = AdminServant()
    return servant
