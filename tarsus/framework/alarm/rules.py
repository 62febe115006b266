"""What an alert rule may say, checked before it is stored (every field comes from a caller).

A rule watches one thing and fires when its value is on the wrong side of ``threshold`` for
``windows`` consecutive windows (evaluations), then resolves on the first window that is not:

============== ======================================================= ===================
kind           value                                                   target
============== ======================================================= ===================
failure_rate   exce_count / all calls, percent, of the server's        ``App.Server[.if]``
               calls as callee (``tars_stat``, ``slave_name``)
timeout_rate   timeout_count / all calls, percent                      ``App.Server[.if]``
avg_latency    total_time / succ_count, ms (as upstream's web)         ``App.Server[.if]``
property       the property's ``value`` (``tars_property``, summed     ``App.Server.prop``
               over the server's instances, as MonitorQuery sums)
server_down    1 when an instance meant to run (setting ``active``)    ``App.Server@node``
               is not ``active``, else 0
node_lost      1 when a node is not ``active`` (no heartbeat), else 0  ``node``
============== ======================================================= ===================

For ``server_down`` and ``node_lost`` the threshold and comparison are fixed (value > 0).
"""

from __future__ import annotations

import math
import re
from typing import Final
from urllib.parse import urlsplit

from tarsus.names import InvalidName, check_application, check_node_name, check_server_name
from tarsus.protocol.gen import TarsusAlert
from tarsus.store.alerts import AlertRuleRow

__all__ = [
    "KINDS",
    "MAX_WINDOWS",
    "POLICIES",
    "STATE_KINDS",
    "STAT_KINDS",
    "RuleError",
    "check_rule",
    "rule_struct",
]

STAT_KINDS: Final = ("failure_rate", "timeout_rate", "avg_latency")
STATE_KINDS: Final = ("server_down", "node_lost")
KINDS: Final = (*STAT_KINDS, "property", *STATE_KINDS)
#: upstream's property policies (PropertyF: ``Sum``, ``Avg``, ``Distr``, ``Count``, ``Max``,
#: ``Min``)
POLICIES: Final = ("Sum", "Avg", "Distr", "Count", "Max", "Min")
#: A rule may ask for at most this many consecutive windows.
MAX_WINDOWS: Final = 60
MAX_WEBHOOK: Final = 512
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FIELD = re.compile(r"[A-Za-z0-9_.:/@-]{1,128}")


class RuleError(ValueError):
    """A rule that may not be stored: the message says why."""


def check_webhook(url: object) -> str:
    """An ``http``/``https`` URL with a host, no credentials, no spaces, <= 512 characters."""
    if not isinstance(url, str) or not url:
        raise RuleError("a webhook URL is required")
    if len(url) > MAX_WEBHOOK:
        raise RuleError(f"the webhook URL is over {MAX_WEBHOOK} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise RuleError("the webhook URL has a space or a control character")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError as e:
        raise RuleError(f"the webhook URL is not valid: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuleError(f"the webhook must be an http:// or https:// URL, got {url[:80]!r}")
    if parts.username or parts.password:
        raise RuleError("the webhook URL may not carry a user or password (they would be logged)")
    return url


def _field(what: str, value: str) -> str:
    if not _FIELD.fullmatch(value):
        raise RuleError(f"{what} {value[:40]!r}: 1-128 letters, digits or . _ : / @ -")
    return value


def check_rule(rule: TarsusAlert.AlertRule, *, user: str = "") -> AlertRuleRow:
    """The row for ``rule`` (a caller's), or :class:`RuleError` saying what is wrong."""
    name = rule.name if isinstance(rule.name, str) else ""
    if not _NAME.fullmatch(name):
        raise RuleError(f"rule name {name[:40]!r}: 1-128 letters, digits or . _ - (not first)")
    kind = rule.kind
    if kind not in KINDS:
        raise RuleError(f"kind {str(kind)[:40]!r}: one of {', '.join(KINDS)}")
    webhook = check_webhook(rule.webhook)
    app, server = rule.application or "", rule.serverName or ""
    interface, node = rule.interfaceName or "", rule.nodeName or ""
    prop, policy = rule.propertyName or "", rule.policy or ""
    comparison, threshold = rule.comparison or ">", float(rule.threshold)
    windows = int(rule.windows)
    try:
        if kind != "node_lost":
            check_application(app)
            if server or kind != "server_down":
                check_server_name(server)
        if node:
            check_node_name(node)
    except InvalidName as e:
        raise RuleError(str(e)) from None
    if kind == "node_lost" and (app or server):
        raise RuleError("node_lost watches nodes: give a node name (or none), no server")
    if interface:
        if kind not in STAT_KINDS:
            raise RuleError(f"an interface is for {', '.join(STAT_KINDS)} rules only")
        _field("interface", interface)
    if kind == "property":
        _field("property", prop)
        if policy not in POLICIES:
            raise RuleError(f"policy {policy[:20]!r}: one of {', '.join(POLICIES)}")
    elif prop or policy:
        raise RuleError("a property name and policy are for property rules only")
    if kind in STATE_KINDS:
        comparison, threshold = ">", 0.0
    if comparison not in (">", "<"):
        raise RuleError(f"comparison {comparison[:4]!r}: '>' or '<'")
    if not math.isfinite(threshold) or abs(threshold) > 1e15:
        raise RuleError(f"threshold {threshold}: a finite number")
    if kind in ("failure_rate", "timeout_rate") and not 0 <= threshold <= 100:
        raise RuleError(f"threshold {threshold}: a rate is a percentage, 0 to 100")
    if not 1 <= windows <= MAX_WINDOWS:
        raise RuleError(f"windows {windows}: 1 to {MAX_WINDOWS}")
    return AlertRuleRow(
        name=name,
        kind=kind,
        webhook=webhook,
        application=app,
        server_name=server,
        interface_name=interface,
        node_name=node,
        property_name=prop,
        policy=policy,
        comparison=comparison,
        threshold=threshold,
        windows=windows,
        enabled=bool(rule.enabled),
        lastuser=user[:30],
    )


def rule_struct(row: AlertRuleRow) -> TarsusAlert.AlertRule:
    return TarsusAlert.AlertRule(
        id=row.id,
        name=row.name,
        kind=row.kind,
        application=row.application,
        serverName=row.server_name,
        interfaceName=row.interface_name,
        nodeName=row.node_name,
        propertyName=row.property_name,
        policy=row.policy,
        comparison=row.comparison,
        threshold=row.threshold,
        windows=row.windows,
        webhook=row.webhook,
        enabled=row.enabled,
    )


def breaches(row: AlertRuleRow, value: float) -> bool:
    return value > row.threshold if row.comparison == ">" else value < row.threshold
