"""The admin registry put together (upstream ``AdminRegistryServer``), and how to add it to an
application.

::

    app = Application()
    channels = NodeChannels(self_ip="10.0.0.1")
    admin = add_admin(app, store, channels, endpoint="tcp -h 10.0.0.1 -p 12000 -t 60000")
    await app.start()      # also starts the task sweeper and the t_registry_info heartbeat
    ...
    await app.stop()       # stops them again; unfinished task items become CANCEL

Without an application (tools, tests) call :meth:`AdminRegistry.start` and
:meth:`AdminRegistry.stop` yourself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tarsus.framework.admin.heartbeat import RegistryHeartbeat
from tarsus.framework.admin.inventory import Inventory
from tarsus.framework.admin.lifecycle import Lifecycle
from tarsus.framework.admin.servant import AdminRegImp
from tarsus.framework.admin.settings import (
    ADMIN_ADAPTER,
    ADMIN_SERVANT,
    DEFAULT_ENDPOINT,
    AdminSettings,
)
from tarsus.framework.admin.tasks import TaskEngine
from tarsus.rpc.communicator import Communicator
from tarsus.store.tasks import Tasks

if TYPE_CHECKING:
    from tarsus.framework.admin.channel import NodeChannels
    from tarsus.rpc.application import Application
    from tarsus.rpc.server import Adapter
    from tarsus.store.engine import Store
    from tarsus.store.rows import ServerRow
    from tarsus.store.servers import AdapterSpec, ServerSpec

__all__ = ["AdminRegistry", "add_admin"]

log = logging.getLogger("tarsus.framework.admin")


class AdminRegistry:
    """One admin registry: the servant, its task engine and its heartbeat, over ``store``
    and the node push ``channels``."""

    def __init__(
        self,
        store: Store,
        channels: NodeChannels,
        *,
        settings: AdminSettings | None = None,
        communicator: Communicator | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.settings = settings or AdminSettings()
        self.communicator = communicator or Communicator()
        self.lifecycle = Lifecycle(store, channels, self.settings)
        self.inventory = Inventory(store)
        self.tasks = TaskEngine(self.lifecycle, Tasks(store), self.settings, clock=store.clock)
        self.servant = AdminRegImp(
            lifecycle=self.lifecycle,
            inventory=self.inventory,
            tasks=self.tasks,
            channels=channels,
            settings=self.settings,
            communicator=self.communicator,
        )
        #: set once the servant is served (``add_admin``): writes ``t_registry_info``
        self.heartbeat: RegistryHeartbeat | None = None
        self.adapter: Adapter | None = None
        self.started = False

    def serve_on(self, adapter: Adapter) -> None:
        """Heartbeat ``adapter``'s bound endpoint into ``t_registry_info`` once it listens."""
        self.adapter = adapter
        self.heartbeat = RegistryHeartbeat(
            self.store,
            self.settings,
            lambda: {adapter.servant_name: adapter.bound_endpoint} if adapter.accepting else {},
        )

    async def start(self) -> None:
        """Start the task sweeper and the heartbeat (idempotent)."""
        if self.started:
            return
        self.tasks.start()
        if self.heartbeat is not None:
            self.heartbeat.start()
        self.started = True

    async def stop(self) -> None:
        """Stop the heartbeat and every running task (their unfinished items end CANCEL)."""
        if not self.started:
            return
        self.started = False
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        await self.tasks.stop()

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
    """Serve ``tars.tarsAdminRegistry.AdminRegObj`` on ``endpoint`` in ``app``.

    The registry's background work starts with ``app.start()`` (an initialize hook) and stops
    with ``app.stop()`` (a destroy hook, after the adapters closed).
    """
    registry = AdminRegistry(store, channels, settings=settings, communicator=app.communicator)
    adapter = app.add_servant(registry.servant, ADMIN_SERVANT, endpoint, name=ADMIN_ADAPTER)
    registry.serve_on(adapter)

    async def start(_app: Application) -> None:
        await registry.start()

    async def stop(_app: Application) -> None:
        await registry.stop()

    app.on_initialize(start)
    app.on_destroy(stop)
    return registry
