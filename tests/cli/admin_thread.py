"""The real admin registry (``tarsus.framework.admin``) for the CLI's tests.

The CLI blocks, so the admin registry cannot share the test's event loop: it runs on its own
loop in a daemon thread, with its own store opened on that loop (the same database as the
``store_url`` fixture), serving ``tars.tarsAdminRegistry.AdminRegObj`` on an ephemeral port of
127.0.0.1, as ``tests/admin/admin_support.py``'s ``admin`` fixture serves it. No node is
connected: the commands that use it here (templates) only need the database. With
``config_center=True`` the same application also serves the real config center
(``tars.tarsconfig.ConfigObj``, its ``proxy`` at ``config_proxy``) over that store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from tarsus.codec.constants import CONFIG_EXT_OBJ
from tarsus.framework.admin import ADMIN_SERVANT, AdminRegistry, add_admin
from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.config import add_config_center
from tarsus.rpc.application import Application
from tarsus.store import Store, open_store
from tarsus.testing import LoopThread

T = TypeVar("T")


class AdminRegistryThread:
    """A real AdminRegistry over the database at ``url``, served until :meth:`stop`."""

    def __init__(
        self,
        url: str,
        clock: Callable[[], datetime] | None = None,
        *,
        config_center: bool = False,
    ) -> None:
        self.config_proxy = ""
        self._with_config = config_center
        self.loop = LoopThread("admin-registry")
        self.store: Store
        self.app: Application
        self.registry: AdminRegistry
        try:
            self.run(self._start(url, clock))
        except BaseException:
            self.loop.close()
            raise
        assert self.registry.adapter is not None
        #: what ``--admin`` takes
        self.proxy = f"{ADMIN_SERVANT}@{self.registry.adapter.bound_endpoint}"

    async def _start(self, url: str, clock: Callable[[], datetime] | None) -> None:
        self.store = await open_store(url, clock=clock)
        self.app = Application()
        channels = NodeChannels(timeout=1.0, self_ip="127.0.0.1")
        self.registry = add_admin(
            self.app, self.store, channels, endpoint="tcp -h 127.0.0.1 -p 0 -t 60000"
        )
        config = None
        if self._with_config:
            config = add_config_center(
                self.app,
                self.store,
                endpoint="tcp -h 127.0.0.1 -p 0 -t 60000",
                ext_endpoint="tcp -h 127.0.0.1 -p 0 -t 60000",
            )
        await self.app.start()
        if config is not None:
            self.config_proxy = f"{CONFIG_EXT_OBJ}@{config.adapters[1].bound_endpoint}"

    def run(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the admin registry's loop (e.g. a store call) and return its result."""
        return self.loop.run(coro)

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.close()

    async def _stop(self) -> None:
        try:
            await self.app.stop(drain_timeout=1.0)
        finally:
            await self.store.close()

    def __enter__(self) -> AdminRegistryThread:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
