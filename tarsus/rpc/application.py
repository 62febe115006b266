"""``Application``: a Tars server process — its adapters, its client side, its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.servant import Servant
from tarsus.rpc.server import Adapter

log = logging.getLogger("tarsus.rpc.application")


class Application:
    """Serve servants on their endpoints; stop gracefully.

    Built programmatically (tests, scripts) with ``add_servant``; a server started by a node
    agent is built from the config file the node generates (``Application.from_config``).
    """

    def __init__(self, communicator: Communicator | None = None) -> None:
        self.adapters: list[Adapter] = []
        self.communicator = communicator or Communicator()
        self._stopped = asyncio.Event()
        self.started = False

    def add_servant(
        self, servant: Servant, servant_name: str, endpoint: str | Endpoint, **options: Any
    ) -> Adapter:
        adapter = Adapter(servant, servant_name, endpoint, **options)
        self.adapters.append(adapter)
        return adapter

    async def start(self) -> None:
        for adapter in self.adapters:
            await adapter.start()
        self.started = True

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, let in-flight calls finish (up to ``drain_timeout`` s), close."""
        for adapter in self.adapters:
            await adapter.stop_accepting()
        deadline = time.monotonic() + drain_timeout
        for adapter in self.adapters:
            if not await adapter.drain(deadline):
                log.warning(
                    "%s: calls still running after %.1fs, cancelling", adapter.name, drain_timeout
                )
        for adapter in self.adapters:
            await adapter.close()
        await self.communicator.close()
        self._stopped.set()

    def request_stop(self) -> None:
        asyncio.get_running_loop().create_task(self.stop())

    async def serve_forever(self) -> None:
        """Start, then run until SIGTERM/SIGINT or ``request_stop``."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
                loop.add_signal_handler(sig, self.request_stop)
        if not self.started:
            await self.start()
        await self._stopped.wait()
