"""The admin registry's heartbeat rows in ``t_registry_info`` (upstream ``AdminReapThread``).

The registry adds these rows to its routes, so ``tars.tarsAdminRegistry.AdminRegObj`` resolves
through ``QueryObj`` like any servant: nodes find every admin registry that way. Every
``update_heart_interval`` seconds we write ours (upstream ``REPLACE INTO``); every
``registry_timeout`` seconds rows whose heartbeat is older than that are marked inactive, ours
or another instance's that died without a goodbye.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import tarsus
from tarsus.framework.admin.settings import AdminSettings
from tarsus.framework.outage import DB_ERRORS, DatabaseOutage
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.periodic import Periodic
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
        outage: DatabaseOutage | None = None,
    ) -> None:
        self.store = store
        #: told of every round: the database may be down for a while (one warning and one
        #: notification per outage), and the next round tries again
        self.outage = outage or DatabaseOutage(log)
        self.settings = settings
        self.servants = servants
        self.version = f"tarsus-{tarsus.__version__}_{SERVER_VERSION}"
        self._beats = Periodic(
            "tarsus-admin-heartbeat", self._pace, self._round, run_first=True, on_error=self._failed
        )
        self._last_expiry = 0.0
        self._warned_any_host = False

    def start(self) -> None:
        if not self._beats.running:
            self._last_expiry = time.monotonic()
        self._beats.start()

    async def stop(self) -> None:
        await self._beats.stop()

    async def _round(self) -> None:
        await self.beat()
        if time.monotonic() - self._last_expiry >= self.settings.registry_timeout:
            self._last_expiry = time.monotonic()
            await self.expire()
        self.outage.ok()

    def _failed(self, e: Exception) -> None:
        if isinstance(e, DB_ERRORS):
            self.outage.failed("t_registry_info heartbeat", e)
        else:
            log.error("t_registry_info heartbeat failed", exc_info=e)

    def _pace(self) -> float:
        waiting = not self.settings.heartbeat_off and not self.servants()
        # Until the servant listens, look again soon: the first row should not wait 10 s.
        return 0.05 if waiting else self.settings.update_heart_interval

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
