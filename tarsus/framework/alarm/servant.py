"""``tarsus.AlertExt`` on ``tars.tarsalarm.AlarmObj``: a thin adapter over the service.

Return codes are TarsusAlert.tars's; a refused call says why in ``result`` and never raises.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tarsus.framework.alarm.rules import RuleError
from tarsus.protocol.gen import TarsusAlert
from tarsus.store.errors import Conflict, InvalidInput, NotFound, StoreError

if TYPE_CHECKING:
    from tarsus.framework.alarm.service import AlarmService

__all__ = ["AlarmImp"]

log = logging.getLogger("tarsus.framework.alarm")

OK, INVALID, NOT_FOUND, EXISTS, WEBHOOK_FAILED, STORE_FAILED = 0, -1, -2, -4, -5, -6
MAX_EVENTS = 1000


def _code(e: Exception) -> int:
    if isinstance(e, (RuleError, InvalidInput)):
        return INVALID
    if isinstance(e, NotFound):
        return NOT_FOUND
    if isinstance(e, Conflict):
        return EXISTS
    log.error("alert service: %s: %s", type(e).__name__, e)
    return STORE_FAILED


class AlarmImp(TarsusAlert.AlertExtServant):
    def __init__(self, service: AlarmService) -> None:
        self.service = service

    async def listRules(self) -> tuple[int, list[TarsusAlert.AlertRule]]:
        try:
            return OK, await self.service.list_rules()
        except StoreError as e:
            return _code(e), []

    async def addRule(self, rule: TarsusAlert.AlertRule) -> tuple[int, str]:
        try:
            return OK, str(await self.service.add_rule(rule))
        except (RuleError, TypeError, ValueError, OverflowError) as e:
            return INVALID, str(e)
        except StoreError as e:
            return _code(e), str(e)

    async def updateRule(self, rule: TarsusAlert.AlertRule) -> tuple[int, str]:
        try:
            return OK, str(await self.service.update_rule(rule))
        except (RuleError, TypeError, ValueError, OverflowError) as e:
            return INVALID, str(e)
        except StoreError as e:
            return _code(e), str(e)

    async def deleteRule(self, name: str) -> tuple[int, str]:
        try:
            await self.service.delete_rule(name)
        except StoreError as e:
            return _code(e), str(e)
        return OK, f"deleted {name}"

    async def testRule(self, name: str) -> tuple[int, str]:
        try:
            error = await self.service.test_rule(name)
        except StoreError as e:
            return _code(e), str(e)
        return (WEBHOOK_FAILED, error) if error else (OK, "the webhook took the test payload")

    async def listEvents(self, rule: str, limit: int) -> tuple[int, list[TarsusAlert.AlertEvent]]:
        try:
            return OK, await self.service.list_events(rule, max(1, min(limit, MAX_EVENTS)))
        except StoreError as e:
            return _code(e), []
