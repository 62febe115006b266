"""The server tests/rpc/test_application.py and test_admin.py start the way tarsnode does:

python demo_server.py --config=Demo.DemoServer.config.conf
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import tarsus.idl
from tarsus.rpc import logs
from tarsus.rpc.application import Application, run

Demo = tarsus.idl.load(Path(__file__).with_name("Demo.tars")).Demo
log = logging.getLogger("demo")
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}


class DemoImpl(Demo.DemoServant):  # type: ignore[misc,name-defined]
    async def sayHello(self, name: str) -> tuple[int, str]:
        return 0, f"hello {name}"

    async def slow(self, ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    async def logLine(self, level: str, text: str) -> None:
        log.log(_LEVELS.get(level, logging.ERROR), "%s", text)
        logs.day_logger("audit").info("%s", text)


def initialize(app: Application) -> None:
    calls = []

    async def count(args: str) -> str:
        calls.append(args)
        return f"count={len(calls)} args={args!r}"

    app.register_admin("demo.count", count)
    app.on_destroy(lambda app: log.info("demo destroyed"))


if __name__ == "__main__":
    run({"Demo.DemoServer.DemoObj": DemoImpl()}, initialize=initialize)
