"""Dead-node shielding: the per-adapter health state machine of a Tars client.

This is TarsCpp's ``AdapterProxy::finishInvoke(bool)`` / ``checkActive`` / ``addConnExc`` logic
with the thresholds of ``CheckTimeoutInfo`` (``servant/servant/Message.h``), written as pure
logic: no sockets, no asyncio, and every method takes ``now`` (seconds, any monotonic clock) so
tests can walk the state machine with explicit times.

How the runtime drives it, per endpoint (one ``AdapterHealth`` per AdapterProxy):

- after each call: ``finish_invoke(failed, now)``; *failed* means the server answered
  ``iRet != 0`` or the call timed out. Local errors (encoding, cancellation) are not reported,
  as in C++;
- after a connect attempt: ``connect_failed(now)`` (refused, unreachable or connect timeout)
  or ``connect_ok(now)``;
- to route: ``available(now)``. A shielded adapter becomes available again once
  ``try_time_interval`` has passed; the selector that then picks it calls ``begin_probe(now)``,
  which lets that one request through and closes the door for another interval. The probe's
  outcome arrives through ``finish_invoke``: success restores the adapter, failure keeps it
  shielded.
"""

from __future__ import annotations

import enum
import logging
import math
import struct
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["AdapterHealth", "ShieldPolicy", "ShieldReason"]

_log = logging.getLogger(__name__)

_F32 = struct.Struct("<f")


def _f32(x: float) -> float:
    """Round to IEEE single precision, as C++ does for the ``float radio`` comparison."""
    return float(_F32.unpack(_F32.pack(x))[0])


@dataclass(frozen=True, slots=True)
class ShieldPolicy:
    """The thresholds of C++ ``CheckTimeoutInfo`` (times in seconds).

    An adapter is shielded when any of these holds:

    - **streak**: ``frequence_fail_invoke`` failures in a row, the streak having lasted at least
      ``min_frequence_fail_time`` seconds (no minimum duration when ``frequence_fail_invoke``
      is 1: a single failure shields);
    - **ratio**: at the first call after a ``check_timeout_interval`` window ends, that call
      failed, at least ``min_timeout_invoke`` calls in the window failed, and failures are at
      least ``radio`` of all calls in the window;
    - **connect**: ``max_connect_exc`` connection failures in a row.

    A shielded adapter gets one probe request every ``try_time_interval`` seconds.

    Presets, by the TarsCpp release that shipped them as ``CheckTimeoutInfo()`` defaults:

    ========================  =====  =====  =======  =======
    field                     V2_4   V3_0   V3_0_16  V3_0_22
    ========================  =====  =====  =======  =======
    min_timeout_invoke        2      2      2        1
    check_timeout_interval    60     60     5        5
    frequence_fail_invoke     5      2      3        1
    min_frequence_fail_time   5      5      2        3
    radio                     0.5    0.5    0.3      0.05
    try_time_interval         10     10     10       5
    max_connect_exc           1      1      1        1
    ========================  =====  =====  =======  =======

    ``V2_4``: v2.4.x (2020-2021). ``V3_0``: v3.0.0-v3.0.15. ``V3_0_16``: v3.0.16-v3.0.20
    (TarsCpp commit cb85124, 2023-08). ``V3_0_22``: v3.0.22 and later (commit d08d5f7, 2025-06).

    ``ShieldPolicy()`` (also ``DEFAULT``) is ``V3_0_16``; override single fields by keyword,
    e.g. ``ShieldPolicy(try_time_interval=30)``. With it a dead node is shielded at once when
    it refuses connections (``max_connect_exc`` 1, same in every version), and a node that
    accepts but stops answering is shielded after three failed calls spread over at least
    2 s, or by the 30 % ratio at the next 5 s window boundary, so callers move away within
    seconds rather than the minute-long windows of v2.4/v3.0.0. Unlike v3.0.22 it does not
    shield a node for one timeout: a healthy node that is briefly slow (a GC pause, one slow
    query) keeps its traffic, where v3.0.22 would take it out for 5 s on the first timeout
    and, at low QPS, flap between nodes. Pick ``V3_0_22`` to mirror a current C++ client exactly.
    """

    min_timeout_invoke: int = 2
    check_timeout_interval: float = 5
    frequence_fail_invoke: int = 3
    min_frequence_fail_time: float = 2
    radio: float = 0.3
    try_time_interval: float = 10
    max_connect_exc: int = 1

    V2_4: ClassVar[ShieldPolicy]
    V3_0: ClassVar[ShieldPolicy]
    V3_0_16: ClassVar[ShieldPolicy]
    V3_0_22: ClassVar[ShieldPolicy]
    DEFAULT: ClassVar[ShieldPolicy]

    def __post_init__(self) -> None:
        for name in ("min_timeout_invoke", "frequence_fail_invoke", "max_connect_exc"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ShieldPolicy.{name} must be an int >= 1, got {value!r}")
        for name in ("check_timeout_interval", "min_frequence_fail_time", "try_time_interval"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"ShieldPolicy.{name} must be seconds >= 0, got {value!r}")
        if not isinstance(self.radio, int | float) or not 0.0 <= self.radio <= 1.0:
            raise ValueError(f"ShieldPolicy.radio must be within 0..1, got {self.radio!r}")


ShieldPolicy.V2_4 = ShieldPolicy(2, 60, 5, 5, 0.5, 10, 1)
ShieldPolicy.V3_0 = ShieldPolicy(2, 60, 2, 5, 0.5, 10, 1)
ShieldPolicy.V3_0_16 = ShieldPolicy(2, 5, 3, 2, 0.3, 10, 1)
ShieldPolicy.V3_0_22 = ShieldPolicy(1, 5, 1, 3, 0.05, 5, 1)
ShieldPolicy.DEFAULT = ShieldPolicy()


class ShieldReason(enum.Enum):
    """Why an adapter is shielded (for logs and ``repr``; C++ logs the same three cases)."""

    STREAK = "consecutive failures"
    RATIO = "failure ratio"
    CONNECT = "connection failures"


class AdapterHealth:
    """The health of one endpoint as seen by one client: counts calls, shields, probes.

    State follows C++ ``AdapterProxy`` field by field: ``total``/``timeouts`` are the window
    counters (``_totalInvoke``/``_timeoutInvoke``), ``streak`` is ``_frequenceFailInvoke``,
    ``retry_at`` is ``_nextRetryTime``. Two deliberate differences from C++:

    - times are float seconds; C++ compares whole seconds (``TNOW``);
    - ``connect_ok`` lifts only a shield that connection failures caused. C++ re-activates
      the adapter on any successful connect, which there *is* its probe (shielding closes
      the connection, and only a retry reconnects); here the probe is an explicit request,
      so a node shielded for timeouts stays shielded until a call through it succeeds.
    """

    __slots__ = (
        "_connect_broken",
        "_connect_failures",
        "_policy",
        "_reason",
        "_retry_at",
        "_shielded",
        "_streak",
        "_streak_deadline",
        "_timeouts",
        "_total",
        "_window_end",
        "label",
    )

    def __init__(self, policy: ShieldPolicy | None = None, *, label: str = "") -> None:
        #: Names the adapter in logs and ``repr`` (e.g. ``"App.Server.Obj@tcp -h ... -p ..."``).
        self.label = label
        self._policy = ShieldPolicy.DEFAULT if policy is None else policy
        self._shielded = False
        self._reason: ShieldReason | None = None
        self._total = 0
        self._timeouts = 0
        self._streak = 0
        self._streak_deadline = 0.0
        # C++ starts _nextFinishInvokeTime at 0, so the first call already closes a window.
        self._window_end = -math.inf
        self._retry_at = -math.inf
        self._connect_failures = 0
        self._connect_broken = False

    # -- state -------------------------------------------------------------------------------

    @property
    def policy(self) -> ShieldPolicy:
        return self._policy

    @property
    def shielded(self) -> bool:
        """True while the adapter is taken out of rotation (C++ ``!_activeStatus``)."""
        return self._shielded

    @property
    def reason(self) -> ShieldReason | None:
        """Why the adapter is shielded, or None when it is not."""
        return self._reason if self._shielded else None

    @property
    def connect_broken(self) -> bool:
        """True after the connection failures that shielded it, until a connect or call succeeds.

        Selectors use it when every node is down: they prefer nodes that at least connect
        (C++ ``isConnExc``/``isConnTimeout``).
        """
        return self._connect_broken

    @property
    def retry_at(self) -> float:
        """When a shielded adapter may next get a probe request (C++ ``_nextRetryTime``)."""
        return self._retry_at

    @property
    def total(self) -> int:
        """Calls counted in the current window."""
        return self._total

    @property
    def timeouts(self) -> int:
        """Failed calls counted in the current window."""
        return self._timeouts

    @property
    def streak(self) -> int:
        """Consecutive failed calls."""
        return self._streak

    def available(self, now: float) -> bool:
        """Whether a request may be routed here: not shielded, or due for a probe."""
        return not self._shielded or now >= self._retry_at

    # -- events ------------------------------------------------------------------------------

    def begin_probe(self, now: float) -> None:
        """A request is being sent to this shielded adapter as a probe.

        Pushes the next probe ``try_time_interval`` away (C++ ``resetRetryTime``), so only
        this request gets through; its outcome, reported by ``finish_invoke``, decides.
        A lost probe costs one interval: another is allowed after it. No-op when not shielded.
        """
        if self._shielded:
            self._retry_at = now + self._policy.try_time_interval

    def finish_invoke(self, failed: bool, now: float) -> None:
        """Count one finished call: *failed* is ``iRet != 0`` or a timeout."""
        p = self._policy
        if self._shielded:
            if not failed:
                # A probe (or a late answer) succeeded: the node is back, counters start over.
                self._shielded = False
                self._reason = None
                self._streak = 0
                self._window_end = now + p.check_timeout_interval
                self._total = 1
                self._timeouts = 0
                self._connect_broken = False
                _log.info("adapter restored: %s", self.label, extra={"adapter": self.label})
            return

        self._total += 1
        if failed:
            self._timeouts += 1
            if self._streak == 0:
                self._streak_deadline = now + p.min_frequence_fail_time
            self._streak += 1
            if self._streak >= p.frequence_fail_invoke and (
                now >= self._streak_deadline or p.frequence_fail_invoke == 1
            ):
                self._shield(now, ShieldReason.STREAK)
                return
        else:
            self._streak = 0

        if now > self._window_end:
            self._window_end = now + p.check_timeout_interval
            # C++ compares against ``float radio * total`` computed in single precision.
            if (
                failed
                and self._timeouts >= p.min_timeout_invoke
                and self._timeouts >= _f32(_f32(p.radio) * _f32(self._total))
            ):
                self._shield(now, ShieldReason.RATIO)
            else:
                self._total = 0
                self._timeouts = 0

    def connect_failed(self, now: float) -> None:
        """A connection attempt failed (refused, unreachable or timed out)."""
        if self._connect_broken:
            return
        self._connect_failures += 1
        if self._connect_failures >= self._policy.max_connect_exc:
            self._shield(now, ShieldReason.CONNECT)
            self._connect_broken = True

    def connect_ok(self, now: float) -> None:
        """A connection was established: clears connection failures (and their shield)."""
        self._connect_failures = 0
        self._connect_broken = False
        if self._shielded and self._reason is ShieldReason.CONNECT:
            self._shielded = False
            self._reason = None
            _log.info("adapter reconnected: %s", self.label, extra={"adapter": self.label})

    def _shield(self, now: float, reason: ShieldReason) -> None:
        self._shielded = True
        self._reason = reason
        self._retry_at = now + self._policy.try_time_interval
        _log.warning(
            "adapter shielded (%s): %s; streak=%d timeouts=%d total=%d",
            reason.value,
            self.label,
            self._streak,
            self._timeouts,
            self._total,
            extra={"adapter": self.label, "reason": reason.name},
        )

    def __repr__(self) -> str:
        label = f" {self.label}" if self.label else ""
        if self._shielded:
            assert self._reason is not None
            state = f"shielded ({self._reason.value}) retry_at={self._retry_at:g}"
        else:
            state = "active"
        broken = " connect_broken" if self._connect_broken else ""
        return (
            f"<AdapterHealth{label} {state}{broken} total={self._total}"
            f" timeouts={self._timeouts} streak={self._streak}>"
        )
