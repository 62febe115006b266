"""What the alert service (``tars.tarsalarm``) can be tuned with, from its TC_Config."""

from __future__ import annotations

from dataclasses import dataclass, field

from tarsus.codec.constants import QUERY_PROPERTY_OBJ, QUERY_STAT_OBJ
from tarsus.conf import ConfigError, TCConfig
from tarsus.framework.alarm.webhook import DeliverySettings

__all__ = ["AlarmSettings"]


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    #: seconds per window: rules are evaluated once a window (the stat service's window:
    #: 60 s by default in Tarsus, upstream's 5 minutes)
    window_s: float = 60.0
    #: the query servants (bare names go through the locator; ``obj@tcp -h ...`` direct)
    querystat_obj: str = QUERY_STAT_OBJ
    queryproperty_obj: str = QUERY_PROPERTY_OBJ
    #: seconds between delivery rounds (a new event is sent at once)
    deliver_every_s: float = 5.0
    delivery: DeliverySettings = field(default_factory=DeliverySettings)

    def __post_init__(self) -> None:
        if not 0.05 <= self.window_s <= 86400:
            raise ValueError(f"window must be 0.05 s to a day, got {self.window_s}")
        if not 0.05 <= self.deliver_every_s <= 3600:
            raise ValueError(f"deliverEvery must be 0.05 s to an hour, got {self.deliver_every_s}")
        d = self.delivery
        if not (0 < d.timeout_s <= 60 and 1 <= d.max_attempts <= 100 and d.first_retry_s > 0):
            raise ValueError("webhook timeout 0-60 s, attempts 1-100, first retry > 0")
        if not (d.max_retry_s >= d.first_retry_s and d.max_pending >= 1 and d.batch >= 1):
            raise ValueError("maxRetry >= firstRetry, maxPending >= 1, batch >= 1")

    @classmethod
    def from_tcconfig(cls, tc: TCConfig) -> AlarmSettings:
        """Keys under ``/tars/alarm``: ``window``, ``querystat``, ``queryproperty``,
        ``deliverEvery``, ``webhookTimeout``, ``maxAttempts``, ``firstRetry``, ``maxRetry``,
        ``maxPending`` (seconds where a time)."""

        def num(key: str, default: float) -> float:
            text = tc.get(f"/tars/alarm<{key}>", "").strip()
            try:
                return float(text) if text else default
            except ValueError:
                raise ConfigError(f"/tars/alarm<{key}>: not a number: {text[:40]!r}") from None

        base, d = cls(), DeliverySettings()
        try:
            return cls(
                window_s=num("window", base.window_s),
                querystat_obj=tc.get("/tars/alarm<querystat>", "").strip() or QUERY_STAT_OBJ,
                queryproperty_obj=tc.get("/tars/alarm<queryproperty>", "").strip()
                or QUERY_PROPERTY_OBJ,
                deliver_every_s=num("deliverEvery", base.deliver_every_s),
                delivery=DeliverySettings(
                    timeout_s=num("webhookTimeout", d.timeout_s),
                    max_attempts=int(num("maxAttempts", d.max_attempts)),
                    first_retry_s=num("firstRetry", d.first_retry_s),
                    max_retry_s=num("maxRetry", d.max_retry_s),
                    max_pending=int(num("maxPending", d.max_pending)),
                ),
            )
        except ValueError as e:
            raise ConfigError(f"tars.tarsalarm: {e}") from None
