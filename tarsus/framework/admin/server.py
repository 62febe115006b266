"""The admin registry put together (upstream ``AdminRegistryServer``), and how to serve it.

It is a :class:`~tarsus.framework.service.FrameworkService` (docs/architecture.md, "one
service shape")::

    app = Application()
    channels = NodeChannels(self_ip="10.0.0.1")
    admin = add_admin(app, store, channels, endpoint="tcp -h 10.0.0.1 -p 12000 -t 60000")
    await app.start()      # also starts the task sweeper and the t_registry_info heartbeat
    ...
    await app.stop()       # stops them again; unfinished task items become CANCEL

``python -m tarsus.framework.admin --config=FILE`` runs it as a process of its own, from the
config a node generated (upstream ``tarsAdminRegistry --config=...``). Without an application
(tools, tests) call :meth:`AdminRegistry.start` and :meth:`AdminRegistry.stop` yourself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Self

from tarsus.framework.admin.forward import PeerAdmins
from tarsus.framework.admin.heartbeat import RegistryHeartbeat
from tarsus.framework.admin.inventory import Inventory
from tarsus.framework.admin.lifecycle import Lifecycle
from tarsus.framework.admin.packages import Packages
from tarsus.framework.admin.servant import AdminRegImp
from tarsus.framework.admin.settings import (
    ADMIN_SERVANT,
    DEFAULT_ENDPOINT,
    DEFAULT_PORT,
    AdminSettings,
)
from tarsus.framework.admin.tasks import TaskEngine
from tarsus.framework.outage import DatabaseOutage
from tarsus.framework.service import FrameworkService, ServiceSpec, host, require_store
from tarsus.rpc.communicator import Communicator
from tarsus.store.tasks import Tasks

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.framework.admin.channel import NodeChannels
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.rpc.server import Adapter
    from tarsus.store.engine import Store
    from tarsus.store.rows import ServerRow
    from tarsus.store.servers import AdapterSpec, ServerSpec

__all__ = ["ADMIN_SPEC", "AdminRegistry", "add_admin"]

log = logging.getLogger("tarsus.framework.admin")

#: ``tars.tarsAdminRegistry``: upstream's object and port (TarsFramework
#: ``deploy/framework/conf/tarsAdminRegistry``).
ADMIN_SPEC: Final = ServiceSpec(
    name="tarsAdminRegistry",
    servants=((ADMIN_SERVANT, DEFAULT_PORT),),
    module="tarsus.framework.admin",
)


class AdminRegistry(FrameworkService):
    """One admin registry: the servant, its task engine and its heartbeat, over ``store``
    and the node push ``channels``."""

    spec = ADMIN_SPEC

    def __init__(
        self,
        store: Store,
        channels: NodeChannels,
        *,
        settings: AdminSettings | None = None,
        communicator: Communicator | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.channels = channels
        self.settings = settings or AdminSettings()
        self.communicator = communicator or Communicator()
        #: close :attr:`communicator` on :meth:`stop` (set when made for this process)
        self.owns_communicator = False
        self.packages = Packages(store, self.communicator, self.settings)
        self.lifecycle = Lifecycle(
            store, channels, self.settings, self.packages, communicator=self.communicator
        )
        self.inventory = Inventory(store)
        self.tasks = TaskEngine(
            self.lifecycle, Tasks(store), self.settings, clock=store.clock, report=self.report
        )
        self.servant = AdminRegImp(
            lifecycle=self.lifecycle,
            inventory=self.inventory,
            tasks=self.tasks,
            channels=channels,
            settings=self.settings,
            communicator=self.communicator,
            packages=self.packages,
        )
        #: writes our served adapters into ``t_registry_info`` once they listen
        self.heartbeat = RegistryHeartbeat(
            self.store,
            self.settings,
            lambda: {a.servant_name: a.bound_endpoint for a in self.adapters if a.accepting},
            DatabaseOutage(log, self.report, consequence="operations needing it fail"),
        )
        # Nodes connected only to another admin registry are reached through it.
        self.lifecycle.peers = PeerAdmins(
            self.communicator,
            lambda: {locator_id for locator_id, _, _ in self.heartbeat.rows()},
            node_timeout=channels.timeout,
        )
        self.started = False

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """Settings from upstream's ``tars.tarsAdminRegistry`` keys
        (:meth:`AdminSettings.from_tcconfig`); pushes name ``localip`` as our address."""
        from tarsus.framework.admin.channel import NodeChannels

        settings = AdminSettings.from_tcconfig(tc)
        if config.localip and settings.advertise_host is None:
            settings = dataclasses.replace(settings, advertise_host=config.localip)
        # Its own calls (PatchObj, checkServer) go through the config's locator.
        communicator = Communicator(
            config.client.locator or None,
            timeout_ms=config.client.sync_invoke_timeout,
            security=config.client.objects,  # keys for framework objects with -e 1
        )
        service = cls(
            require_store(cls.spec, store),
            NodeChannels(self_ip=config.localip or "127.0.0.1"),
            settings=settings,
            communicator=communicator,
        )
        service.owns_communicator = True
        return service

    def servants(self) -> dict[str, Servant]:
        return {ADMIN_SERVANT: self.servant}

    @property
    def adapter(self) -> Adapter | None:
        """``AdminRegObj``'s adapter, once served."""
        return self.adapters[0] if self.adapters else None

    async def start(self) -> None:
        """Start the task sweeper and the heartbeat (idempotent)."""
        if self.started:
            return
        self.tasks.start()
        self.heartbeat.start()
        await super().start()
        self.started = True

    async def stop(self) -> None:
        """Stop the heartbeat and every running task (their unfinished items end CANCEL)."""
        if not self.started:
            return
        self.started = False
        await super().stop()
        await self.heartbeat.stop()
        await self.tasks.stop()
        if self.owns_communicator:
            await self.communicator.close()

    async def deploy(
        self,
        server: ServerSpec,
        adapters: Sequence[AdapterSpec],
        *,
        replace: bool = False,
        user: str = "",
    ) -> ServerRow:
        """Deploy an instance: its ``t_server_conf`` row and one ``t_adapter_conf`` row per
        servant, in one transaction (what ``insertServerConf`` + ``insertAdapterConf`` do,
        atomically). New instances are ``inactive`` until started. Raises
        :class:`~tarsus.framework.admin.errors.AdminError` (1007 with the reason)."""
        return await self.inventory.deploy(server, list(adapters), replace=replace, user=user)


def add_admin(
    app: Application,
    store: Store,
    channels: NodeChannels,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    settings: AdminSettings | None = None,
) -> AdminRegistry:
    """Serve ``tars.tarsAdminRegistry.AdminRegObj`` on ``endpoint`` in ``app``
    (:func:`~tarsus.framework.service.host` with an explicit endpoint).

    The registry's background work starts with ``app.start()`` (an initialize hook) and stops
    with ``app.stop()`` (a destroy hook, after the adapters closed).
    """
    registry = AdminRegistry(store, channels, settings=settings, communicator=app.communicator)
    return host(app, registry, {ADMIN_SERVANT: endpoint})
