"""The Tarsus clients of bench/rpc_client.py: the async proxy, or the blocking one from threads.

    python bench/rpc_clients/tarsus_client.py --port P --conns 4 --inflight 32 [--loop uvloop]
    python bench/rpc_clients/tarsus_client.py --port P --sync --threads 8

Calls ``Bench.Echo.echo(s)`` through a generated ``EchoProxy`` in a closed loop and prints one
JSON line in bench/rpc_loadgen.py's shape. Async: each of ``--conns`` connections is a
``Communicator`` of its own (one connection per endpoint and communicator), with ``--inflight``
coroutines each awaiting one call after another. Sync: one ``SyncCommunicator`` (one
connection), ``--threads`` threads each blocking on one call after another. Every reply is
checked (ret 0, r = s). Latency runs from the call to its result; throughput counts the
replies inside the window.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rpc_loadgen import Stats, _close_window, _open_window, percentile

import tarsus.idl
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.sync import SyncCommunicator

Bench: Any = tarsus.idl.load(str(Path(__file__).parent.parent / "rpc_servers" / "Echo.tars")).Bench
perf = time.perf_counter
#: Generous call timeouts (as the Node client's): on a shared machine a stall shows as latency.
TIMEOUT_MS = 30_000


def record(stats: Stats, t: float, ret: int, r: str, s: str) -> None:
    t2 = perf()
    if ret != 0 or r != s:
        stats.error(f"echo returned {ret} {r[:40]!r}")
        return
    phase = stats.phase
    if phase == "warmup":
        stats.verified += 1
    elif phase == "window" and t2 >= stats.window_start:
        stats.lat.append(t2 - t)
        stats.completed += 1


async def run_async(args: argparse.Namespace, stats: Stats, s: str) -> dict[str, Any]:
    name = f"{args.servant}@tcp -h 127.0.0.1 -p {args.port} -t 60000"
    comms = [Communicator(timeout_ms=TIMEOUT_MS, cache_dir=None) for _ in range(args.conns)]
    proxies = [c.string_to_proxy(Bench.EchoProxy, name) for c in comms]
    stop = False

    async def worker(proxy: Any) -> None:
        while not stop:
            t = perf()
            try:
                ret, r = await proxy.echo(s)
            except Exception as e:
                stats.error(f"call failed: {e!r}")
                continue
            record(stats, t, ret, r, s)

    workers = [asyncio.ensure_future(worker(p)) for p in proxies for _ in range(args.inflight)]
    await asyncio.sleep(args.warmup)
    marks = _open_window(stats, args.server_pid)
    await asyncio.sleep(args.duration)
    end = _close_window(stats, args.server_pid, marks)
    stop = True
    _, left = await asyncio.wait(workers, timeout=5)
    for c in comms:
        await c.close()
    return {"pending_left": len(left), **end}


def run_sync(args: argparse.Namespace, stats: Stats, s: str) -> dict[str, Any]:
    name = f"{args.servant}@tcp -h 127.0.0.1 -p {args.port} -t 60000"
    stop = threading.Event()
    # The default loop is uvloop when installed; --loop asyncio asks for the stdlib one.
    options = {"loop_factory": asyncio.new_event_loop} if args.loop == "asyncio" else {}
    with SyncCommunicator(timeout_ms=TIMEOUT_MS, cache_dir=None, **options) as comm:
        proxy = comm.string_to_proxy(Bench.EchoProxy, name)
        loop = type(comm.loop).__module__.split(".")[0]

        def worker() -> None:
            while not stop.is_set():
                t = perf()
                try:
                    ret, r = proxy.echo(s)
                except Exception as e:
                    stats.error(f"call failed: {e!r}")
                    continue
                record(stats, t, ret, r, s)  # the GIL makes the counters safe enough

        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        for th in threads:
            th.start()
        time.sleep(args.warmup)
        marks = _open_window(stats, args.server_pid)
        time.sleep(args.duration)
        end = _close_window(stats, args.server_pid, marks)
        stop.set()
        for th in threads:
            th.join(5)
        left = sum(th.is_alive() for th in threads)
    return {"pending_left": left, "loop": loop, **end}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--servant", default="Bench.RpcServer.EchoObj")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--inflight", type=int, default=1, help="per connection")
    ap.add_argument("--sync", action="store_true", help="SyncCommunicator from --threads threads")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--payload", type=int, default=10, help="string length")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = ap.parse_args(argv)
    s = "x" * args.payload
    stats = Stats()
    loop = "asyncio"
    if args.sync:
        res = run_sync(args, stats, s)
        loop = res.pop("loop")
    else:
        runner: Any = asyncio.run
        if args.loop == "uvloop":
            try:
                import uvloop

                runner, loop = uvloop.run, "uvloop"
            except ImportError:
                pass
        res = runner(run_async(args, stats, s))
    lat = sorted(x * 1e6 for x in stats.lat)
    window = res.pop("window")
    out = {
        "calls_per_s": stats.completed / window if window > 0 else 0.0,
        "completed": stats.completed,
        "window_s": window,
        "p50_us": percentile(lat, 50),
        "p99_us": percentile(lat, 99),
        "verified": stats.verified,
        "errors": stats.errors,
        "first_errors": stats.first_errors,
        "loop": loop,
        **res,
    }
    import json

    print(json.dumps(out))
    return 0 if stats.errors == 0 and out["pending_left"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
