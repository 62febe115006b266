"""The admin registry's ``t_registry_info`` heartbeat, and that the registry then resolves
``tars.tarsAdminRegistry.AdminRegObj`` for clients that only know the locator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from admin_support import Harness
from sqlalchemy import insert, select

from tarsus.conf import parse
from tarsus.framework.admin import ADMIN_SERVANT, AdminSettings, add_admin
from tarsus.framework.admin.channel import NodeChannels
from tarsus.framework.registry import RegistrySettings, add_registry
from tarsus.protocol.gen import AdminReg, QueryF
from tarsus.rpc.application import Application
from tarsus.rpc.communicator import Communicator
from tarsus.store import Store
from tarsus.store.schema import t_registry_info
from tarsus.testing import eventually

EPHEMERAL = "tcp -h 127.0.0.1 -p 0 -t 60000"


async def rows(store: Store) -> dict[str, tuple[str, str, str]]:
    r = t_registry_info.c
    async with store.connect() as conn:
        result = await conn.execute(select(r.locator_id, r.servant, r.endpoint, r.present_state))
        return {loc: (servant, ep, state) for loc, servant, ep, state in result}


async def test_heartbeat_row_names_the_bound_endpoint(admin: Harness, clock: Any) -> None:
    port = admin.registry.adapter.port
    locator_id = f"127.0.0.1:{port}"
    await eventually(lambda: _has(admin.store, locator_id), f"the heartbeat row {locator_id}")
    servant, endpoint, state = (await rows(admin.store))[locator_id]
    assert (servant, endpoint, state) == (
        ADMIN_SERVANT,
        f"tcp -h 127.0.0.1 -p {port} -t 60000",
        "active",
    )
    # a registry or admin registry that stopped beating is marked inactive
    async with admin.store.begin() as conn:
        await conn.execute(
            insert(t_registry_info).values(
                locator_id="10.0.0.1:12000",
                servant=ADMIN_SERVANT,
                endpoint="tcp -h 10.0.0.1 -p 12000 -t 60000",
                last_heartbeat=clock() - timedelta(seconds=151),
                present_state="active",
                tars_version="x",
            )
        )
    assert await admin.registry.heartbeat.expire() == 1
    found = await rows(admin.store)
    assert found["10.0.0.1:12000"][2] == "inactive" and found[locator_id][2] == "active"


async def _has(store: Store, locator_id: str) -> bool:
    return locator_id in await rows(store)


async def test_the_registry_resolves_the_admin_registry(store: Store) -> None:
    app = Application()
    registry = add_registry(
        app,
        store,
        query_endpoint=EPHEMERAL,
        registry_endpoint=EPHEMERAL,
        settings=RegistrySettings(load_interval=0.1, init_retry_interval=0.05),
    )
    admin = add_admin(
        app,
        store,
        NodeChannels(),
        endpoint=EPHEMERAL,
        settings=AdminSettings(update_heart_interval=0.1),
    )
    await app.start()
    locator = f"tars.tarsregistry.QueryObj@{registry.adapters[0].bound_endpoint}"
    comm = Communicator(locator, cache_dir=None)
    try:
        query = comm.string_to_proxy(QueryF.QueryFProxy, locator)

        async def listed() -> bool:
            return bool(await query.findObjectById(ADMIN_SERVANT))

        await eventually(listed, "the registry to load our t_registry_info row")
        assert admin.adapter is not None
        (endpoint,) = await query.findObjectById(ADMIN_SERVANT)
        assert (endpoint.host, endpoint.port) == ("127.0.0.1", admin.adapter.port)
        # a client that knows only the locator reaches the admin registry by name
        proxy = comm.string_to_proxy(AdminReg.AdminRegProxy, ADMIN_SERVANT)
        assert await proxy.getVersion() == (0, "3.0.17")
    finally:
        await comm.close()
        await app.stop(drain_timeout=1.0)


def test_settings_from_upstream_config() -> None:
    tc = parse(
        """<tars>
  <application>
    <server>
      elegant_wait_second=30
    </server>
  </application>
  <reap>
    updateHeartInterval=2
    registryTimeout=150
    heartbeatoff=Y
  </reap>
  <objname>
    patchServerObj=tars.tarspatch.PatchObj2
  </objname>
  <patch>
    patch_wait_timeout = 60
  </patch>
</tars>"""
    )
    s = AdminSettings.from_tcconfig(tc)
    assert s.update_heart_interval == 5  # upstream's minimum
    assert (s.registry_timeout, s.heartbeat_off, s.elegant_wait_second) == (150, True, 30)
    assert (s.patch_obj, s.patch_wait_timeout) == ("tars.tarspatch.PatchObj2", 60)
    assert AdminSettings.from_tcconfig(parse("<tars>\n</tars>\n")) == AdminSettings()
