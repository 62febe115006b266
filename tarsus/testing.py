"""Test your servants without a cluster: serve in-process on an ephemeral port, call through
a real proxy over a real socket.

    async with serve(MyHello(), "Test.HelloServer.HelloObj") as served:
        hello = served.proxy(HelloProxy)
        assert await hello.sayHello("x") == (0, "hello x")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.proxy import ServantProxy
from tarsus.rpc.servant import Servant
from tarsus.rpc.server import Adapter

P = TypeVar("P", bound=ServantProxy)


class Served:
    def __init__(self, app: Application, adapter: Adapter, communicator: Communicator) -> None:
        self.app = app
        self.adapter = adapter
        self.communicator = communicator

    @property
    def endpoint(self) -> str:
        return str(self.adapter.bound_endpoint)

    @property
    def proxy_string(self) -> str:
        return f"{self.adapter.servant_name}@{self.endpoint}"

    def proxy(self, proxy_cls: type[P], *, version: int = 1) -> P:
        return self.communicator.string_to_proxy(proxy_cls, self.proxy_string, version=version)


@asynccontextmanager
async def serve(
    servant: Servant,
    servant_name: str = "Test.TestServer.TestObj",
    *,
    host: str = "127.0.0.1",
    **adapter_options: Any,
) -> AsyncIterator[Served]:
    """Serve ``servant`` on ``host`` at a free port for the duration of the block."""
    app = Application()
    adapter = app.add_servant(
        servant, servant_name, f"tcp -h {host} -p 0 -t 60000", **adapter_options
    )
    await app.start()
    comm = Communicator()
    try:
        yield Served(app, adapter, comm)
    finally:
        await comm.close()
        await app.stop(drain_timeout=1.0)
