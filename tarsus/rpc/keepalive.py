"""Heartbeats to the local node (``ServerF`` in ``NodeF.tars``), as TarsCpp and TarsGo send them.

- ``reportVersion(app, server, version)`` once at start.
- ``keepActiving(ServerInfo)`` every 5 s while the application initialises.
- ``keepAlive(ServerInfo)`` with an empty adapter once the server is up, then every 10 s one
  per adapter, the ``AdminAdapter`` included (TarsGo's main loop; TarsCpp batches the same
  beats on the admin adapter's tick).

The node marks a server dead after ``hearttimeout`` (45 s in the template) without a beat. A
node that is down or slow must never hurt the server: each beat is a short call of its own,
failures are swallowed, and a warning is logged at most once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from tarsus.protocol.gen import NodeF
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.periodic import Periodic

__all__ = [
    "ACTIVING_INTERVAL",
    "HEARTBEAT_INTERVAL",
    "NODE_CALL_TIMEOUT_MS",
    "KeepAlive",
]

log = logging.getLogger("tarsus.rpc.keepalive")

#: Seconds between keepAlive rounds (C++ ``HEART_BEAT_INTERVAL``, Go ``MainLoopTicker``).
HEARTBEAT_INTERVAL = 10.0
#: Seconds between keepActiving calls while initialising (C++ ``Application::main``).
ACTIVING_INTERVAL = 5.0
#: Timeout of one heartbeat call: well inside the interval, so beats never pile up.
NODE_CALL_TIMEOUT_MS = 3000
#: At most one warning about an unreachable node per this many seconds.
WARN_EVERY = 60.0


class KeepAlive:
    """Reports this process to the node at ``node`` (``tars.tarsnode.ServerObj@tcp -h ...``).

    ``adapters`` is called at every round for the adapter names to report, so adapters added
    later are reported too.
    """

    def __init__(
        self,
        communicator: Communicator,
        node: str,
        app: str,
        server: str,
        adapters: Callable[[], Sequence[str]],
        *,
        interval: float = HEARTBEAT_INTERVAL,
        activing_interval: float = ACTIVING_INTERVAL,
        pid: int | None = None,
    ) -> None:
        tars = NodeF
        self.node = node
        self.app = app
        self.server = server
        self.adapters = adapters
        self.interval = interval
        self.activing_interval = activing_interval
        self.pid = os.getpid() if pid is None else pid
        self._proxy = communicator.string_to_proxy(tars.ServerFProxy, node).with_options(
            timeout_ms=NODE_CALL_TIMEOUT_MS
        )
        self._server_info = tars.ServerInfo
        self._beats = Periodic(
            "tarsus-keepalive", lambda: self.interval, self._beat_round, run_first=True
        )
        self._version: str | None = None  # reported in the first round
        self._greeted = False  # the first round (reportVersion, keepAlive("")) is done
        self._activing: list[Periodic] = []
        self._last_warning = float("-inf")
        #: beats sent / beats that failed, for viewstatus and tests
        self.sent = 0
        self.failed = 0

    def info(self, adapter: str = "") -> NodeF.ServerInfo:
        return self._server_info(
            application=self.app, serverName=self.server, pid=self.pid, adapter=adapter
        )

    # -- the calls -----------------------------------------------------------------------

    async def report_version(self, version: str) -> None:
        await self._call("reportVersion", self._proxy.reportVersion, self.app, self.server, version)

    async def keep_activing(self) -> None:
        await self._call("keepActiving", self._proxy.keepActiving, self.info())

    async def keep_alive(self, adapter: str = "") -> None:
        await self._call("keepAlive", self._proxy.keepAlive, self.info(adapter))

    async def beat(self) -> None:
        """One round: a keepAlive per adapter, sent together."""
        await asyncio.gather(*(self.keep_alive(name) for name in self.adapters()))

    async def _call(self, what: str, method: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self.sent += 1
        try:
            await method(*args)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a node that is down, slow or odd never hurts the server
            self.failed += 1
            now = time.monotonic()
            if now - self._last_warning >= WARN_EVERY:
                self._last_warning = now
                log.warning(
                    "node %s: %s failed: %s (further failures not logged for %ds)",
                    self.node,
                    what,
                    e,
                    WARN_EVERY,
                )
            else:
                log.debug("node %s: %s failed: %s", self.node, what, e)

    # -- the loops -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def activing(self) -> AsyncIterator[None]:
        """While the block runs (the application's initialisation), send keepActiving: once
        right away, then every ``activing_interval`` seconds. The block never waits for the
        node; a call still on its way when the block ends is left to finish."""
        loop = Periodic(
            "tarsus-keepactiving",
            lambda: self.activing_interval,
            self.keep_activing,
            run_first=True,
        )
        self._activing = [*(p for p in self._activing if p.running), loop]
        loop.start()
        try:
            yield
        finally:
            loop.finish()

    def start(self, version: str | None = None) -> None:
        """Send ``reportVersion(version)`` (when given) and keepAlive("") now, then a round
        per adapter every ``interval`` seconds, until :meth:`stop`."""
        if not self._beats.running:
            self._version = version
            self._greeted = False
            self._beats.start()

    async def _beat_round(self) -> None:
        if self._greeted:
            await self.beat()
            return
        self._greeted = True
        first = [self.keep_alive("")]
        if self._version is not None:
            first.insert(0, self.report_version(self._version))
        await asyncio.gather(*first)

    async def stop(self) -> None:
        """Stop beating (and cancel any call still on its way)."""
        loops, self._activing = [*self._activing, self._beats], []
        for loop in loops:
            await loop.stop()

    @property
    def running(self) -> bool:
        return self._beats.running
