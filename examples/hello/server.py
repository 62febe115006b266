"""The Hello service: Test.HelloServer.HelloObj.

python examples/hello/server.py [--port 18601]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import tarsus.idl
from tarsus.rpc.application import Application

Test = tarsus.idl.load(Path(__file__).with_name("Hello.tars")).Test


class HelloImpl(Test.HelloServant):  # type: ignore[misc,name-defined]
    async def sayHello(self, name: str) -> tuple[int, str]:
        return 0, f"hello {name}, from Python"


async def main(port: int) -> None:
    app = Application()
    app.add_servant(
        HelloImpl(), "Test.HelloServer.HelloObj", f"tcp -h 127.0.0.1 -p {port} -t 60000"
    )
    await app.start()
    print(f"Test.HelloServer.HelloObj listening on 127.0.0.1:{port}", flush=True)
    await app.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s|%(levelname)s|%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=18601)
    asyncio.run(main(parser.parse_args().port))
