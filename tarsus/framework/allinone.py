"""The whole framework on one machine, in one process: what ``tarsus up`` runs.

One asyncio process serves the registry (``tars.tarsregistry.QueryObj`` 17890,
``RegistryObj`` 17891) and the admin registry (``tars.tarsAdminRegistry.AdminRegObj`` 12000)
over one store (SQLite under the data directory by default, MySQL/MariaDB by URL), and runs a
node agent for this machine, which starts the business services as processes of their own.
Everything speaks the Tars protocol on upstream's ports, so ``tarsus call``, our CLI, upstream
SDKs and upstream tools see an ordinary Tars framework.

Stopping (Ctrl-C) stops the node agent *and the services it started*, then the framework:
nothing is left running. (A node agent started with ``tarsus node`` leaves its services
running when it exits, as upstream's tarsnode does.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tarsus.codec.constants import (
    ADMIN_REG_PORT,
    NODE_SERVER_PORT,
    QUERY_OBJ,
    QUERY_PORT,
    REGISTRY_PORT,
)
from tarsus.framework.admin import AdminRegistry, AdminSettings, add_admin
from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.node.agent import NodeAgent, NodeAgentSettings
from tarsus.framework.registry import Registry, RegistrySettings, add_registry
from tarsus.rpc.application import Application
from tarsus.store import Store, open_store

__all__ = ["AllInOne", "AllInOneSettings", "Ports"]

log = logging.getLogger("tarsus.framework.allinone")


@dataclass(frozen=True)
class Ports:
    """Upstream's default ports (framework.md §13)."""

    query: int = QUERY_PORT
    registry: int = REGISTRY_PORT
    admin: int = ADMIN_REG_PORT
    node: int = NODE_SERVER_PORT


@dataclass
class AllInOneSettings:
    data_dir: Path = Path(".tarsus")
    #: ``None``: SQLite at ``<data_dir>/tarsus.db``; else a SQLAlchemy-style URL
    db_url: str | None = None
    #: the address the framework listens on and advertises (and the node's name)
    host: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    run_node: bool = True
    #: make a store in an existing but empty SQLite file (else refused: see open_store)
    create_store: bool = False
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    admin: AdminSettings = field(default_factory=AdminSettings)

    @property
    def locator(self) -> str:
        return f"{QUERY_OBJ}@tcp -h {self.host} -p {self.ports.query}"


class AllInOne:
    """Start with :meth:`start`, stop with :meth:`stop` (or ``async with``)."""

    def __init__(self, settings: AllInOneSettings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.app: Application | None = None
        self.registry: Registry | None = None
        self.admin: AdminRegistry | None = None
        self.channels: NodeChannels | None = None
        self.node: NodeAgent | None = None

    async def start(self, progress: Callable[[str], None] = lambda _msg: None) -> None:
        s = self.settings
        s.data_dir = Path(s.data_dir).resolve()
        s.data_dir.mkdir(parents=True, exist_ok=True)
        progress("opening the store")
        self.store = await open_store(s.db_url, data_dir=s.data_dir, create=s.create_store)
        try:
            progress("starting the registry and the admin registry")
            app = Application()
            self.app = app
            self.registry = add_registry(
                app,
                self.store,
                query_endpoint=f"tcp -h {s.host} -p {s.ports.query} -t 60000",
                registry_endpoint=f"tcp -h {s.host} -p {s.ports.registry} -t 60000",
                settings=s.registry,
            )
            self.channels = NodeChannels(self_ip=s.host)
            self.admin = add_admin(
                app,
                self.store,
                self.channels,
                endpoint=f"tcp -h {s.host} -p {s.ports.admin} -t 60000",
                settings=s.admin,
            )
            await app.start()
            # Announce our own servants and route them now, not at the first timer tick: the
            # node agent's first lookups (RegistryObj, AdminRegObj) come right after this.
            await self.registry.heartbeat()
            if self.admin.heartbeat is not None:
                await self.admin.heartbeat.beat()
            await self.registry.load(full=False)
            if s.run_node:
                progress("starting the node agent")
                self.node = NodeAgent(
                    NodeAgentSettings(
                        locator=s.locator,
                        node_name=s.host,
                        host=s.host,
                        port=s.ports.node,
                        data_dir=s.data_dir / "node",
                        stop_services_on_exit=True,
                    )
                )
                await self.node.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        node, self.node = self.node, None
        if node is not None:
            with contextlib.suppress(Exception):
                await node.stop()
        app, self.app = self.app, None
        if app is not None:
            await app.stop(drain_timeout=1.0)
        store, self.store = self.store, None
        if store is not None:
            await store.close()

    async def __aenter__(self) -> AllInOne:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
