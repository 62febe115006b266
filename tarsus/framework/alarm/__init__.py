"""Alerts (``tars.tarsalarm``, Tarsus's own): rules on failure rate, timeout rate, average
latency, a property, server down and node lost, evaluated every window; firing and resolving
posted to webhooks as JSON and recorded. See docs/alerts.md.

- :class:`AlarmService` / :func:`add_alarm`: the framework service and how to serve it;
- :mod:`~tarsus.framework.alarm.rules`: what a rule may say; :mod:`.sources`: where values
  come from; :mod:`.evaluator`: firing and resolving; :mod:`.webhook`: delivery.
"""

from tarsus.framework.alarm.rules import KINDS, RuleError, check_rule
from tarsus.framework.alarm.service import ALARM_SPEC, AlarmService, add_alarm
from tarsus.framework.alarm.settings import AlarmSettings
from tarsus.framework.alarm.webhook import DeliverySettings

__all__ = [
    "ALARM_SPEC",
    "KINDS",
    "AlarmService",
    "AlarmSettings",
    "DeliverySettings",
    "RuleError",
    "add_alarm",
    "check_rule",
]
