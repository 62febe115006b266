"""The stat service (upstream ``tarsstat``): ``tars.tarsstat.StatObj``, port 18293.

Every Tars client and server reports its calls here (``StatF.reportMicMsg``); they are summed
per window and written to ``tars_stat_YYYYMMDDHH`` (docs/monitoring.md)::

    app = Application()
    stat = add_stat(app, store, IngestSettings(), endpoint="tcp -h 10.0.0.1 -p 18293")
    await app.start()

``python -m tarsus.framework.stat --config=FILE`` runs it as a process of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Self

from tarsus.codec.constants import STAT_OBJ, STAT_PORT
from tarsus.framework.monitor.ingest import IngestService
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.monitor.tables import STAT
from tarsus.framework.service import ServiceSpec, host, require_store
from tarsus.framework.stat.aggregate import StatAggregator
from tarsus.framework.stat.servant import StatImp

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = ["STAT_SPEC", "StatService", "add_stat"]

#: ``tars.tarsstat``: upstream's object and port.
STAT_SPEC: Final = ServiceSpec(
    name="tarsstat", servants=((STAT_OBJ, STAT_PORT),), module="tarsus.framework.stat"
)


class StatService(IngestService):
    spec = STAT_SPEC
    kind = STAT
    aggregator: StatAggregator

    def __init__(self, store: Store, settings: IngestSettings) -> None:
        super().__init__(store, settings, StatAggregator(settings))

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        source = config.localip or "127.0.0.1"
        settings = IngestSettings.from_tcconfig(
            tc, reserve_key="stat_reserve_time", source_id=source
        )
        return cls(require_store(cls.spec, store), settings)

    def servants(self) -> dict[str, Servant]:
        return {STAT_OBJ: StatImp(self.aggregator)}


def add_stat(
    app: Application,
    store: Store,
    settings: IngestSettings,
    *,
    endpoint: str = f"tcp -h 0.0.0.0 -p {STAT_PORT} -t 60000",
) -> StatService:
    """Serve ``tars.tarsstat.StatObj`` on ``endpoint`` in ``app``."""
    return host(app, StatService(store, settings), {STAT_OBJ: endpoint})
