"""Sending alert events to webhooks: an HTTP POST of JSON, retried with backoff, bounded.

Every event is a row of ``t_alert_events`` with ``delivery = pending`` first; a delivery round
sends the due ones oldest first. An answer 2xx is ``sent``; anything else (refused, timeout,
5xx, 4xx) is retried after ``first_retry * 2**(attempts-1)`` seconds, capped at ``max_retry``,
and after ``max_attempts`` it is ``failed`` with the last error. Since the rows are the queue,
a restart loses nothing, and the backlog is bounded: beyond ``max_pending`` the oldest pending
events are marked failed. A webhook that failed in a round is not tried again in that round,
so one dead receiver costs one timeout per round, not one per event.

The payload (``Content-Type: application/json``)::

    {"status": "firing", "rule": "api-failures", "kind": "failure_rate",
     "target": "Shop.Api", "value": 12.5, "threshold": 5.0, "comparison": ">",
     "windows": 3, "message": "...", "time": "2026-01-02 10:04:00", "event": 17,
     "source": "tars.tarsalarm"}
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tarsus.store.alerts import AlertEventRow, AlertRuleRow

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["Delivery", "DeliverySettings", "payload", "post_json"]

log = logging.getLogger("tarsus.framework.alarm.webhook")

#: bytes of a receiver's answer read (and kept in an error) at most
_ANSWER_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    #: seconds a POST may take
    timeout_s: float = 5.0
    #: tries per event before it is ``failed``
    max_attempts: int = 8
    #: seconds before the first retry; doubled each time
    first_retry_s: float = 5.0
    #: the longest wait between retries
    max_retry_s: float = 600.0
    #: pending events kept at most (older ones are marked failed)
    max_pending: int = 10_000
    #: events sent per round at most
    batch: int = 100


def payload(event: AlertEventRow, rule: AlertRuleRow | None) -> dict[str, Any]:
    value = event.value
    return {
        "status": event.state,
        "rule": event.rule_name,
        "kind": rule.kind if rule else "",
        "target": event.target,
        "value": value if value is None or value == value else None,
        "threshold": event.threshold,
        "comparison": rule.comparison if rule else "",
        "windows": rule.windows if rule else 0,
        "message": event.message,
        "time": event.event_time.strftime("%Y-%m-%d %H:%M:%S") if event.event_time else "",
        "event": event.id,
        "source": "tars.tarsalarm",
    }


def _post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "tarsus-alarm"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        answer.read(_ANSWER_LIMIT)
        return int(answer.status)


async def post_json(url: str, data: dict[str, Any], timeout: float) -> str:
    """POST ``data`` to ``url``: "" when answered 2xx, else why not (never raises)."""
    body = json.dumps(data, allow_nan=False).encode()
    try:
        status = await asyncio.to_thread(_post, url, body, timeout)
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except urllib.error.URLError as e:
        return f"unreachable: {e.reason}"[:255]
    except (OSError, ValueError) as e:
        return f"{type(e).__name__}: {e}"[:255]
    return "" if 200 <= status < 300 else f"HTTP {status}"


class Delivery:
    """Sends the due events of the store (one :meth:`round` at a time)."""

    def __init__(self, store: Store, settings: DeliverySettings) -> None:
        self.store, self.settings = store, settings
        #: events sent / given up, since start
        self.sent = 0
        self.failed = 0

    def retry_delay(self, attempts: int) -> float:
        delay: float = self.settings.first_retry_s * 2.0 ** max(attempts - 1, 0)
        return min(delay, self.settings.max_retry_s)

    async def round(self) -> None:
        dropped = await self.store.alerts.drop_pending_over(self.settings.max_pending)
        if dropped:
            self.failed += dropped
            log.warning(
                "%d pending alert events dropped: over %d pending",
                dropped,
                self.settings.max_pending,
            )
        due = await self.store.alerts.due(self.settings.batch)
        if not due:
            return
        rules = {r.id: r for r in await self.store.alerts.rules()}
        down: dict[str, str] = {}
        for event in due:
            error = down.get(event.webhook)
            if error is None:
                error = await post_json(
                    event.webhook, payload(event, rules.get(event.rule_id)), self.settings.timeout_s
                )
                if error:
                    down[event.webhook] = error
            else:
                # not tried: this webhook failed already in this round
                await self.store.alerts.retry_at(
                    event.id, event.attempts, self.store.clock() + timedelta(seconds=1), error
                )
                continue
            await self._record(event, error)

    async def _record(self, event: AlertEventRow, error: str) -> None:
        attempts = event.attempts + 1
        if not error:
            self.sent += 1
            await self.store.alerts.delivered(event.id, attempts)
            return
        if attempts >= self.settings.max_attempts:
            self.failed += 1
            log.warning(
                "alert event %d (%s %s) to %s: gave up after %d attempts: %s",
                event.id,
                event.rule_name,
                event.state,
                event.webhook,
                attempts,
                error,
            )
            await self.store.alerts.gave_up(event.id, attempts, error)
            return
        when = self.store.clock() + timedelta(seconds=self.retry_delay(attempts))
        log.info(
            "alert event %d to %s failed (%s): attempt %d of %d at %s",
            event.id,
            event.webhook,
            error,
            attempts,
            self.settings.max_attempts,
            when,
        )
        await self.store.alerts.retry_at(event.id, attempts, when, error)
