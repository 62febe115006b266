"""Codec speed: Tarsus vs tarsio 0.5.3 (Rust) vs @tars/stream 2.0.3 (Node), in one run.

Two payloads, each encoded and decoded separately:

(a) ``request``: a RequestPacket with a 64-byte sBuffer and context {"k": "v"} (the packet of
    anchors-measured.md "Codec speed", 120 bytes encoded);
(b) ``order``: ``Bench.Order`` from bench/Bench.tars, with a vector of 50 ``Bench.Item``
    structs and a map<string, string> of 50 entries.

Each number is the best of N rounds of a timeit-style loop (the loop count is grown until one
round takes ``--round-time`` seconds), in µs per operation. Before timing, the three
implementations' bytes for each payload are compared; a difference is printed as a warning.
Ratios are times: "tarsus ÷ tarsio" above 1 means Tarsus is slower.

    .venv/bin/python bench/codec.py                       # full run, prints the table
    .venv/bin/python bench/codec.py --quick               # a short run
    .venv/bin/python bench/codec.py --write docs/benchmarks.md

Node is run as a subprocess (bench/codec_node.js, using tests/interop/node/node_modules; run
``npm ci`` there first). Timings are for reading, never for asserting: nothing in CI
depends on them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import timeit
from collections.abc import Callable
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import tarsio
from report import command_lines, replace_section
from tarsio import field

import tarsus.codec
import tarsus.idl
from tarsus.codec import RequestPacket

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
NODE_SCRIPT = BENCH_DIR / "codec_node.js"
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"
BEGIN, END = "<!-- codec:begin -->", "<!-- codec:end -->"

Bench: Any = tarsus.idl.load(str(BENCH_DIR / "Bench.tars")).Bench


# ---------------------------------------------------------------------------------------------
# tarsio classes (the same fields and tags)


class TioRequestPacket(tarsio.Struct):
    iVersion: int = field(tag=1, default=0)
    cPacketType: int = field(tag=2, default=0)
    iMessageType: int = field(tag=3, default=0)
    iRequestId: int = field(tag=4, default=0)
    sServantName: str = field(tag=5, default="")
    sFuncName: str = field(tag=6, default="")
    sBuffer: bytes = field(tag=7, default=b"")
    iTimeout: int = field(tag=8, default=0)
    context: dict[str, str] = field(tag=9, default_factory=dict)
    status: dict[str, str] = field(tag=10, default_factory=dict)


class TioItem(tarsio.Struct):
    id: int = field(tag=0, default=0)
    name: str = field(tag=1, default="")
    price: float = field(tag=2, default=0.0)
    qty: int = field(tag=3, default=0)
    inStock: bool = field(tag=4, default=False)
    tags: list[str] = field(tag=5, default_factory=list)


class TioOrder(tarsio.Struct):
    orderId: int = field(tag=0, default=0)
    customer: str = field(tag=1, default="")
    items: list[TioItem] = field(tag=2, default_factory=list)
    attrs: dict[str, str] = field(tag=3, default_factory=dict)
    total: float = field(tag=4, default=0.0)
    sig: bytes = field(tag=5, default=b"")


# ---------------------------------------------------------------------------------------------
# the payloads, as plain data shared by the three implementations


def request_fields() -> dict[str, Any]:
    return {
        "iVersion": 1,
        "cPacketType": 0,
        "iMessageType": 0,
        "iRequestId": 12345,
        "sServantName": "Test.NodeServer.EchoObj",
        "sFuncName": "echo",
        "sBuffer": bytes(range(64)),
        "iTimeout": 3000,
        "context": {"k": "v"},
        "status": {},
    }


def order_fields() -> dict[str, Any]:
    rnd = random.Random(7)
    items = [
        {
            "id": 1_000_000 + i * 7919,
            "name": f"item-{i:03d} {'x' * rnd.randrange(5, 30)}",
            "price": round(rnd.uniform(1, 500), 2),
            "qty": rnd.randrange(1, 100_000),
            "inStock": i % 3 != 0,
            "tags": [f"tag{i % 5}", f"cat{i % 7}"],
        }
        for i in range(50)
    ]
    return {
        "orderId": 9_000_000_001,
        "customer": "Ada Lovelace <ada@example.com>",
        "items": items,
        "attrs": {f"attr{i:02d}": f"value {i} {'v' * (i % 13)}" for i in range(50)},
        "total": sum(it["price"] * it["qty"] for it in items),
        "sig": bytes(rnd.randrange(256) for _ in range(32)),
    }


def tarsus_objects() -> dict[str, Any]:
    o = order_fields()
    items = [Bench.Item(**it) for it in o.pop("items")]
    return {
        "request": RequestPacket(**request_fields()),
        "order": Bench.Order(items=items, **o),
    }


def tarsio_objects() -> dict[str, Any]:
    o = order_fields()
    items = [TioItem(**it) for it in o.pop("items")]
    return {"request": TioRequestPacket(**request_fields()), "order": TioOrder(items=items, **o)}


def to_node_json(fields: dict[str, Any]) -> dict[str, Any]:
    """Plain data in codec_peer.js's JSON form (bytes as hex, maps as pairs)."""

    def conv(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, dict):
            return [[k, conv(x)] for k, x in v.items()]
        if isinstance(v, list):
            return [conv(x) if not isinstance(x, dict) else to_node_json(x) for x in v]
        return v

    return {k: conv(v) for k, v in fields.items()}


# ---------------------------------------------------------------------------------------------
# timing


def best_us(fn: Callable[[], object], rounds: int, round_time: float) -> float:
    """Best of ``rounds`` timeit loops, each sized to take about ``round_time`` seconds."""
    timer = timeit.Timer(fn)
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= round_time:
            break
        number = max(number * 2, int(number * round_time * 1.1 / t)) if t > 0 else number * 10
    return min(timer.repeat(repeat=rounds, number=number)) / number * 1e6


def run_node(rounds: int, round_time: float, warmup: float) -> dict[str, Any] | None:
    node = shutil.which("node")
    if node is None:
        print("warning: node not found; skipping @tars/stream", file=sys.stderr)
        return None
    if not (NODE_MODULES / "@tars" / "stream").is_dir():
        print(
            f"warning: {NODE_MODULES} missing (run `npm ci` in {NODE_MODULES.parent}); "
            "skipping @tars/stream",
            file=sys.stderr,
        )
        return None
    spec = {
        "request": to_node_json(request_fields()),
        "order": to_node_json(order_fields()),
        "rounds": rounds,
        "round_time": round_time,
        "warmup": warmup,
    }
    env = {k: v for k, v in os.environ.items() if k not in ("TARS_CONFIG", "TARS_MONITOR")}
    proc = subprocess.run(
        [node, str(NODE_SCRIPT)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        print(f"warning: codec_node.js failed:\n{proc.stderr}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def check_bytes(name: str, impls: dict[str, bytes]) -> bool:
    ref = next(iter(impls.values()))
    if all(b == ref for b in impls.values()):
        print(f"{name}: identical bytes from {', '.join(impls)} ({len(ref)} bytes)")
        return True
    print(f"WARNING: {name}: the implementations encode different bytes:", file=sys.stderr)
    for impl, b in impls.items():
        print(f"  {impl:7s} {len(b):5d} B  {b[:48].hex()}...", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (3 rounds of 0.05 s)")
    ap.add_argument("--rounds", type=int, help="rounds per measurement (default 7)")
    ap.add_argument("--round-time", type=float, help="seconds per round (default 0.2)")
    ap.add_argument("--write", metavar="MD", help="replace the codec section of this markdown")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    round_time = args.round_time or (0.05 if args.quick else 0.2)
    warmup = 0.2 if args.quick else 1.0

    print(f"tarsus codec: {tarsus_impl()}")
    ours = tarsus_objects()
    theirs = tarsio_objects()
    cls = {"request": RequestPacket, "order": Bench.Order}

    node = run_node(rounds, round_time, warmup)

    identical: dict[str, bool] = {}
    for name in ("request", "order"):
        impls = {
            "tarsus": tarsus.codec.encode(ours[name]),
            "tarsio": theirs[name].encode(),
        }
        if node is not None:
            impls["node"] = bytes.fromhex(node[name]["hex"])
        identical[name] = check_bytes(name, impls)
        # Each decoder must read the others' bytes back to the same value.
        for b in impls.values():
            assert tarsus.codec.decode(b, cls[name]) == ours[name]
            assert type(theirs[name]).decode(b) == theirs[name]

    rows = []
    for name in ("request", "order"):
        data = tarsus.codec.encode(ours[name])
        tio_data = theirs[name].encode()
        obj, tobj, c, tc = ours[name], theirs[name], cls[name], type(theirs[name])
        measured = {
            ("encode", "tarsus"): best_us(lambda o=obj: tarsus.codec.encode(o), rounds, round_time),
            ("encode", "tarsio"): best_us(lambda o=tobj: o.encode(), rounds, round_time),
            ("decode", "tarsus"): best_us(
                lambda d=data, k=c: tarsus.codec.decode(d, k), rounds, round_time
            ),
            ("decode", "tarsio"): best_us(lambda d=tio_data, k=tc: k.decode(d), rounds, round_time),
        }
        for op in ("encode", "decode"):
            node_us = node[name][f"{op}_us"] if node is not None else None
            rows.append(
                (name, len(data), op, measured[op, "tarsus"], measured[op, "tarsio"], node_us)
            )

    table = render(rows)
    print()
    print(table)
    if args.write:
        cmd = " ".join(
            [".venv/bin/python", "bench/codec.py", *(shlex.quote(a) for a in sys.argv[1:])]
        )
        write_markdown(Path(args.write), table, cmd, rounds, round_time, node, identical)
        print(f"\nwrote {args.write}")
    return 0


def render(rows: list[tuple[str, int, str, float, float, float | None]]) -> str:
    lines = [
        "| payload | op | tarsus µs/op | tarsio µs/op | node µs/op "
        "| tarsus ÷ tarsio | tarsus ÷ node |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, size, op, us, tio, nd in rows:
        node_s = f"{nd:.2f}" if nd is not None else "n/a"
        ratio_n = f"{us / nd:.2f}" if nd else "n/a"
        lines.append(
            f"| {name} ({size} B) | {op} | {us:.2f} | {tio:.2f} | {node_s} "
            f"| {us / tio:.2f} | {ratio_n} |"
        )
    return "\n".join(lines)


def tarsus_impl() -> str:
    if tarsus.codec.encode.__module__.endswith("_speedups"):
        return "C speedups"
    return "pure Python (TARSUS_NO_SPEEDUPS set, or the C extension not built)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_markdown(
    path: Path,
    table: str,
    cmd: str,
    rounds: int,
    round_time: float,
    node: dict[str, Any] | None,
    identical: dict[str, bool],
) -> None:
    node_v = (
        f"Node {node['versions']['node']}, @tars/stream {node['versions']['stream']}, "
        f"@tars/rpc {node['versions']['rpc']}"
        if node
        else "Node: not run"
    )
    impl = tarsus_impl()
    same = ", ".join(f"{k}: {'identical' if v else 'DIFFERENT'}" for k, v in identical.items())
    section = "\n".join(
        [
            BEGIN,
            "## Codec speed",
            "",
            f"Measured {datetime.date.today().isoformat()} on {cpu_model()} "
            f"({os.cpu_count()} CPUs), Python {platform.python_version()}, "
            f"tarsio {dist_version('tarsio')}, {node_v}. Tarsus codec: {impl}.",
            f"Best of {rounds} rounds of about {round_time} s each (timeit-style loops); "
            "µs per operation, lower is better. Ratios are time ratios: above 1 means Tarsus "
            "is slower. Machines are noisy: compare ratios from one run, not absolute times "
            "across runs.",
            "",
            "- **request**: RequestPacket, 64-byte sBuffer, context {k: v} "
            '(anchors-measured.md "Codec speed").',
            "- **order**: `Bench.Order` (bench/Bench.tars), 50 `Bench.Item` structs in a vector "
            "and a 50-entry map<string, string>.",
            f"- Bytes compared before timing: {same} (tarsus / tarsio / node).",
            "",
            table,
            "",
            *command_lines(cmd),
            END,
        ]
    )
    replace_section(path, BEGIN, END, section)


if __name__ == "__main__":
    sys.exit(main())
