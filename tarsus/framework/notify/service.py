"""The notification service put together (upstream ``NotifyServer``), and how to serve it.

A :class:`~tarsus.framework.service.FrameworkService` (docs/architecture.md, "one service
shape") over the store::

    app = Application()
    notify = add_notify(app, store, endpoint="tcp -h 10.0.0.1 -p 18593 -t 60000")
    await app.start()

``python -m tarsus.framework.notify --config=FILE`` runs it as a process of its own, from the
config a node generated (upstream ``tarsnotify --config=...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Self

from tarsus.codec.constants import NOTIFY_OBJ, NOTIFY_PORT
from tarsus.framework.notify.journal import NotifyJournal
from tarsus.framework.notify.servant import NotifyImp
from tarsus.framework.notify.settings import NotifySettings
from tarsus.framework.service import FrameworkService, ServiceSpec, host, require_store
from tarsus.rpc.periodic import Periodic

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = ["NOTIFY_SPEC", "NotifyService", "add_notify"]

#: ``tars.tarsnotify``: upstream's object and port (TarsFramework ``deploy/framework/conf``).
NOTIFY_SPEC: Final = ServiceSpec(
    name="tarsnotify",
    servants=((NOTIFY_OBJ, NOTIFY_PORT),),
    module="tarsus.framework.notify",
)


class NotifyService(FrameworkService):
    """Notifications into ``t_server_notifys`` of ``store``."""

    spec = NOTIFY_SPEC

    def __init__(self, store: Store, settings: NotifySettings | None = None) -> None:
        super().__init__()
        self.settings = settings or NotifySettings()
        self.journal = NotifyJournal(store, self.settings)
        self.loops = [
            Periodic("tarsus-notify-flush", self.settings.flush_interval, self.journal.flush),
            Periodic(
                "tarsus-notify-retention",
                self.settings.prune_interval,
                self.journal.prune,
                run_first=True,
            ),
        ]

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        """Upstream's ``tars.tarsnotify`` keys (:meth:`NotifySettings.from_tcconfig`)."""
        return cls(require_store(cls.spec, store), NotifySettings.from_tcconfig(tc))

    def servants(self) -> dict[str, Servant]:
        return {NOTIFY_OBJ: NotifyImp(self.journal)}

    async def stop(self) -> None:
        await super().stop()
        await self.journal.flush()  # what arrived last


def add_notify(
    app: Application,
    store: Store,
    settings: NotifySettings | None = None,
    *,
    endpoint: str = f"tcp -h 0.0.0.0 -p {NOTIFY_PORT} -t 60000",
) -> NotifyService:
    """Serve ``tars.tarsnotify.NotifyObj`` on ``endpoint`` in ``app``."""
    return host(app, NotifyService(store, settings), {NOTIFY_OBJ: endpoint})
