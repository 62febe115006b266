"""A client host's workload: call Test.HelloServer.HelloObj by name, forever, and log each call.

    python caller.py LOCATOR LOGFILE [--interval 0.05] [--cache-dir DIR]

One JSON line per call: ``{"t": <unix time>, "ok": bool, "host": <endpoint host or null>,
"error": <text or null>}``. The endpoint comes from the client's call observer, so the log
shows which node answered each call; the route list comes from the registry through the
locator and is cached on disk, as any Tars client does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import tarsus.idl
from tarsus.rpc.client import CallRecord
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import TarsError

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "Hello.tars"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("locator")
    parser.add_argument("log")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--cache-dir")
    parser.add_argument("--refresh-ms", type=int, default=5000)
    args = parser.parse_args()
    test: Any = tarsus.idl.load(HELLO).Test
    comm = Communicator(
        locator=args.locator,
        cache_dir=args.cache_dir,
        refresh_endpoint_interval_ms=args.refresh_ms,
    )
    answered: list[str] = []

    def observe(record: CallRecord) -> None:
        answered.append(record.endpoint.host)

    comm.observers.append(observe)
    hello = comm.string_to_proxy(test.HelloProxy, "Test.HelloServer.HelloObj")
    with open(args.log, "a", buffering=1) as out:
        while True:
            answered.clear()
            entry: dict[str, Any] = {"t": time.time(), "ok": False, "host": None, "error": None}
            try:
                await hello.with_options(timeout_ms=1000).sayHello("multihost")
                entry["ok"] = True
            except TarsError as e:
                entry["error"] = str(e)
            entry["host"] = answered[-1] if answered else None
            out.write(json.dumps(entry) + "\n")
            await asyncio.sleep(args.interval)


if __name__ == "__main__":
    asyncio.run(main())
