"""``StatImp``: the ``tars.tarsstat.StatObj`` servant, a thin adapter over the service."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from tarsus.framework.monitor.ingest import caller_ip
from tarsus.protocol.gen import StatF

if TYPE_CHECKING:
    from tarsus.framework.stat.aggregate import StatAggregator

__all__ = ["StatImp"]

log = logging.getLogger("tarsus.framework.stat")


class StatImp(StatF.StatFServant):
    def __init__(self, aggregator: StatAggregator) -> None:
        self.aggregator = aggregator

    async def reportMicMsg(
        self, msg: dict[StatF.StatMicMsgHead, StatF.StatMicMsgBody], bFromClient: bool
    ) -> int:
        self.aggregator.add(msg, bFromClient, caller_ip(), time.time())
        return 0

    async def reportSampleMsg(self, msg: list[StatF.StatSampleMsg]) -> int:
        # upstream accepts and only logs them
        log.debug("reportSampleMsg: %d samples from %s (not stored)", len(msg), caller_ip())
        return 0
