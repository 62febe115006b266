"""``tars.tarsregistry.QueryObj``: name lookups (``QueryF``), answered from the route snapshot.

Every client's locator calls this (``findObjectByIdInSameGroup`` by default, ``...InSameSet`` in
set mode, ``findObjectById4Any``/``4All``). The caller's IP is the connection's peer address,
as upstream's ``current->getHostName()``. No call touches the database.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tarsus.codec.constants import CONTEXT_NODE_NAME
from tarsus.framework.registry.routes import Lookup, caller_ip
from tarsus.protocol.gen import QueryF
from tarsus.protocol.gen.EndpointF import EndpointF
from tarsus.rpc.current import current

if TYPE_CHECKING:
    from tarsus.framework.registry.service import Registry

__all__ = ["QueryImp"]

log = logging.getLogger("tarsus.registry.query")


def _peer_ip() -> str:
    """The caller's address for IDC grouping: as TarsCpp's ``Current::getHostName``, the
    ``node_name`` the caller puts in its context (TarsCpp servers and @tars/rpc always do),
    else the connection's peer."""
    try:
        call = current()
    except LookupError:  # called directly, not through RPC
        return ""
    return call.context.get(CONTEXT_NODE_NAME) or caller_ip(call.peer)


class QueryImp(QueryF.QueryFServant):
    """The ``QueryF`` servant of a :class:`~tarsus.framework.registry.service.Registry`.

    Unknown objects get empty lists with return code 0, as upstream; the enterprise-only
    methods answer -1.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def findObjectById(self, id: str) -> list[EndpointF]:
        return self.registry.snapshot.find_by_id(id)

    async def findObjectById4Any(self, id: str) -> Lookup:
        return self.registry.snapshot.find_4any(id)

    async def findObjectById4All(self, id: str) -> Lookup:
        return self.registry.snapshot.find_4all(id, _peer_ip())

    async def findObjectByIdInSameGroup(self, id: str) -> Lookup:
        return self.registry.snapshot.find_in_same_group(id, _peer_ip())

    async def findObjectByIdInSameStation(self, id: str, sStation: str) -> Lookup:
        return self.registry.snapshot.find_in_same_station(id, sStation)

    async def findObjectByIdInSameSet(self, id: str, setId: str) -> Lookup:
        result = self.registry.snapshot.find_in_same_set(id, setId, _peer_ip())
        if result[0] != 0:
            log.debug("findObjectByIdInSameSet(%r, %r): no server in that set", id, setId)
        return result

    # -- enterprise edition only --------------------------------------------------------------

    async def findObjectNodeName(self, id: str) -> tuple[int, list[str]]:
        return -1, []

    async def registerChange(self, timestamp: dict[str, str], name: str) -> int:
        return -1

    async def registerQuery(self, id: str, name: str) -> int:
        return -1

    async def getLocker(self, req: QueryF.GetMasterSlaveLock) -> int:
        return -1
