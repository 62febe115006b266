"""``Communicator``: where proxies come from.

A communicator holds the client settings (locator, timeouts, shielding policy) and one
``ObjectProxy`` per servant name, shared by every proxy to it, so connections are shared too.

    comm = Communicator()
    hello = comm.string_to_proxy(HelloProxy, "Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p 18601")
    ret, greeting = await hello.sayHello("bob")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tarsus.rpc.client import TARSVERSION, CallRecord, ObjectProxy
from tarsus.rpc.endpoint import parse_proxy
from tarsus.rpc.errors import NoEndpointError
from tarsus.rpc.health import ShieldPolicy
from tarsus.rpc.proxy import ServantProxy

P = TypeVar("P", bound=ServantProxy)


class Communicator:
    def __init__(
        self,
        locator: str | None = None,
        *,
        timeout_ms: int = 3000,
        connect_timeout_ms: int = 1500,
        shield_policy: ShieldPolicy | None = None,
    ) -> None:
        self.locator = locator
        self.timeout_ms = timeout_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.shield_policy = shield_policy or ShieldPolicy()
        self._objects: dict[tuple[str, int], ObjectProxy] = {}
        #: called with a CallRecord after every two-way call through this communicator
        self.observers: list[Callable[[CallRecord], None]] = []

    def string_to_proxy(self, proxy_cls: type[P], name: str, *, version: int = TARSVERSION) -> P:
        """A proxy for ``Obj@endpoints`` (direct) or a bare ``Obj`` (through the locator)."""
        return proxy_cls(self.object_proxy(name, version=version))

    def object_proxy(self, name: str, *, version: int = TARSVERSION) -> ObjectProxy:
        key = (name, version)
        obj = self._objects.get(key)
        if obj is None:
            target = parse_proxy(name)
            if not target.endpoints and self.locator is None:
                raise NoEndpointError(
                    message=f"{name!r} names no endpoint and no locator is configured"
                )
            obj = ObjectProxy(
                target.obj_name,
                target.endpoints,
                timeout_ms=self.timeout_ms,
                connect_timeout_ms=self.connect_timeout_ms,
                version=version,
                policy=self.shield_policy,
                observers=self.observers,
            )
            self._objects[key] = obj
        return obj

    async def close(self) -> None:
        for obj in self._objects.values():
            obj.close()
        self._objects.clear()

    async def __aenter__(self) -> Communicator:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
