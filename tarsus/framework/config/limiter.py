"""Upstream's rate limit of config loads (TarsFramework ``ConfigImp``): per caller (application,
server, caller's address, file name) a counter starts at the first call; within ``interval``
seconds ``limit + 1`` calls pass, then each gets 429 until the window ends."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["TOO_MANY_CALLS", "RateLimiter"]

#: What a refused call returns (upstream: 429, as HTTP's "Too Many Requests").
TOO_MANY_CALLS = 429

_Key = tuple[str, str, str, str]


class RateLimiter:
    """Windows of at most ``max_callers`` callers (the oldest forgotten first, so a flood of
    made-up names cannot grow memory); ``limit = 0`` lets every call pass."""

    def __init__(
        self,
        interval: float,
        limit: int,
        *,
        max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.limit = limit
        self.max_callers = max_callers
        self._clock = clock
        #: key -> [window start, calls in it]; in order of window start
        self._windows: OrderedDict[_Key, list[float]] = OrderedDict()
        #: calls refused so far
        self.refused = 0

    def allow(self, app: str, server: str, ip: str, filename: str) -> bool:
        if self.limit <= 0:
            return True
        key = (app, server, ip, filename)
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window[0] > self.interval:
            self._windows.pop(key, None)
            while len(self._windows) >= self.max_callers:
                self._windows.popitem(last=False)
            window = self._windows[key] = [now, 0.0]
        if window[1] > self.limit:
            self.refused += 1
            return False
        window[1] += 1
        return True

    def __len__(self) -> int:
        return len(self._windows)
