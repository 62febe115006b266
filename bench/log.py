"""Remote logs: lines per second to disk through tars.tarslog.LogObj from many clients, and
what the Python handler (tarsus.rpc.remote_log) costs a caller per log call.

The log service runs in a process of its own (as under a node); the clients run in another,
each with its own communicator (its own connection), sending batches of ``--batch`` lines of
about 120 bytes with ``Log.logger`` as fast as answers come back, for ``--seconds``. The rate
counts lines found in the files once the service has written everything out.

The handler's cost is measured in this process: ``logger.info("event %d", i)`` with the
remote handler attached, minus the same call with a handler that does nothing, and the
handler's own ``handle(record)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tarsus.protocol.gen import LogF
from tarsus.rpc.communicator import Communicator
from tarsus.testing import free_port

OBJ = "tars.tarslog.LogObj"

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tarsus.framework.log import LogSettings, add_log
    from tarsus.rpc.application import Application

    async def main() -> None:
        app = Application()
        service = add_log(app, LogSettings(directory=Path(sys.argv[1])),
                          endpoint=f"tcp -h 127.0.0.1 -p {sys.argv[2]} -t 60000",
                          ext_endpoint="tcp -h 127.0.0.1 -p 0 -t 60000")
        await app.start()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await app.stop(drain_timeout=5.0)
        c = service.writer.counts
        print(f"{c.received_lines} {c.written_lines} {c.dropped_lines}", flush=True)

    asyncio.run(main())
    """
)


async def _client(where: str, n: int, seconds: float, batch: int) -> int:
    line = f"2024-05-01 12:00:00|client {n:02d}|INFO|" + "x" * 80 + " {}\n"
    async with Communicator(cache_dir=None) as comm:
        proxy = comm.string_to_proxy(LogF.LogProxy, where)
        sent, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            await proxy.logger("Bench", f"S{n % 4}", "load", "%Y%m%d", [line] * batch)
            sent += batch
        return sent


async def _clients(where: str, clients: int, seconds: float, batch: int) -> int:
    sent = await asyncio.gather(*(_client(where, n, seconds, batch) for n in range(clients)))
    return sum(sent)


def disk_rate(clients: int, seconds: float, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tarsus-bench-log-") as tmp:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, tmp, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None and server.stdin is not None
        assert server.stdout.readline().strip() == "ready"
        where = f"{OBJ}@tcp -h 127.0.0.1 -p {port} -t 60000"
        start = time.monotonic()
        sent = asyncio.run(_clients(where, clients, seconds, batch))
        server.stdin.close()  # stop: the writer writes out what it holds
        _received, written, dropped = map(int, server.stdout.readline().split())
        elapsed = time.monotonic() - start
        server.wait(timeout=60)
        on_disk = 0
        for path in Path(tmp).rglob("*.log"):
            with path.open("rb") as f:
                on_disk += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return {
        "clients": clients,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "sent": sent,
        "written": written,
        "dropped": dropped,
        "on_disk": on_disk,
        "lines_per_s": round(on_disk / elapsed),
    }


def handler_cost(calls: int) -> dict[str, float]:
    async def measure() -> dict[str, float]:
        from tarsus.rpc.remote_log import RemoteLog

        async with Communicator(cache_dir=None) as comm:
            remote = RemoteLog(comm, "Bench", "Py", log_obj=f"{OBJ}@tcp -h 127.0.0.1 -p 1",
                               max_pending=calls * 2)  # fmt: skip
            with_remote = logging.getLogger("bench.remote")
            with_remote.propagate = False
            with_remote.setLevel(logging.INFO)
            handler = remote.handler("bench")
            with_remote.addHandler(handler)
            baseline = logging.getLogger("bench.null")
            baseline.propagate = False
            baseline.setLevel(logging.INFO)
            baseline.addHandler(logging.NullHandler())

            def per_call(logger: logging.Logger) -> float:
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    for i in range(calls):
                        logger.info("event %d", i)
                    best = min(best, (time.perf_counter() - t) / calls)
                return best * 1e6

            per_call(with_remote)
            with_us, null_us = per_call(with_remote), per_call(baseline)
            remote._queue.clear()
            record = with_remote.makeRecord("bench", logging.INFO, __file__, 1, "x %d", (1,), None)
            t = time.perf_counter()
            for _ in range(calls):
                handler.handle(record)
            handle_us = (time.perf_counter() - t) / calls * 1e6
            remote._queue.clear()
            return {
                "info_with_remote_us": round(with_us, 2),
                "info_with_null_us": round(null_us, 2),
                "handler_added_us": round(with_us - null_us, 2),
                "handle_us": round(handle_us, 2),
            }

    return asyncio.run(measure())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=200, help="lines per Log.logger call")
    ap.add_argument("--calls", type=int, default=200_000, help="log calls for the handler cost")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    result = {
        "disk": disk_rate(args.clients, args.seconds, args.batch),
        "handler": handler_cost(args.calls),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result))
        return
    d, h = result["disk"], result["handler"]
    print(f"{d['clients']} clients, batches of {d['batch']}: {d['on_disk']} lines on disk in "
          f"{d['seconds']} s = {d['lines_per_s']} lines/s (dropped {d['dropped']})")  # fmt: skip
    print(f"logger.info with the remote handler: {h['info_with_remote_us']} us, with a null "
          f"handler {h['info_with_null_us']} us: the handler adds {h['handler_added_us']} us "
          f"(handle() alone {h['handle_us']} us)")  # fmt: skip


if __name__ == "__main__":
    main()
