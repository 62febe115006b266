"""The two query services the console asks for curves (upstream ``tarsquerystat`` and
``tarsqueryproperty``): ``tars.tarsquerystat.QueryObj`` (18393) over ``tars_stat_*`` and
``tars.tarsqueryproperty.QueryObj`` (18693) over ``tars_property_*``, both
``MonitorQuery.query`` (:mod:`tarsus.framework.monitor.query`). Beside it on the stat object,
our ``tarsus.MonitorExt.queryLatency`` (``TarsusMonitor.tars``: the latency buckets summed)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar, Final, Self

from sqlalchemy.exc import SQLAlchemyError

from tarsus.codec.constants import (
    QUERY_PROPERTY_OBJ,
    QUERY_PROPERTY_PORT,
    QUERY_STAT_OBJ,
    QUERY_STAT_PORT,
)
from tarsus.framework.monitor.query import QueryEngine, QueryError
from tarsus.framework.monitor.tables import PROPERTY, STAT, HourlyTables, TableKind
from tarsus.framework.service import FrameworkService, ServiceSpec, host, require_store
from tarsus.protocol.gen import MonitorQuery, TarsusMonitor
from tarsus.rpc.servant import served_together
from tarsus.store.errors import StoreError

if TYPE_CHECKING:
    from tarsus.codec.operation import Operation
    from tarsus.conf import TCConfig
    from tarsus.rpc.application import Application, ServerConfig
    from tarsus.rpc.servant import Servant
    from tarsus.store.engine import Store

__all__ = [
    "QUERY_PROPERTY_SPEC",
    "QUERY_STAT_SPEC",
    "MonitorQueryImp",
    "MonitorQueryStatImp",
    "QueryPropertyService",
    "QueryService",
    "QueryStatService",
    "add_query_property",
    "add_query_stat",
]

log = logging.getLogger("tarsus.framework.monitor")

QUERY_STAT_SPEC: Final = ServiceSpec(
    name="tarsquerystat",
    servants=((QUERY_STAT_OBJ, QUERY_STAT_PORT),),
    module="tarsus.framework.monitor.querystat",
)
QUERY_PROPERTY_SPEC: Final = ServiceSpec(
    name="tarsqueryproperty",
    servants=((QUERY_PROPERTY_OBJ, QUERY_PROPERTY_PORT),),
    module="tarsus.framework.monitor.queryproperty",
)


class MonitorQueryImp(MonitorQuery.MonitorQueryServant):
    """``MonitorQuery.query``: 0 and the answer, or -1 and why in ``msg``."""

    def __init__(self, engine: QueryEngine) -> None:
        self.engine = engine

    async def query(
        self, req: MonitorQuery.MonitorQueryReq
    ) -> tuple[int, MonitorQuery.MonitorQueryRsp]:
        try:
            rsp = await self.engine.query(req)
        except QueryError as e:
            log.info("query refused: %s", e)
            return -1, MonitorQuery.MonitorQueryRsp(ret=-1, msg=str(e))
        except (StoreError, SQLAlchemyError, OSError) as e:
            log.warning("query failed: %s", e)
            return -1, MonitorQuery.MonitorQueryRsp(ret=-1, msg=f"database: {e}"[:500])
        return 0, rsp


class MonitorQueryStatImp(MonitorQueryImp):
    """``MonitorQuery.query`` and, beside it, our ``MonitorExt.queryLatency``."""

    _tars_ops_: ClassVar[dict[str, Operation]] = served_together(
        MonitorQuery.MonitorQueryServant, TarsusMonitor.MonitorExtServant
    )

    async def queryLatency(
        self, req: MonitorQuery.MonitorQueryReq
    ) -> tuple[int, dict[str, dict[int, int]], str]:
        try:
            return 0, await self.engine.latency(req), ""
        except QueryError as e:
            log.info("latency query refused: %s", e)
            return -1, {}, str(e)
        except (StoreError, SQLAlchemyError, OSError) as e:
            log.warning("latency query failed: %s", e)
            return -1, {}, f"database: {e}"[:500]


class QueryService(FrameworkService):
    kind: ClassVar[TableKind]

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.engine = QueryEngine(HourlyTables(store, self.kind))

    @classmethod
    def from_config(cls, tc: TCConfig, config: ServerConfig, store: Store | None) -> Self:
        return cls(require_store(cls.spec, store))

    def servants(self) -> dict[str, Servant]:
        return {self.spec.servants[0][0]: MonitorQueryImp(self.engine)}


class QueryStatService(QueryService):
    spec = QUERY_STAT_SPEC
    kind = STAT

    def servants(self) -> dict[str, Servant]:
        return {self.spec.servants[0][0]: MonitorQueryStatImp(self.engine)}


class QueryPropertyService(QueryService):
    spec = QUERY_PROPERTY_SPEC
    kind = PROPERTY


def add_query_stat(
    app: Application, store: Store, *, endpoint: str = f"tcp -h 0.0.0.0 -p {QUERY_STAT_PORT}"
) -> QueryStatService:
    return host(app, QueryStatService(store), {QUERY_STAT_OBJ: endpoint})


def add_query_property(
    app: Application, store: Store, *, endpoint: str = f"tcp -h 0.0.0.0 -p {QUERY_PROPERTY_PORT}"
) -> QueryPropertyService:
    return host(app, QueryPropertyService(store), {QUERY_PROPERTY_OBJ: endpoint})
