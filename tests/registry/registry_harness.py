"""Helpers of the registry tests: a real registry (QueryObj + RegistryObj in an Application on
ephemeral ports) over a real database, and deploying instances into that database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tarsus.framework.registry import Registry, RegistrySettings, add_registry
from tarsus.protocol.gen import QueryF
from tarsus.protocol.gen.Registry import RegistryProxy
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.store import AdapterSpec, ServerSpec, Store

HELLO_IDL = """
module Test {
    interface Hello {
        string hello(string name);
    };
};
"""

#: Sub-second loops so that a test sees several ticks.
FAST = RegistrySettings(
    load_interval=0.1,
    full_load_interval=3600.0,
    node_timeout=1.0,
    node_sweep_interval=0.1,
    flush_interval=0.05,
    init_retry_interval=0.05,
    advertise_host="127.0.0.1",
)
EPHEMERAL = "tcp -h 127.0.0.1 -p 0 -t 60000"


@dataclass
class Running:
    app: Application
    registry: Registry
    comm: Communicator

    @property
    def query_endpoint(self) -> str:
        return str(self.registry.adapters[0].bound_endpoint)

    @property
    def registry_endpoint(self) -> str:
        return str(self.registry.adapters[1].bound_endpoint)

    @property
    def locator(self) -> str:
        return f"tars.tarsregistry.QueryObj@{self.query_endpoint}"

    def query(self) -> Any:
        return self.comm.string_to_proxy(QueryF.QueryFProxy, self.locator)

    def nodes(self) -> Any:
        return self.comm.string_to_proxy(
            RegistryProxy, f"tars.tarsregistry.RegistryObj@{self.registry_endpoint}"
        )


@contextlib.asynccontextmanager
async def running_registry(
    store: Store, settings: RegistrySettings = FAST
) -> AsyncIterator[Running]:
    app = Application()
    registry = add_registry(
        app, store, query_endpoint=EPHEMERAL, registry_endpoint=EPHEMERAL, settings=settings
    )
    await app.start()
    comm = Communicator(cache_dir=None)
    try:
        yield Running(app, registry, comm)
    finally:
        await comm.close()
        await app.stop(drain_timeout=1.0)


async def deploy(
    store: Store,
    app: str,
    server: str,
    node: str,
    servants: dict[str, str],
    *,
    present: str = "active",
    setting: str = "active",
    **spec: Any,
) -> None:
    """Deploy ``App.Server`` on ``node`` with ``{obj: endpoint}`` and set its states."""
    await store.servers.deploy(
        ServerSpec(app, server, node, **spec),
        [AdapterSpec(f"{app}.{server}.{obj}", endpoint) for obj, endpoint in servants.items()],
    )
    await store.servers.set_setting_state(app, server, node, setting)
    await store.servers.update_present(node, app, server, present, 4242)
