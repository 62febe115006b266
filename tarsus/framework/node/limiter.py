"""The activation limiter: stop a crash loop from hammering the machine (upstream ``Activator``).

Every start is recorded. A start within ``time_interval`` of the previous one counts towards
the limit; once more than ``max_count`` have counted the server is *limited*: node-initiated
starts are refused until ``punish_interval`` has passed since the last start, after which one
try per ``punish_interval`` goes through. ``1.5 * punish_interval`` without any start forget
everything.

An operator's start is never refused, and it resets the limiter: the server gets its whole
allowance again (upstream's manual start only bypasses the check).

One deliberate difference: upstream forgets only while limited, so quick restarts days apart
add up until a healthy server is punished; here any long enough quiet spell forgets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tarsus.framework.node.settings import ActivationLimits

__all__ = ["ActivationLimiter"]


class ActivationLimiter:
    def __init__(
        self, limits: ActivationLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.count = 0
        self.limited = False
        self.last: float | None = None

    def record(self) -> None:
        """A start is being attempted now."""
        now = self.clock()
        if self.last is not None:
            if now - self.last > self.limits.reset_after:
                self.count = 0
                self.limited = False
            elif now - self.last < self.limits.time_interval:
                self.count += 1
            if self.count > self.limits.max_count:
                self.limited = True
        self.last = now

    def is_limited(self) -> bool:
        """Whether a node-initiated start must wait (punishment not over)."""
        return (
            self.limited
            and self.last is not None
            and self.clock() - self.last < self.limits.punish_interval
        )

    def held_until(self) -> float | None:
        """When (on ``clock``) node-initiated starts may resume; None when not held back."""
        if not self.is_limited() or self.last is None:
            return None
        return self.last + self.limits.punish_interval

    def reset(self) -> None:
        """Forget every start (an operator started the server)."""
        self.count = 0
        self.limited = False
        self.last = None
