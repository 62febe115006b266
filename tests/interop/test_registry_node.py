"""Name lookups from the Node Tars SDK (@tars/rpc 2.0.15) through the Tarsus registry.

``node/registry_client.js`` sets ``Tars.client.setProperty('locator', 'tars.tarsregistry.
QueryObj@tcp -h 127.0.0.1 -p PORT')`` and calls ``sayHello`` on the bare name
``Test.HelloServer.HelloObj``; the registry (``add_registry`` over the ``store`` fixture, SQLite
and MariaDB) sends it to the Python Hello servant(s) deployed in the store.

What @tars/rpc sends to the locator (its EndpointManager, through @tars/registry 2.0.6, which
@tars/rpc depends on and so is installed with it): ``QueryF.findObjectByIdInSameGroup(id)``,
or ``findObjectByIdInSameSet(id, setId)`` when the properties ``setdivision`` and
``enableset = y`` are set; plain Tars (iVersion 1), context ``{node_name: <the machine's IP>}``.
It connects to the ``activeEp`` list (ignoring ``inactiveEp``) and drops endpoints that leave
it; an empty ``activeEp`` leaves its list as it was. It asks again every 60 s (10 s after an
empty list, 2 s after a failure); no property changes that; the client's ``--refresh-ms`` sets
the SDK's field. A relay in front of QueryObj records the requests, so the tests check the
method and arguments on the wire.

IDC grouping follows the caller's ``context["node_name"]`` when it is set (TarsCpp
``Current::getHostName``), else the TCP peer address, in upstream's registry and in ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from peer import NODE_DIR, Relay, peer_env, run_script
from sqlalchemy import text

from tarsus.framework.registry import Registry, RegistrySettings, add_registry
from tarsus.protocol.gen import QueryF
from tarsus.rpc.application import Application
from tarsus.store import AdapterSpec, ServerSpec, Store
from tarsus.testing import serve

ROOT = Path(__file__).resolve().parents[2]
OBJ = "Test.HelloServer.HelloObj"
EPHEMERAL = "tcp -h 127.0.0.1 -p 0 -t 60000"
SETTINGS = RegistrySettings(
    load_interval=0.2,
    full_load_interval=3600.0,
    flush_interval=0.05,
    init_retry_interval=0.05,
    advertise_host="127.0.0.1",
)
REFRESH_MS = 300  # the Node client's list refresh (the SDK's default is 60 s)
NODE_LOCAL_TIMEOUT = -13001  # @tars/rpc TarsError.CLIENT.REQUEST_TIMEOUT, never on the wire


# ---------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def hello_impl() -> type:
    """``HelloImpl`` of examples/hello/server.py (loaded from its file: examples is no package)."""
    path = ROOT / "examples" / "hello" / "server.py"
    spec = importlib.util.spec_from_file_location("tarsus_example_hello_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HelloImpl  # type: ignore[no-any-return]


def tagged(hello_impl: type, tag: str) -> Any:
    """A HelloImpl whose greeting ends with ``[tag]``, to tell instances apart."""

    class Tagged(hello_impl):  # type: ignore[misc]
        async def sayHello(self, name: str) -> tuple[int, str]:
            ret, greeting = await super().sayHello(name)
            return ret, f"{greeting} [{tag}]"

    return Tagged()


@contextlib.asynccontextmanager
async def running_registry(store: Store) -> AsyncIterator[tuple[Registry, Relay]]:
    """A registry on ephemeral ports, and a relay recording what reaches its QueryObj."""
    app = Application()
    registry = add_registry(
        app, store, query_endpoint=EPHEMERAL, registry_endpoint=EPHEMERAL, settings=SETTINGS
    )
    await app.start()
    try:
        async with Relay(registry.adapters[0].port) as recorder:
            yield registry, recorder
    finally:
        await app.stop(drain_timeout=1.0)


async def deploy_hello(store: Store, node_name: str, port: int, **spec: Any) -> None:
    """Test.HelloServer on ``node_name``, listening on 127.0.0.1:port, set and present active."""
    await store.servers.deploy(
        ServerSpec("Test", "HelloServer", node_name, **spec),
        [AdapterSpec(OBJ, f"tcp -h 127.0.0.1 -p {port} -t 60000")],
    )
    await store.servers.set_setting_state("Test", "HelloServer", node_name, "active")
    await store.servers.update_present(node_name, "Test", "HelloServer", "active", 4242)


async def active_ports(registry: Registry) -> list[int]:
    ret, active, _ = registry.snapshot.find_4any(OBJ)
    assert ret == 0
    return sorted(ep.port for ep in active)


def client_args(locator_port: int, n: int, *flags: str, obj: str = OBJ) -> list[str]:
    return ["registry_client.js", str(locator_port), obj, str(n), *flags]


async def run_client(
    node: str, locator_port: int, n: int, *flags: str, obj: str = OBJ
) -> tuple[int, dict[str, Any]]:
    """One ``registry_client.js`` round in its own process: (exit status, its JSON line)."""
    run = await run_script(node, *client_args(locator_port, n, *flags, obj=obj))
    if not run.out.strip():
        pytest.fail(
            f"registry_client.js printed nothing (status {run.status}); "
            f"stderr:\n{run.stderr_tail()}"
        )
    res: dict[str, Any] = json.loads(run.out)
    return run.status, res


class NodeClient:
    """``registry_client.js --interactive``: one Node process, a round per ``round(n)``."""

    def __init__(self, node: str, locator_port: int, first: int) -> None:
        self.args = [node, *client_args(locator_port, first, "--interactive")]
        self.args.append(f"--refresh-ms={REFRESH_MS}")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __aexit__
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> NodeClient:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            env=peer_env(),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._stderr.close()

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-3000:].decode("utf-8", "replace")

    async def result(self) -> dict[str, Any]:
        """The next round's line (the first round runs without being asked)."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        except TimeoutError:
            pytest.fail(f"registry_client.js gave no answer within 30 s; stderr:\n{self.stderr()}")
        if not line:
            pytest.fail(
                f"registry_client.js exited (status {self.proc.returncode}); "
                f"stderr:\n{self.stderr()}"
            )
        res: dict[str, Any] = json.loads(line)
        assert res["ok"], f"Node round failed: {res}; stderr:\n{self.stderr()}"
        return res

    async def round(self, n: int) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n".encode())
        await self.proc.stdin.drain()
        return await self.result()


def tags(res: dict[str, Any]) -> Counter[str]:
    """How many of a round's greetings came from each tagged instance."""
    return Counter(r["greeting"].rsplit("[", 1)[1].rstrip("]") for r in res["results"])


# ---------------------------------------------------------------------------------------------
# tests


async def test_node_finds_python_hello_through_the_registry(
    node: str, hello_impl: type, store: Store
) -> None:
    async with (
        serve(hello_impl(), OBJ) as hello,
        running_registry(store) as (registry, recorder),
    ):
        await deploy_hello(store, "127.0.0.1", hello.adapter.port)
        await registry.load(full=True)
        assert await active_ports(registry) == [hello.adapter.port]

        status, res = await run_client(node, recorder.port, 5)
        assert status == 0, res
        assert res["results"] == [
            {"ret": 0, "greeting": f"hello node-1-{i}, from Python"} for i in range(5)
        ]
        assert res["endpoints"] == [f"127.0.0.1:{hello.adapter.port}"]

        # what the SDK asked the locator: one findObjectByIdInSameGroup, plain Tars
        requests = recorder.requests()
        assert [r.sFuncName for r in requests] == ["findObjectByIdInSameGroup"]
        req = requests[0]
        assert req.sServantName == "tars.tarsregistry.QueryObj"
        assert req.iVersion == 1
        assert "node_name" in req.context
        op = QueryF.QueryFProxy._tars_ops_["findObjectByIdInSameGroup"]
        assert op.decode_args(req.sBuffer) == [OBJ]


async def test_node_spreads_calls_and_follows_the_registry(
    node: str, hello_impl: type, store: Store
) -> None:
    async with (
        serve(tagged(hello_impl, "A"), OBJ) as a,
        serve(tagged(hello_impl, "B"), OBJ) as b,
        running_registry(store) as (registry, recorder),
    ):
        # two instances of Test.HelloServer on two nodes (both listening on 127.0.0.1)
        await deploy_hello(store, "127.0.0.1", a.adapter.port)
        await deploy_hello(store, "127.0.0.2", b.adapter.port)
        await registry.load(full=True)
        assert await active_ports(registry) == sorted([a.adapter.port, b.adapter.port])
        ep_a, ep_b = f"127.0.0.1:{a.adapter.port}", f"127.0.0.1:{b.adapter.port}"

        async with NodeClient(node, recorder.port, 20) as client:
            first = await client.result()
            assert sorted(first["endpoints"]) == sorted([ep_a, ep_b])
            assert all(r["ret"] == 0 for r in first["results"])
            spread = tags(first)
            assert set(spread) == {"A", "B"}, spread
            assert min(spread.values()) >= 5, spread  # round-robin: about half each

            # B's node reports it stopped: the registry lists it as inactive
            await store.servers.update_present("127.0.0.2", "Test", "HelloServer", "inactive", 0)
            await registry.load(full=True)
            assert await active_ports(registry) == [a.adapter.port]

            # at its next refresh the Node client drops B and calls only A
            deadline = time.monotonic() + 15
            while True:
                await asyncio.sleep(REFRESH_MS / 1000 + 0.1)
                res = await client.round(4)
                if res["endpoints"] == [ep_a] and set(tags(res)) == {"A"}:
                    break
                assert time.monotonic() < deadline, f"Node never dropped B: {res}"
            last = await client.round(20)
            assert tags(last) == Counter({"A": 20})
            assert last["endpoints"] == [ep_a]

            # B comes back: the client spreads over both again
            await store.servers.update_present("127.0.0.2", "Test", "HelloServer", "active", 4243)
            await registry.load(full=True)
            deadline = time.monotonic() + 15
            while True:
                await asyncio.sleep(REFRESH_MS / 1000 + 0.1)
                res = await client.round(10)
                if set(tags(res)) == {"A", "B"}:
                    break
                assert time.monotonic() < deadline, f"Node never came back to B: {res}"
            assert sorted(res["endpoints"]) == sorted([ep_a, ep_b])

        # every lookup the client made was findObjectByIdInSameGroup for the bare name
        requests = recorder.requests()
        assert len(requests) >= 3
        assert {r.sFuncName for r in requests} == {"findObjectByIdInSameGroup"}


async def test_node_unknown_name_and_no_active_instance(
    node: str, hello_impl: type, store: Store
) -> None:
    # The registry answers an unknown name with 0 and empty lists (as upstream); @tars/rpc then
    # has no endpoint and rejects the call at its own timeout (-13001, never on the wire). An
    # object whose instances are all inactive gets the same from Node: it ignores inactiveEp.
    async with (
        serve(hello_impl(), OBJ) as hello,
        running_registry(store) as (registry, recorder),
    ):
        await deploy_hello(store, "127.0.0.1", hello.adapter.port)
        await store.servers.update_present("127.0.0.1", "Test", "HelloServer", "inactive", 0)
        await registry.load(full=True)
        for obj in ("Test.NoSuchServer.NoSuchObj", OBJ):
            status, res = await run_client(node, recorder.port, 1, "--timeout-ms=300", obj=obj)
            assert status == 1
            assert res["code"] == NODE_LOCAL_TIMEOUT, res
            assert "no adapter selected" in res["message"]
            assert res["endpoints"] == []
        op = QueryF.QueryFProxy._tars_ops_["findObjectByIdInSameGroup"]
        asked = [op.decode_args(r.sBuffer)[0] for r in recorder.requests()]
        assert asked == ["Test.NoSuchServer.NoSuchObj", OBJ]


async def test_node_set_mode_asks_find_object_by_id_in_same_set(
    node: str, hello_impl: type, store: Store
) -> None:
    # With 'enableset' = 'y' and a 'setdivision', @tars/rpc asks findObjectByIdInSameSet(id,
    # setId) and gets only its set's instances.
    async with (
        serve(tagged(hello_impl, "sz1"), OBJ) as a,
        serve(tagged(hello_impl, "sz2"), OBJ) as b,
        running_registry(store) as (registry, recorder),
    ):
        for node_name, served, group in (("127.0.0.1", a, "1"), ("127.0.0.2", b, "2")):
            await deploy_hello(
                store,
                node_name,
                served.adapter.port,
                enable_set="Y",
                set_name="test",
                set_area="sz",
                set_group=group,
            )
        await registry.load(full=True)
        for division, port, tag in (
            ("test.sz.1", a.adapter.port, "sz1"),
            ("test.sz.2", b.adapter.port, "sz2"),
        ):
            status, res = await run_client(node, recorder.port, 6, f"--set={division}")
            assert status == 0, res
            assert tags(res) == Counter({tag: 6})
            assert res["endpoints"] == [f"127.0.0.1:{port}"]
        op = QueryF.QueryFProxy._tars_ops_["findObjectByIdInSameSet"]
        requests = recorder.requests()
        assert [r.sFuncName for r in requests] == ["findObjectByIdInSameSet"] * 2
        assert [op.decode_args(r.sBuffer) for r in requests] == [
            [OBJ, "test.sz.1"],
            [OBJ, "test.sz.2"],
        ]


async def test_node_idc_group_follows_its_node_name_context(
    node: str, hello_impl: type, store: Store
) -> None:
    # A is in group 1 (127.0.0.*, the TCP peer of every call here); B is in group 2, whose rule
    # names the address @tars/rpc puts in context["node_name"] (the machine's first non-internal
    # IPv4). The registry groups the caller by node_name, as upstream, so it answers B.
    async with store.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO t_server_group_rule (group_id, ip_order, allow_ip_rule, "
                "group_name, group_name_cn) VALUES (1, 'allow_denny', '127.0.0.*', 'local', '')"
            )
        )
    async with (
        serve(tagged(hello_impl, "A"), OBJ) as a,
        serve(tagged(hello_impl, "B"), OBJ) as b,
        running_registry(store) as (registry, recorder),
    ):
        await deploy_hello(store, "127.0.0.1", a.adapter.port, enable_group="Y")
        await deploy_hello(
            store, "127.0.0.2", b.adapter.port, enable_group="Y", ip_group_name="callers"
        )
        await registry.load(full=True)
        status, res = await run_client(node, recorder.port, 2)
        assert status == 0, res
        node_name = recorder.requests()[0].context.get("node_name", "")
        if not node_name or node_name.startswith("127."):
            pytest.skip(f"@tars/rpc sends node_name {node_name!r}: no non-loopback IPv4 here")

        async with store.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO t_server_group_rule (group_id, ip_order, allow_ip_rule, "
                    "group_name, group_name_cn) VALUES (2, 'allow_denny', :ip, 'callers', '')"
                ),
                {"ip": node_name},
            )
        await registry.load(full=True)  # group rules come with full loads
        status, res = await run_client(node, recorder.port, 4)
        assert status == 0, res
        assert tags(res) == Counter({"B": 4}), f"node_name {node_name}: {res}"
