"""``tarsus call`` run as a real subprocess against real servers over real sockets.

Two servers: ``examples/hello/server.py`` as a subprocess, and a ``Shop.Store`` servant served
by ``tarsus.testing.serve`` on an asyncio loop in a background thread of the test process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tarsus.idl
from tarsus.codec import types as T
from tarsus.codec.jsonvalue import JsonValueError, from_jsonable, to_jsonable
from tarsus.protocol.gen import EndpointF, QueryF
from tarsus.rpc import current
from tarsus.rpc.endpoint import parse_proxy
from tarsus.rpc.errors import TarsError
from tarsus.testing import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]
HELLO_IDL = ROOT / "examples" / "hello" / "Hello.tars"

SHOP_IDL = """
module Shop {
    enum Color { RED = 1, GREEN = 2, BLUE = 4 };
    struct Item {
        0 require string name;
        1 optional long price;
        2 optional Color color = RED;
        3 optional vector<byte> photo;
        4 optional map<string, int> stock;
        5 optional map<int, string> labels;
        6 optional vector<string> tags;
        7 optional double weight;
    };
    interface Store {
        int put(Item item, out Item stored, out long total);
        Color next(Color c);
        map<string, string> echoContext();
        int fail(int code);
        int slow(int ms);
        void ping();
    };
    interface Audit {
        void ping();
    };
};
"""

# The Hello interface with a method the example server does not have.
HELLO_PLUS_IDL = """
module Test {
    interface Hello {
        int sayHello(string name, out string greeting);
        int sayBye(string name);
    };
};
"""


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def shop_idl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "Shop.tars"
    path.write_text(SHOP_IDL)
    return path


@pytest.fixture(scope="module")
def shop(shop_idl: Path) -> Iterator[str]:
    """The proxy string of a running Shop.StoreServer.StoreObj."""
    Shop = tarsus.idl.load(shop_idl).Shop

    class StoreImpl(Shop.StoreServant):  # type: ignore[misc,name-defined]
        async def put(self, item: Any) -> tuple[int, Any, int]:
            stored = item.replace(
                price=item.price + 1,
                photo=item.photo[::-1],
                labels={k * 10: v.upper() for k, v in item.labels.items()},
                tags=[*item.tags, "stored"],
                weight=item.weight * 2,
            )
            return len(item.photo), stored, item.price * sum(item.stock.values())

        async def next(self, c: Any) -> Any:
            order = list(Shop.Color)
            return order[(order.index(c) + 1) % len(order)]

        async def echoContext(self) -> dict[str, str]:
            return dict(current().context)

        async def fail(self, code: int) -> int:
            raise TarsError(code, f"failing with {code} as asked")

        async def slow(self, ms: int) -> int:
            await asyncio.sleep(ms / 1000)
            return ms

        async def ping(self) -> None:
            return None

    server = ServerThread(StoreImpl(), "Shop.StoreServer.StoreObj")
    try:
        yield server.served.proxy_string
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hello() -> Iterator[str]:
    """examples/hello/server.py as a subprocess; yields its proxy string."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "hello" / "server.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening" in line, line + proc.stdout.read()
        yield f"Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p {port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def tarsus_call(
    *args: str | Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "TARSUS_LOCATOR"}, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tarsus", "call", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- calls


def test_hello_with_out_parameter(hello: str) -> None:
    out = ok(tarsus_call("--idl", HELLO_IDL, hello, "sayHello", '{"name": "bob"}'))
    assert out == {"return": 0, "greeting": "hello bob, from Python"}
    # the same through TUP, and with the arguments on stdin
    out = ok(tarsus_call("--idl", HELLO_IDL, "--tup", hello, "sayHello", "-", stdin='{"name":"t"}'))
    assert out == {"return": 0, "greeting": "hello t, from Python"}


ITEM = {
    "name": "lamp",
    "price": 2**40,
    "color": "GREEN",
    "photo": base64.b64encode(b"\x00\x01\xfe\xff").decode(),
    "stock": {"paris": 2, "oslo": 3},
    "labels": [[1, "one"], [-2, "minus two"]],
    "tags": ["a"],
    "weight": 1.25,
}


@pytest.mark.parametrize("protocol", [[], ["--tup"], ["--json-protocol"]])
def test_struct_enum_bytes_and_map_values(shop_idl: Path, shop: str, protocol: list[str]) -> None:
    out = ok(tarsus_call("--idl", shop_idl, *protocol, shop, "put", json.dumps({"item": ITEM})))
    assert out == {
        "return": 4,
        "stored": {
            "name": "lamp",
            "price": 2**40 + 1,
            "color": "GREEN",
            "photo": base64.b64encode(b"\xff\xfe\x01\x00").decode(),
            "stock": {"paris": 2, "oslo": 3},
            "labels": [[10, "ONE"], [-20, "MINUS TWO"]],
            "tags": ["a", "stored"],
            "weight": 2.5,
        },
        "total": 5 * 2**40,
    }


@pytest.mark.slow
def test_optional_fields_default_and_enums_by_name_or_number(shop_idl: Path, shop: str) -> None:
    out = ok(tarsus_call("--idl", shop_idl, shop, "put", '{"item": {"name": "x"}}'))
    assert out["stored"]["color"] == "RED" and out["stored"]["photo"] == ""
    assert ok(tarsus_call("--idl", shop_idl, shop, "next", '{"c": "BLUE"}')) == {"return": "RED"}
    assert ok(tarsus_call("--idl", shop_idl, shop, "next", '{"c": 2}')) == {"return": "BLUE"}


def test_context_reaches_the_servant(shop_idl: Path, shop: str) -> None:
    ctx = ["--context", "trace=abc-1", "--context", "user=bob=admin"]
    out = ok(tarsus_call("--idl", shop_idl, *ctx, shop, "echoContext"))
    assert out == {"return": {"trace": "abc-1", "user": "bob=admin"}}


@pytest.mark.slow
def test_void_method_prints_an_empty_object(shop_idl: Path, shop: str) -> None:
    # ping is declared by Store and Audit: the object's name (...StoreObj) picks Store
    assert ok(tarsus_call("--idl", shop_idl, shop, "ping")) == {}
    assert ok(tarsus_call("--idl", shop_idl, shop, "Store.ping")) == {}


@pytest.mark.slow
def test_bare_name_through_the_locator(shop_idl: Path, shop: str, tmp_path: Path) -> None:
    """A registry (a real QueryF servant answering from a table) resolves the bare name."""
    store = parse_proxy(shop).endpoints[0]

    class Registry(QueryF.QueryFServant):  # type: ignore[misc]
        async def findObjectByIdInSameGroup(self, id: str) -> tuple[int, list[Any], list[Any]]:
            if id != "Shop.StoreServer.StoreObj":
                return 0, [], []
            ep = EndpointF.EndpointF(host=store.host, port=store.port, timeout=60000, istcp=1)
            return 0, [ep], []

    registry = ServerThread(Registry(), "tars.tarsregistry.QueryObj")
    try:
        locator = registry.served.proxy_string
        cache = {"TARSUS_CACHE_DIR": str(tmp_path)}
        args = ("--idl", shop_idl, "Shop.StoreServer.StoreObj", "next", '{"c": "RED"}')
        out = ok(tarsus_call("--locator", locator, *args, env=cache))
        assert out == {"return": "GREEN"}
        out = ok(tarsus_call(*args, env={**cache, "TARSUS_LOCATOR": locator}))
        assert out == {"return": "GREEN"}
        # a name the registry does not know: the call fails (exit 1), naming the code
        proc = tarsus_call("--locator", locator, "--idl", shop_idl, "Shop.Gone.StoreObj", "ping")
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("error: NoEndpointError -10 ADAPTER_NULL")
    finally:
        registry.stop()
    proc = tarsus_call("--locator", "tars.tarsregistry.QueryObj", *args)
    assert proc.returncode == 2 and "must name the registry's endpoints" in proc.stderr


# --------------------------------------------------------------------------- failed calls


def test_servant_return_code_exits_1_with_the_code(shop_idl: Path, shop: str) -> None:
    proc = tarsus_call("--idl", shop_idl, shop, "fail", '{"code": 12345}')
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == "error: ServerError 12345: failing with 12345 as asked"


def test_method_missing_on_the_server_exits_1_with_server_no_func(
    hello: str, tmp_path: Path
) -> None:
    idl = tmp_path / "HelloPlus.tars"
    idl.write_text(HELLO_PLUS_IDL)
    proc = tarsus_call("--idl", idl, hello, "sayBye", '{"name": "x"}')
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: ServerError -3 SERVER_NO_FUNC: no function 'sayBye'"


def test_timeout_exits_1_with_invoke_timeout(shop_idl: Path, shop: str) -> None:
    proc = tarsus_call("--idl", shop_idl, "--timeout", "100", shop, "slow", '{"ms": 3000}')
    assert proc.returncode == 1
    assert "error: InvokeTimeout -7 INVOKE_TIMEOUT:" in proc.stderr
    assert "within 100 ms" in proc.stderr


@pytest.mark.slow
def test_unreachable_server_exits_1(shop_idl: Path) -> None:
    proxy = f"Shop.StoreServer.StoreObj@tcp -h 127.0.0.1 -p {free_port()}"
    proc = tarsus_call("--idl", shop_idl, proxy, "ping")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ConnectError -8 PROXY_CONNECT_ERR: cannot connect")
    assert proc.stderr.count("\n") == 1  # the message only, no runtime log noise


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("method", "arguments", "message"),
    [
        ("put", '{"item": ', "error: the arguments are not valid JSON: Expecting value"),
        ("put", '["lamp"]', "error: the arguments must be a JSON object keyed by parameter name"),
        ("put", "{}", "error: missing argument 'item' for put; arguments look like"),
        ("next", '{"c": "RED", "n": 1}', "error: next has no in-parameter 'n'"),
        ("put", '{"item": {}, "total": 1}', "'total': out parameter, set by the server"),
        (
            "next",
            '{"c": "PINK"}',
            "error: argument c: 'PINK' is not a Color (one of: RED, GREEN, BLUE)",
        ),
        (
            "put",
            '{"item": {"name": "x", "stock": {"a": "many"}}}',
            "error: argument item.stock['a']: expected an integer (int), got the string 'many'",
        ),
        ("put", '{"item": {"name": "x", "colour": 1}}', "Shop.Item has no field 'colour'"),
        ("put", '{"item": {"price": 1}}', "error: argument item: required field 'name' missing"),
        ("put", '{"item": {"name": "x", "photo": "%%"}}', "argument item.photo: not valid base64"),
        ("fail", '{"code": 2147483648}', "2147483648 is out of range for int"),
        ("nothing", "{}", "error: no method 'nothing' in the IDL (methods: Store.put, "),
        ("Audit.next", "{}", "error: no method 'next' in interface Shop.Audit"),
        ("Cart.ping", "{}", "error: no interface 'Cart' in the IDL"),
    ],
)
def test_usage_errors_exit_2(
    shop_idl: Path, shop: str, method: str, arguments: str, message: str
) -> None:
    proc = tarsus_call("--idl", shop_idl, shop, method, arguments)
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr
    assert proc.stdout == ""


def test_ambiguous_method_lists_the_interfaces(shop_idl: Path) -> None:
    proc = tarsus_call("--idl", shop_idl, "Shop.Backend.MainObj@tcp -h 127.0.0.1 -p 1", "ping")
    assert proc.returncode == 2
    assert "method 'ping' is declared by several interfaces: Shop.Store, Shop.Audit" in proc.stderr
    assert "write Interface.ping" in proc.stderr


@pytest.mark.slow
def test_bad_command_lines_exit_2(shop_idl: Path, tmp_path: Path) -> None:
    proc = tarsus_call("--idl", tmp_path / "none.tars", "Obj@tcp -h 127.0.0.1 -p 1", "ping")
    assert proc.returncode == 2 and "no such IDL file" in proc.stderr
    broken = tmp_path / "Broken.tars"
    broken.write_text("module M { struct S { 0 require nosuchtype x; }; };")
    proc = tarsus_call("--idl", broken, "Obj@tcp -h 127.0.0.1 -p 1", "ping")
    assert proc.returncode == 2 and "cannot load the IDL" in proc.stderr
    assert "Broken.tars:1:" in proc.stderr
    proc = tarsus_call("--idl", shop_idl, "Shop.StoreServer.StoreObj", "ping")
    assert proc.returncode == 2 and "names no endpoint" in proc.stderr
    proc = tarsus_call("--idl", shop_idl, "Obj@tcp -h 127.0.0.1 -p 1", "ping", "--context", "k")
    assert proc.returncode == 2 and "--context takes KEY=VALUE, not 'k'" in proc.stderr
    proc = tarsus_call("--idl", shop_idl, "--tup", "--json-protocol", "O@tcp -h a -p 1", "ping")
    assert proc.returncode == 2 and "exclude each other" in proc.stderr
    proc = tarsus_call("Obj@tcp -h 127.0.0.1 -p 1", "ping")
    assert proc.returncode == 2 and "--idl" in proc.stderr


# --------------------------------------------------------------------------- value mapping


def test_jsonvalue_round_trips_and_names_the_spot(shop_idl: Path) -> None:
    Shop = tarsus.idl.load(shop_idl).Shop
    item = from_jsonable(ITEM, Shop.Item, "item")
    assert item.color is Shop.Color.GREEN and item.photo == b"\x00\x01\xfe\xff"
    assert item.labels == {1: "one", -2: "minus two"}
    assert to_jsonable(item, Shop.Item) == ITEM
    # non-finite floats have a JSON spelling; unknown enum numbers pass through
    doubles = T.vector(T.DOUBLE)
    assert to_jsonable([math.inf, -math.inf], doubles) == ["Infinity", "-Infinity"]
    assert math.isnan(from_jsonable(["NaN"], doubles)[0])
    assert from_jsonable(99, Shop.Color) == 99 and to_jsonable(99, Shop.Color) == 99
    # bytes that are not UTF-8 still print
    assert to_jsonable(b"\xff".decode("utf-8", "surrogateescape"), T.STRING) == "\ufffd"
    with pytest.raises(JsonValueError) as e:
        from_jsonable({"name": "x", "labels": [[1, "a"], [1, "b"]]}, Shop.Item, "item")
    assert str(e.value) == "item.labels[1][0]: duplicate key 1"
    with pytest.raises(JsonValueError) as e:
        from_jsonable([[1, 2]], T.vector(T.vector(T.BYTE)), "v")
    assert e.value.where == "v[0]"
    with pytest.raises(JsonValueError, match=r"x\[0\]: 1.5 is not a whole number \(long\)"):
        from_jsonable([1.5], T.vector(T.LONG), "x")
    with pytest.raises(JsonValueError, match=r"f: 1e\+300 is out of range for float"):
        from_jsonable(1e300, T.FLOAT, "f")
    assert from_jsonable(1e300, T.DOUBLE) == 1e300
