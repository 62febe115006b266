"""The admin registry's heartbeat rows in ``t_registry_info`` (upstream ``AdminReapThread``).

The registry adds these rows to its routes, so ``tars.tarsAdminRegistry.AdminRegObj`` resolves
through ``QueryObj`` like any servant: nodes find every admin registry that way. Every
``update_heart_interval`` seconds we write ours (upstream ``REPLACE INTO``); every
``registry_timeout`` seconds rows whose heartbeat is older than that are marked inactive, ours
or another instance's that died without a goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import tarsus
from tarsus.framework.admin.settings import AdminSettings
from tarsus.rpc.endpoint import Endpoint
from tarsus.store.routes import expire_registries, heartbeat_registry

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["SERVER_VERSION", "RegistryHeartbeat"]

log = logging.getLogger("tarsus.framework.admin.heartbeat")

#: Upstream's admin registry writes ``<tars version>_B003`` as ``tars_version``.
SERVER_VERSION = "B003"
_ANY_HOSTS = ("", "*", "0.0.0.0", "::")


class RegistryHeartbeat:
    """Writes the rows of ``servants()`` (servant name -> bound endpoint) on a timer."""

    def __init__(
        self,
        store: Store,
        settings: AdminSettings,
        servants: Callable[[], Mapping[str, Endpoint]],
    ) -> None:
        self.store = store
        self.settings = settings
        self.servants = servants
        self.version = f"tarsus-{tarsus.__version__}_{SERVER_VERSION}"
        self._task: asyncio.Task[None] | None = None
        self._warned_any_host = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="tarsus-admin-heartbeat"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_expiry = loop.time()
        while True:
            try:
                await self.beat()
                if loop.time() - last_expiry >= self.settings.registry_timeout:
                    last_expiry = loop.time()
                    await self.expire()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database may be down for a while: keep trying
                log.warning("t_registry_info heartbeat failed: %s", e)
            waiting = not self.settings.heartbeat_off and not self.servants()
            # Until the servant listens, look again soon: the first row should not wait 10 s.
            await asyncio.sleep(0.05 if waiting else self.settings.update_heart_interval)

    def rows(self) -> list[tuple[str, str, str]]:
        """``(locator_id, servant, endpoint)`` for each servant, with a routable host."""
        out = []
        for servant, endpoint in self.servants().items():
            host = endpoint.host
            if host in _ANY_HOSTS:
                host = self.settings.advertise_host or "127.0.0.1"
                if not self.settings.advertise_host and not self._warned_any_host:
                    self._warned_any_host = True
                    log.warning(
                        "%s listens on all addresses; registering it as 127.0.0.1 (set "
                        "AdminSettings.advertise_host to the address nodes should use)",
                        servant,
                    )
            routable = dataclasses.replace(endpoint, host=host)
            out.append((f"{host}:{endpoint.port}", servant, str(routable)))
        return out

    async def beat(self) -> int:
        """Write our rows now (unless ``heartbeat_off``); returns how many."""
        if self.settings.heartbeat_off:
            return 0
        by_locator: dict[str, list[tuple[str, str]]] = {}
        for locator_id, servant, endpoint in self.rows():
            by_locator.setdefault(locator_id, []).append((servant, endpoint))
        for locator_id, servants in by_locator.items():
            await heartbeat_registry(self.store, locator_id, servants, self.version)
        return sum(len(v) for v in by_locator.values())

    async def expire(self) -> int:
        """Mark rows without a heartbeat for ``registry_timeout`` s inactive; returns how many."""
        return await expire_registries(self.store, self.settings.registry_timeout)
