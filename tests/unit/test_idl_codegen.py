"""Generated Python: what `tarsus idl gen` writes and what `tarsus.idl.load` returns."""

from __future__ import annotations

import enum
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tarsus.idl
from tarsus.cli import app
from tarsus.codec import decode, encode
from tarsus.codec.tup import UniAttribute
from tarsus.idl import IdlError

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello" / "Hello.tars"

SHOP = """
#include "Base.tars"
module Shop {
    const int MAX_ITEMS = 100;
    const string GREETING = "hi";
    struct Order {
        0 require long id;
        1 optional vector<Base::Money> lines;
        2 optional Base::Currency currency = Base::EUR;
        3 optional map<string, string> notes;
        4 optional Base::Money total;
        5 optional string from;
    };
    interface OrderService {
        int place(Order order, out long orderId);
        void cancel(routekey long id);
        Order get(long id);
        bool list(string owner, out vector<Order> orders, out int total);
    };
};
"""
BASE = """
module Base {
    enum Currency { USD = 1, EUR, CNY = 10 };
    struct Money { 0 require long cents; 1 optional Currency currency = USD; };
};
"""


@pytest.fixture
def shop_files(tmp_path: Path) -> Path:
    (tmp_path / "Base.tars").write_text(BASE)
    (tmp_path / "Shop.tars").write_text(SHOP)
    return tmp_path / "Shop.tars"


def test_load_gives_module_namespaces(shop_files: Path) -> None:
    m = tarsus.idl.load(shop_files)
    assert issubclass(m.Base.Currency, enum.IntEnum)
    assert m.Base.Currency.EUR == 2 and m.Base.Currency.CNY == 10
    assert m.Shop.MAX_ITEMS == 100 and m.Shop.GREETING == "hi"
    order = m.Shop.Order(id=5, lines=[m.Base.Money(cents=250)])
    assert order.currency is m.Base.Currency.EUR  # enum default from another module
    assert order.lines[0].currency is m.Base.Currency.USD
    assert order.from_ == ""  # a Python keyword as a field name gets a trailing underscore
    assert repr(order).startswith("Shop.Order(id=5, lines=[Base.Money(cents=250")
    assert decode(encode(order), m.Shop.Order) == order


def test_structs_compare_by_value_and_get_fresh_defaults(shop_files: Path) -> None:
    m = tarsus.idl.load(shop_files)
    a, b = m.Shop.Order(id=1), m.Shop.Order(id=1)
    assert a == b and a is not b
    a.lines.append(m.Base.Money(cents=1))
    assert b.lines == [] and a != b
    assert {m.Base.Money(cents=3): "x"}[m.Base.Money(cents=3)] == "x"  # usable as map keys


def test_load_is_cached_until_a_file_changes(shop_files: Path) -> None:
    first = tarsus.idl.load(shop_files)
    assert tarsus.idl.load(shop_files) is first
    base = shop_files.parent / "Base.tars"
    base.write_text(BASE.replace("CNY = 10", "CNY = 10, JPY"))
    import os

    st = base.stat()
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = tarsus.idl.load(shop_files)
    assert again is not first and again.Base.Currency.JPY == 11


def test_operations_lay_out_parameters_as_upstream(shop_files: Path) -> None:
    ops = tarsus.idl.load(shop_files).Shop.OrderServiceServant._tars_ops_
    place = ops["place"]
    assert [(p.tag, p.name, p.out) for p in place.params] == [
        (1, "order", False),
        (2, "orderId", True),
    ]
    assert ops["cancel"].routekey is not None and ops["cancel"].routekey.name == "id"
    # response: return value at tag 0, out parameter at its own tag (2)
    assert place.encode_results((0, 77)) == bytes.fromhex("0c 204d")
    assert place.decode_results(bytes.fromhex("0c 204d")) == (0, 77)
    assert ops["list"].decode_results(ops["list"].encode_results((True, [], 0))) == (True, [], 0)
    assert ops["cancel"].encode_results(None) == b""
    with pytest.raises(TypeError, match="must return a tuple of 3 values"):
        ops["list"].encode_results(True)


def test_generated_servant_and_proxy_shapes(shop_files: Path) -> None:
    m = tarsus.idl.load(shop_files).Shop
    assert m.OrderServiceServant._tars_interface_ == "Shop.OrderService"
    assert set(m.OrderServiceProxy._tars_ops_) == {"place", "cancel", "get", "list"}
    calls: list[Any] = []

    async def invoker(op: Any, args: tuple[Any, ...], options: Any) -> Any:
        calls.append((op.name, op.decode_args(op.encode_args(args))))
        return op.default_result()

    import asyncio

    proxy = m.OrderServiceProxy(invoker)
    assert asyncio.run(proxy.list("bob")) == (False, [], 0)
    assert calls == [("list", ["bob"])]


def test_gen_writes_ruff_clean_importable_modules(shop_files: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = CliRunner().invoke(app, ["idl", "gen", str(shop_files), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["Base.py", "Shop.py", "__init__.py"]
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "--no-cache", str(out)], check=True, cwd=ROOT)
    subprocess.run([*ruff, "format", "--check", "--no-cache", str(out)], check=True, cwd=ROOT)
    code = (
        "from gen import Shop, Base\n"
        "from tarsus.codec import encode, decode\n"
        "o = Shop.Order(id=3, total=Base.Money(cents=9))\n"
        "assert decode(encode(o), Shop.Order) == o\n"
        "print('ok')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert run.stdout.strip() == "ok", run.stderr


def import_generated(root: Path, *names: str) -> list[Any]:
    """Import generated modules from packages under ``root``."""
    sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(root))


def test_gen_and_load_agree_on_bytes(shop_files: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen_agree"
    CliRunner().invoke(app, ["idl", "gen", str(shop_files), "-o", str(out)])
    generated = (out / "Shop.py").read_text()
    assert "class OrderServiceServant(Servant):" in generated
    assert "async def place(self, order: Order) -> tuple[int, int]:" in generated
    shop, base = import_generated(tmp_path, "gen_agree.Shop", "gen_agree.Base")
    loaded = tarsus.idl.load(shop_files)
    a = shop.Order(id=1, lines=[base.Money(cents=2, currency=base.Currency.CNY)])
    b = loaded.Shop.Order(
        id=1, lines=[loaded.Base.Money(cents=2, currency=loaded.Base.Currency.CNY)]
    )
    assert encode(a) == encode(b)


def test_cli_reports_errors_with_locations(tmp_path: Path) -> None:
    bad = tmp_path / "Bad.tars"
    bad.write_text("module M {\n  struct S { 0 require Nope x; };\n};\n")
    result = CliRunner().invoke(app, ["idl", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2:" in result.output and "unknown type 'Nope'" in result.output
    missing = CliRunner().invoke(app, ["idl", "gen", str(tmp_path / "none.tars"), "-o", "x"])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_cli_check_summarises(shop_files: Path) -> None:
    result = CliRunner().invoke(app, ["idl", "check", str(shop_files)])
    assert result.exit_code == 0
    assert "2 file(s), 2 struct(s), 1 enum(s), 1 interface(s) with 4 method(s)" in result.output


def test_load_raises_idl_error(tmp_path: Path) -> None:
    bad = tmp_path / "Dup.tars"
    bad.write_text("module M { struct S { 0 require int a; 0 optional int b; }; };")
    with pytest.raises(IdlError, match="duplicate"):
        tarsus.idl.load(bad)


def test_hello_example_compiles() -> None:
    m = tarsus.idl.load(HELLO).Test
    op = m.HelloServant._tars_ops_["sayHello"]
    assert op.signature() == "int sayHello(string name, out string greeting)"
    assert op.decode_results(op.encode_results((0, "hello x"))) == (0, "hello x")


def test_tup_carries_named_parameters(codec_idl: Any) -> None:
    from tarsus.codec import types as T

    ua = UniAttribute()
    ua.put("", 0, T.INT)
    ua.put("inner", codec_idl.Inner(id=4), codec_idl.Inner)
    back = UniAttribute.decode(ua.encode())
    assert back.get("", T.INT) == 0 and back.get("inner", codec_idl.Inner).id == 4
    with pytest.raises(KeyError, match="no value named 'x'"):
        back.get("x", T.INT)
    assert back.get("x", T.INT, default=5) == 5


def test_framework_interfaces_generate_clean_code(tmp_path: Path) -> None:
    protocol = sorted((ROOT / "tarsus" / "protocol").glob("*.tars"))
    assert protocol, "tarsus/protocol has no .tars files"
    out = tmp_path / "fw"
    result = CliRunner().invoke(app, ["idl", "gen", *map(str, protocol), "-o", str(out)])
    assert result.exit_code == 0, result.output
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "--no-cache", str(out)], check=True, cwd=ROOT)
    subprocess.run([*ruff, "format", "--check", "--no-cache", str(out)], check=True, cwd=ROOT)
    for tars in protocol:
        assert tarsus.idl.load(tars) is not None


# -- one Python module per .tars file (--per-file) ----------------------------------------------

TYPES = """
module M {
    enum Kind { SMALL, BIG };
    struct Part { 0 require string name; 1 optional Kind kind = BIG; };
};
"""
SERVICE = """
#include "types.tars"
module M {
    struct Box { 0 optional vector<Part> parts; };
    interface Store {
        Part get(string cast, int self, int op, int result, out Box box);
        void drop(Part part);
    };
};
"""


@pytest.fixture
def per_file_dir(tmp_path: Path) -> Path:
    (tmp_path / "types.tars").write_text(TYPES)
    (tmp_path / "service.tars").write_text(SERVICE)
    return tmp_path


def gen_per_file(files: list[Path], out: Path) -> Any:
    result = CliRunner().invoke(app, ["idl", "gen", "--per-file", *map(str, files), "-o", str(out)])
    return result


def test_per_file_gen_gives_one_class_per_type(per_file_dir: Path) -> None:
    out = per_file_dir / "pf"
    result = gen_per_file([per_file_dir / "service.tars"], out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["__init__.py", "service.py", "types.py"]
    assert "from . import types\n" in (out / "service.py").read_text()
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "--no-cache", str(out)], check=True, cwd=ROOT)
    subprocess.run([*ruff, "format", "--check", "--no-cache", str(out)], check=True, cwd=ROOT)
    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(per_file_dir / ".mc")]
    run = subprocess.run([*mypy, str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout
    service, types = import_generated(per_file_dir, "pf.service", "pf.types")
    box = service.Box(parts=[types.Part(name="x")])
    back = decode(encode(box), service.Box)
    assert back == box and type(back.parts[0]) is types.Part
    assert back.parts[0].kind is types.Kind.BIG
    assert service.Box._tars_name_ == "M.Box" and types.Part._tars_name_ == "M.Part"


def test_parameters_named_like_the_methods_locals_still_work(per_file_dir: Path) -> None:
    store = tarsus.idl.load(per_file_dir / "service.tars").M
    ops = store.StoreProxy._tars_ops_
    # On the wire (TUP, JSON) the names stay as declared; in Python cast/self get a "_".
    assert [p.name for p in ops["get"].params] == ["cast", "self", "op", "result", "box"]
    calls: list[Any] = []

    async def invoker(op: Any, args: tuple[Any, ...], options: Any) -> Any:
        calls.append((op.name, args))
        return store.Part(name="p"), store.Box()

    import asyncio

    proxy = store.StoreProxy(invoker)
    assert asyncio.run(proxy.get(cast_="c", self_=1, op=2, result=3)) == (
        store.Part(name="p"),
        store.Box(),
    )
    assert calls == [("get", ("c", 1, 2, 3))]


def test_per_file_refuses_a_name_that_hides_an_included_module(tmp_path: Path) -> None:
    (tmp_path / "types.tars").write_text(TYPES)
    clash = '#include "types.tars"\nmodule M { struct types { 0 optional Part p; }; };\n'
    (tmp_path / "clash.tars").write_text(clash)
    result = gen_per_file([tmp_path / "clash.tars"], tmp_path / "out")
    assert result.exit_code == 1
    assert "clash.tars:2:" in result.output and "'types' in clash shadows" in result.output
    assert not (tmp_path / "out").exists()


def test_per_file_refuses_a_file_name_that_is_no_module_name(tmp_path: Path) -> None:
    (tmp_path / "my-types.tars").write_text(TYPES)
    result = gen_per_file([tmp_path / "my-types.tars"], tmp_path / "out")
    assert result.exit_code == 1
    assert "'my-types' is not a Python module name" in result.output
