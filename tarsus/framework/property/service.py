"""The property service (upstream ``tarsproperty``): ``tars.tarsproperty.PropertyObj``, port 18493.

Servers report their own metrics here (``PropertyF.reportPropMsg``); they are merged
per window by policy and written to ``tars_property_YYYYMMDDHH`` (docs/monitoring.md)::

    app = Application()
    prop = add_property(app, store, IngestSettings(), endpoint="tcp -h 10.0.0.1 -p 18493")
    await app.start()

``python -m tarsus.framework.property --config=FILE`` runs it as a process of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Self

from tarsus.codec.constants import PROPERTY_OBJ, PROPERTY_PORT
from tarsus.framework.monitor.ingest import IngestService
from tarsus.framework.monitor.settings import IngestSettings
from tarsus.framework.monitor.tables import PROPERTY
from tarsus.framework.property.aggregate import PropertyAggregator
from tarsus.framework.property.servant import PropertyImp
from tarsus.framework.service import ServiceSpec, host, require_store

if TYPE_CHECKING:
    from tarsus.conf import TCConfig
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = ["PROPERTY_SPEC", "PropertyService", "add_property"]

#: ``tars.tarsproperty``: upstream's object and port.
PROPERTY_SPEC: Final = ServiceSpec(
    name="tarsproperty",
    servants=((PROPERTY_OBJ, PROPERTY_PORT),),
    module="tarsus.framework.property",
)


class PropertyService(IngestService):
    spec = PROPERTY_SPEC
    kind = PROPERTY
    aggregator: PropertyAggregator

    def __init__(self, store: Store, settings: IngestSettings) -> None:
        super().__init__(store, settings, PropertyAggregator(settings))

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        source = config.localip or "127.0.0.1"
        settings = IngestSettings.from_tcconfig(
            tc, reserve_key="property_reserve_time", source_id=source
        )
        return cls(require_store(cls.spec, store), settings)

    def servants(self) -> dict[str, Servant]:
        return {PROPERTY_OBJ: PropertyImp(self.aggregator)}


def add_property(
    app: Application,
    store: Store,
    settings: IngestSettings,
    *,
    endpoint: str = f"tcp -h 0.0.0.0 -p {PROPERTY_PORT} -t 60000",
) -> PropertyService:
    """Serve ``tars.tarsproperty.PropertyObj`` on ``endpoint`` in ``app``."""
    return host(app, PropertyService(store, settings), {PROPERTY_OBJ: endpoint})
