"""``PropertyImp``: the ``tars.tarsproperty.PropertyObj`` servant, a thin adapter."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tarsus.framework.monitor.ingest import caller_ip
from tarsus.protocol.gen import PropertyF

if TYPE_CHECKING:
    from tarsus.framework.property.aggregate import PropertyAggregator

__all__ = ["PropertyImp"]


class PropertyImp(PropertyF.PropertyFServant):
    def __init__(self, aggregator: PropertyAggregator) -> None:
        self.aggregator = aggregator

    async def reportPropMsg(
        self, statmsg: dict[PropertyF.StatPropMsgHead, PropertyF.StatPropMsgBody]
    ) -> int:
        self.aggregator.add(statmsg, caller_ip(), time.time())
        return 0
