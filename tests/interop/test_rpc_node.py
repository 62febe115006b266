"""RPC interoperability with the Node Tars SDK (@tars/rpc 2.0.15), both directions, plain Tars
(iVersion 1) and TUP (iVersion 3).

- Tarsus client → Node server: ``node/rpc_server.js``, a hand-written @tars/rpc servant (there
  is no tars2node on npm), runs as a subprocess on a free port; the tests call it through
  Tarsus proxies.
- Node client → Tarsus server: a Tarsus servant is served in the test's own event loop
  (``tarsus.testing.serve``); ``node/rpc_client.js`` calls it and prints one JSON line per case.

Both sides implement ``InteropRpc.Echo`` (``IDL`` below; ``node/rpc_common.js`` is the Node
half). Node quirks the tests rely on, all read in the SDK's source:

- A Node one-way call's promise is rejected right after the send ("one way call do not need
  response"): that is its success.
- Node's client reports local codes: -13001 for a timeout.
- Node's TUP client reads ``STATUS_RESULT_CODE`` but not ``STATUS_RESULT_DESC``, so a TUP
  error reaches Node code without its text; Node's server writes no reply context in TUP
  replies (``composeTUP``).
- An exception in a Node servant is answered with iRet -1 and "BindAdapter Exception: ...".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from peer import NODE_DIR, Relay, peer_env, run_script

import tarsus.idl
from tarsus.codec import tup
from tarsus.rpc import current
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import InvokeTimeout, Ret, ServerError, TarsError
from tarsus.rpc.proxy import CallOptions
from tarsus.testing import eventually, eventually_sync, free_port, port_is_free, serve

IDL = """
module InteropRpc
{
    struct Point
    {
        0 require int x;
        1 require int y;
        2 optional string label;
    };

    interface Echo
    {
        int echo(string s, out string r);
        int divide(int a, int b, out int quotient, out int remainder);
        Point mirror(Point p, out string desc);
        int sleep(int ms);
        void note(string text);
        string lastNote();
        int fail(int how);
    };
};
"""

NODE_OBJ = "Interop.NodeServer.EchoObj"
PY_OBJ = "Interop.PyServer.EchoObj"
VERSIONS = [pytest.param(1, id="tars"), pytest.param(3, id="tup3")]
NODE_LOCAL_TIMEOUT = -13001  # @tars/rpc TarsError.CLIENT.REQUEST_TIMEOUT, never on the wire
ONE_WAY_REJECTION = "one way call do not need response"


# ---------------------------------------------------------------------------------------------
# fixtures: the IDL, the Tarsus servant, Node


@pytest.fixture(scope="module")
def M(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("idl") / "InteropRpc.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).InteropRpc


@pytest.fixture(scope="module")
def echo_impl(M: Any) -> Any:
    class EchoImpl(M.EchoServant):  # type: ignore[misc,name-defined]
        """The Python half of InteropRpc.Echo; ``seen`` records what each call brought."""

        def __init__(self) -> None:
            self.seen: list[dict[str, Any]] = []
            self.notes: list[str] = []

        def _record(self) -> None:
            cur = current()
            self.seen.append(
                {
                    "func": cur.func_name,
                    "version": cur.version,
                    "packet_type": cur.packet_type,
                    "message_type": cur.message_type,
                    "context": dict(cur.context),
                    "status": dict(cur.status),
                }
            )

        async def echo(self, s: str) -> tuple[int, str]:
            self._record()
            cur = current()
            k = cur.context.get("k", "")
            cur.response_context.update({"from": "python", "seen": k})
            return len(s.encode()), f"py:{s}|k={k}"

        async def divide(self, a: int, b: int) -> tuple[int, int, int]:
            if b == 0:
                return -1, 0, 0  # the servant's own error code, in the body (iRet stays 0)
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            return 0, q, a - q * b

        async def mirror(self, p: Any) -> tuple[Any, str]:
            return M.Point(x=p.y, y=p.x, label="mirrored:" + p.label), f"{p.x},{p.y},{p.label}"

        async def sleep(self, ms: int) -> int:
            self._record()
            await asyncio.sleep(ms / 1000)
            return ms

        async def note(self, text: str) -> None:
            self._record()
            self.notes.append(text)

        async def lastNote(self) -> str:
            return self.notes[-1] if self.notes else ""

        async def fail(self, how: int) -> int:
            if how == 1:
                raise RuntimeError("python servant failed")
            if how == 2:
                raise TarsError(12345, "chosen by the servant")
            return 0

    return EchoImpl


@contextlib.contextmanager
def node_server(node: str, idle_ms: int = 60000) -> Iterator[int]:
    """Run rpc_server.js on a free port until the block ends; yields the port."""
    port = free_port()
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [node, "rpc_server.js", str(port), str(idle_ms)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=stderr,
            stderr=stderr,
            env=peer_env(),
        )
        try:

            def listening() -> bool:  # the SDK has no "listening" callback: poll the port
                if proc.poll() is not None:
                    raise AssertionError(f"rpc_server.js exited ({proc.returncode})\n{tail()}")
                return not port_is_free(port)

            def tail() -> str:
                stderr.seek(0)
                return stderr.read()[-3000:].decode("utf-8", "replace")

            eventually_sync(listening, "rpc_server.js to listen", describe=tail)
            yield port
        finally:
            assert proc.stdin is not None
            proc.stdin.close()  # rpc_server.js exits when stdin ends
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def node_port(node: str) -> Iterator[int]:
    with node_server(node) as port:
        yield port


def node_proxy_string(port: int) -> str:
    return f"{NODE_OBJ}@tcp -h 127.0.0.1 -p {port} -t 60000"


async def run_node_client(
    node: str, port: int, *cases: str, version: int = 1, obj: str = PY_OBJ
) -> dict[str, dict[str, Any]]:
    """Run rpc_client.js; return its result line for each case (fail if one is missing)."""
    run = await run_script(node, "rpc_client.js", str(port), obj, str(version), *cases)
    results = {r["case"]: r for r in map(json.loads, run.out.decode().splitlines())}
    missing = [c for c in cases if c not in results]
    if missing:
        pytest.fail(
            f"rpc_client.js gave no result for {missing} (exit status {run.status}); "
            f"stderr:\n{run.stderr_tail()}"
        )
    return results


@contextlib.asynccontextmanager
async def served(echo_impl: Any) -> AsyncIterator[tuple[Any, int]]:
    servant = echo_impl()
    async with serve(servant, PY_OBJ) as s:
        yield servant, s.adapter.port


# ---------------------------------------------------------------------------------------------
# Tarsus client → Node server


@pytest.mark.parametrize("version", VERSIONS)
async def test_py_client_results_out_params_and_context(
    M: Any, node_port: int, version: int
) -> None:
    async with Communicator() as comm:
        echo = comm.string_to_proxy(M.EchoProxy, node_proxy_string(node_port), version=version)
        # the request context reaches the Node servant (it echoes context["k"] back in r)
        assert await echo.with_options(context={"k": "vé"}).echo("héllo") == (
            6,
            "node:héllo|k=vé",
        )
        assert await echo.echo("") == (0, "node:|k=")
        # two out-parameters; then a non-zero return value chosen by the servant (iRet is 0)
        assert await echo.divide(17, 5) == (0, 3, 2)
        assert await echo.divide(-17, 5) == (0, -3, -2)
        assert await echo.divide(1, 0) == (-1, 0, 0)
        # a struct in and out (a TUP v3 struct argument when version is 3)
        got = await echo.mirror(M.Point(x=1, y=-2, label="pé"))
        assert got == (M.Point(x=-2, y=1, label="mirrored:pé"), "1,-2,pé")
        many = await asyncio.gather(*(echo.divide(7 * i + 3, 7) for i in range(300)))
        assert [q for _, q, _ in many] == list(range(300))
        # replies in a different order than the calls: each reaches its own caller
        assert await asyncio.gather(echo.sleep(300), echo.sleep(1), echo.sleep(150)) == [
            300,
            1,
            150,
        ]


async def test_py_client_tup_v2(M: Any, node_port: int) -> None:
    async with Communicator() as comm:
        echo = comm.string_to_proxy(M.EchoProxy, node_proxy_string(node_port), version=2)
        assert await echo.echo("hello") == (5, "node:hello|k=")


async def test_py_client_sees_the_node_reply_context(M: Any, node_port: int) -> None:
    # The typed proxy returns results only; the reply packet carries the context.
    async with Communicator() as comm:
        obj = comm.object_proxy(node_proxy_string(node_port))
        op = M.EchoProxy._tars_ops_["echo"]
        rsp = await obj.invoke_raw("echo", op.encode_args(("x",)), CallOptions(context={"k": "c"}))
        assert rsp.context == {"from": "node", "seen": "c"}
        assert op.decode_results(rsp.sBuffer) == (1, "node:x|k=c")


@pytest.mark.parametrize("version", VERSIONS)
async def test_py_client_framework_errors(M: Any, node_port: int, version: int) -> None:
    async with Communicator() as comm:
        name = node_proxy_string(node_port)
        echo = comm.string_to_proxy(M.EchoProxy, name, version=version)
        obj = comm.object_proxy(name, version=version)
        empty = tup.UniAttribute().encode() if version == 3 else b""
        with pytest.raises(ServerError) as e:
            await obj.invoke_raw("noSuchFunc", empty, CallOptions())
        assert e.value.code == Ret.SERVER_NO_FUNC
        # an exception in a Node servant: -1 and the SDK's text
        with pytest.raises(ServerError) as e:
            await echo.fail(1)
        assert e.value.code == Ret.SERVER_DECODE_ERR
        assert "node servant failed" in e.value.message
        # a code of the servant's choosing, returned from onDispatch
        with pytest.raises(ServerError) as e:
            await echo.fail(2)
        assert e.value.code == 12345
        assert await echo.fail(0) == 0  # and the connection is still good


@pytest.mark.parametrize("version", VERSIONS)
async def test_py_client_timeout_then_late_reply_is_ignored(
    M: Any, node_port: int, version: int
) -> None:
    async with Communicator() as comm:
        echo = comm.string_to_proxy(M.EchoProxy, node_proxy_string(node_port), version=version)
        with pytest.raises(InvokeTimeout):
            await asyncio.wait_for(echo.with_options(timeout_ms=200).sleep(600), 5)
        await asyncio.sleep(0.7)  # Node's late reply arrives on the same connection
        assert await echo.sleep(1) == 1
        assert await echo.echo("after") == (5, "node:after|k=")


@pytest.mark.parametrize("version", VERSIONS)
async def test_py_client_one_way(M: Any, node_port: int, version: int) -> None:
    async with Communicator() as comm:
        name = node_proxy_string(node_port)
        echo = comm.string_to_proxy(M.EchoProxy, name, version=version)
        text = f"one-way from python v{version}"
        assert await echo.tars_oneway().note(text) is None
        (adapter,) = comm.object_proxy(name, version=version).adapters.values()
        conn = await adapter.connection()
        assert conn.pending == {}  # nothing waits for an answer that never comes

        async def arrived() -> bool:
            return bool(await echo.lastNote() == text)

        await eventually(arrived, "Node to receive the one-way note")


@pytest.mark.parametrize("version", VERSIONS)
async def test_py_client_ping(node_port: int, version: int) -> None:
    async with Communicator() as comm:
        obj = comm.object_proxy(node_proxy_string(node_port), version=version)
        rsp = await obj.invoke_raw("tars_ping", b"", CallOptions())
        assert rsp.iVersion == version
        assert rsp.iRequestId > 0


async def test_py_client_reconnects_after_node_closes_an_idle_connection(M: Any, node: str) -> None:
    with node_server(node, idle_ms=300) as port:
        async with Communicator() as comm:
            name = node_proxy_string(port)
            echo = comm.string_to_proxy(M.EchoProxy, name)
            assert await echo.echo("a") == (1, "node:a|k=")
            (adapter,) = comm.object_proxy(name).adapters.values()
            first = await adapter.connection()
            await eventually(lambda: first.closed, "Node to close the idle connection")
            assert await echo.echo("b") == (1, "node:b|k=")
            assert await adapter.connection() is not first


# ---------------------------------------------------------------------------------------------
# Node client → Tarsus server


@pytest.mark.parametrize("version", VERSIONS)
async def test_node_client_results_out_params_and_context(
    node: str, echo_impl: Any, version: int
) -> None:
    async with served(echo_impl) as (servant, port):
        r = await run_node_client(
            node, port, "echo", "divide", "many", "outoforder", "mirror", version=version
        )
    assert r["echo"] == {
        "case": "echo",
        "ok": True,
        "value": {
            "ret": 5,
            "r": "py:hello|k=v",
            # the reply context set through current().response_context reaches Node
            "context": {"from": "python", "seen": "v"},
            "version": version,
        },
    }
    assert r["divide"]["value"] == {
        "ok": {"ret": 0, "quotient": 3, "remainder": 2},
        "zero": {"ret": -1, "quotient": 0, "remainder": 0},
    }
    assert r["many"]["value"] == list(range(200))
    assert r["outoforder"]["value"] == [300, 1, 150]
    assert r["mirror"]["value"] == {
        "ret": {"x": -2, "y": 1, "label": "mirrored:pé"},
        "desc": "1,-2,pé",
    }
    (seen,) = [c for c in servant.seen if c["func"] == "echo"]
    assert seen["context"] == {"k": "v"}  # the Node request context, via current().context
    assert seen["version"] == version


async def test_node_client_dyeing_reaches_the_servant(node: str, echo_impl: Any) -> None:
    async with served(echo_impl) as (servant, port):
        r = await run_node_client(node, port, "dyed")
    assert r["dyed"]["ok"], r["dyed"]
    (seen,) = servant.seen
    assert seen["message_type"] & 0x04  # TARSMESSAGETYPEDYED
    assert seen["status"]["STATUS_DYED_KEY"] == "user42"


@pytest.mark.parametrize("version", VERSIONS)
async def test_node_client_framework_errors(node: str, echo_impl: Any, version: int) -> None:
    async with served(echo_impl) as (_, port):
        r = await run_node_client(node, port, "nofunc", "fail", "failcode", "echo", version=version)
        wrong = await run_node_client(
            node, port, "echo", version=version, obj="Interop.PyServer.OtherObj"
        )
    assert (r["nofunc"]["ok"], r["nofunc"]["code"]) == (False, Ret.SERVER_NO_FUNC)
    # a Python servant exception: -99 (Node's TUP client does not read STATUS_RESULT_DESC)
    assert (r["fail"]["ok"], r["fail"]["code"]) == (False, Ret.SERVER_UNKNOWN_ERR)
    if version == 1:
        assert r["fail"]["message"] == "RuntimeError: python servant failed"
    assert (r["failcode"]["ok"], r["failcode"]["code"]) == (False, 12345)
    assert r["echo"]["ok"]  # the connection survived the errors
    assert (wrong["echo"]["ok"], wrong["echo"]["code"]) == (False, Ret.SERVER_NO_SERVANT)


@pytest.mark.parametrize("version", VERSIONS)
async def test_node_client_timeout(node: str, echo_impl: Any, version: int) -> None:
    async with served(echo_impl) as (servant, port):
        r = await run_node_client(node, port, "timeout", version=version)
        assert [c["func"] for c in servant.seen] == ["sleep"]  # it did reach the servant
    assert r["timeout"]["ok"] is False
    assert r["timeout"]["code"] == NODE_LOCAL_TIMEOUT


@pytest.mark.parametrize("version", VERSIONS)
async def test_node_client_one_way(node: str, echo_impl: Any, version: int) -> None:
    async with served(echo_impl) as (servant, port), Relay(port) as relay:
        r = await run_node_client(node, relay.port, "oneway", "echo", version=version)
        await eventually(lambda: len(relay.downstream) > 0, "the echo reply")
    assert r["oneway"]["ok"] is False
    assert r["oneway"]["message"] == ONE_WAY_REJECTION  # Node's local "success"
    assert r["echo"]["ok"]
    assert servant.notes == ["one-way from node"]
    assert [c["packet_type"] for c in servant.seen if c["func"] == "note"] == [1]
    # on the wire: one one-way request, and a reply only for the two-way one
    requests = relay.requests()
    assert [q.cPacketType for q in requests] == [1, 0]
    assert [p.iRequestId for p in relay.replies(version)] == [requests[1].iRequestId]


async def test_node_client_ping(node: str, echo_impl: Any) -> None:
    async with served(echo_impl) as (servant, port):
        r = await run_node_client(node, port, "ping", "echo")
    assert r["ping"] == {"case": "ping", "ok": True, "value": {"version": 1, "iRet": 0}}
    assert r["echo"]["ok"]
    assert [c["func"] for c in servant.seen] == ["echo"]  # the framework answered the ping


async def test_node_client_ping_over_tup(node: str, echo_impl: Any) -> None:
    async with served(echo_impl) as (_, port):
        r = await run_node_client(node, port, "ping", "echo", version=3)
    assert r["ping"]["ok"], r["ping"]
    assert r["echo"]["ok"]


async def test_node_client_tup_v2(node: str, echo_impl: Any) -> None:
    async with served(echo_impl) as (servant, port):
        r = await run_node_client(node, port, "echo", "mirror", version=2)
    assert [c["version"] for c in servant.seen] == [2]  # the request itself was understood
    assert r["echo"]["ok"], r["echo"]
    assert r["echo"]["value"]["r"] == "py:hello|k=v"
    assert r["mirror"]["ok"], r["mirror"]
