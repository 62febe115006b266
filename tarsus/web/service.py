"""``tars.tarsweb``: the HTTP app as a framework service of its own, under the node agent.

In upstream's production layout every framework service is a server of application ``tars``
that a node runs and restarts (docs/running.md); the web console was the exception, a Node.js
app run beside them (TarsWeb on port 3000). Upstream's Kubernetes framework already makes it
one: a server ``tars.tarsweb`` with an HTTP port 3000 (TarsCloud K8SFramework, TServer
``tars-tarsweb``). Tarsus does the same, under that name, in ``tarsus up --processes`` and
in an installed framework: the row is recorded with the others, the node starts it with
``python -m tarsus.web --config=FILE``, it heartbeats to the node like any Tars server (its
``AdminObj`` adapter; it has no Tars servant) and the node starts it again when it dies.

What it serves and talks to comes from the config the node generated:

* ``/tars/web<host>``, ``<port>`` (3000 by default), ``<datadir>`` (the framework host's data
  directory: the script token, the session key, uploads in flight), ``<locator>`` (the
  registries it asks and hands joining nodes in ``node.sh``; else the node's) and ``<admin>``
  (the admin registry's address; else found through the locator);
* ``/tars/db<url>``: the store (users, roles, tokens, audit; the lists it reads);
* the ``<client>`` object domains: the keys it signs its calls to a secured framework with,
  and, with ``/tars/web<nodekeys> = 1``, the keys ``POST /install/node-keys`` hands a node
  that shows the join token (docs/security.md).

The first ``admin`` user is made by whoever records the service, before it starts
(:func:`first_admin`), so that ``tarsus up`` can print the password to its operator once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from tarsus.conf import ConfigError
from tarsus.framework.security import SECURED_OBJECTS, FrameworkAuth
from tarsus.framework.service import FrameworkService, ServiceSpec, require_store
from tarsus.rpc.tls import TlsConfig
from tarsus.web.settings import DEFAULT_PORT, WebSettings
from tarsus.web.token import ensure_token

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tarsus.conf import TCConfig
    from tarsus.rpc.application import ServerConfig
    from tarsus.rpc.security import ServantSecurity
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store
    from tarsus.web.server import WebServer

__all__ = ["WEB_SPEC", "WebService", "first_admin", "web_profile"]

log = logging.getLogger("tarsus.web.service")

#: ``tars.tarsweb``: upstream Kubernetes framework's name for the console's server. No Tars
#: servant: its HTTP port is in its profile (``/tars/web<port>``), not an adapter.
WEB_SPEC: Final = ServiceSpec(name="tarsweb", servants=(), module="tarsus.web")

_WEB = "/tars/web"


class WebService(FrameworkService):
    """The HTTP app (:class:`~tarsus.web.server.WebServer`) over the service's store, started
    and stopped with the process; when it stops by itself the process stops too, so that the
    node starts it again."""

    spec = WEB_SPEC

    def __init__(self, settings: WebSettings, store: Store) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.server: WebServer | None = None
        self._stopping = False

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        raw_port = tc.get(f"{_WEB}<port>", str(DEFAULT_PORT)).strip()
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise ConfigError(f"{_WEB}<port> must be a port number (1-65535); got {raw_port!r}")
        data_dir = tc.get(f"{_WEB}<datadir>", "").strip()
        if not data_dir:
            raise ConfigError(f"{_WEB}<datadir> is not set: the framework host's data directory")
        security = dict(config.client.objects)
        node_auth = None
        if tc.get(f"{_WEB}<nodekeys>", "").strip().lower() in ("1", "true", "yes"):
            node_auth = _framework_auth(security)
        settings = WebSettings(
            data_dir=Path(data_dir),
            host=tc.get(f"{_WEB}<host>", "").strip() or config.localip or "127.0.0.1",
            port=int(raw_port),
            locator=tc.get(f"{_WEB}<locator>", "").strip()
            or config.client.locator
            or WebSettings.locator,
            admin=tc.get(f"{_WEB}<admin>", "").strip() or None,
            security=security,
            node_auth=node_auth,
        )
        return cls(settings, require_store(cls.spec, store))

    def servants(self) -> dict[str, Servant]:
        return {}

    async def start(self) -> None:
        from tarsus.web.server import WebServer

        await super().start()
        self.server = WebServer(self.settings, store=self.store)
        await self.server.start()  # OSError when the port is taken: the process exits 1
        assert self.server.task is not None
        self.server.task.add_done_callback(self._ended)
        log.info("%s serves %s", self.spec.server_id, self.server.url)
        if self.server.admin_password is not None:  # nobody recorded it first (first_admin)
            log.warning(
                "made the console user admin with a generated password nobody was shown: "
                "set one with `tarsus web passwd admin` at the framework host"
            )

    def _ended(self, _task: asyncio.Task[None]) -> None:
        if not self._stopping and self.on_failure is not None:
            log.error("the HTTP server stopped by itself: stopping the process")
            self.on_failure()

    async def stop(self) -> None:
        self._stopping = True
        server, self.server = self.server, None
        if server is not None:
            await server.stop()
        await super().stop()


def _framework_auth(security: Mapping[str, ServantSecurity]) -> FrameworkAuth:
    """The framework's keys, from the ``<client>`` domains of its secured objects (the node
    adds one of its own, ``tars.tarsnode.ServerObj``, with the node's keys: not these), and
    the CA its ``ssl`` endpoints are checked against, if they name one."""
    keys = {
        s.credentials
        for obj in SECURED_OBJECTS
        if (s := security.get(obj)) is not None and s.credentials is not None
    }
    missing = [obj for obj in SECURED_OBJECTS if obj not in security]
    if missing or len(keys) != 1:
        raise ConfigError(
            f"{_WEB}<nodekeys> hands nodes the framework's keys: the <client> domains of "
            f"{', '.join(SECURED_OBJECTS)} must hold one key pair "
            f"({len(keys)} found; missing: {', '.join(missing) or 'none'})"
        )
    cas = {tls.ca for obj in SECURED_OBJECTS if (tls := security[obj].tls) is not None and tls.ca}
    if len(cas) > 1:
        raise ConfigError(
            f"{_WEB}<nodekeys> hands nodes the framework's CA: the <client> domains of "
            f"{', '.join(SECURED_OBJECTS)} name different ones ({', '.join(sorted(cas))})"
        )
    return FrameworkAuth(keys.pop(), tls=TlsConfig(ca=cas.pop()) if cas else None)


def web_profile(
    *, host: str, port: int, data_dir: Path, locator: str, admin: str | None, node_keys: bool
) -> list[str]:
    """The ``<web>`` domain of the service's profile (under ``<tars>``)."""
    lines = [
        "  <web>",
        f"    host = {host}",
        f"    port = {port}",
        f"    datadir = {data_dir}",
        f"    locator = {locator}",
    ]
    if admin:
        lines.append(f"    admin = {admin}")
    if node_keys:
        lines.append("    nodekeys = 1")
    return [*lines, "  </web>"]


async def first_admin(store: Store, data_dir: Path) -> str | None:
    """Before the service first starts: its script token, and the ``admin`` user when there
    is no user yet, whose generated password is returned (to be shown once); None when users
    exist. :class:`~tarsus.web.token.TokenError` when the token file cannot be made."""
    from tarsus.ops.platform import Platform
    from tarsus.ops.users import ensure_admin

    ensure_token(WebSettings(data_dir=data_dir).token_file)
    return await ensure_admin(Platform(store))
