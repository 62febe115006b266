"""The Hello service: Test.HelloServer.HelloObj.

python examples/hello/server.py [--port 18601]      # standalone, on 127.0.0.1
python examples/hello/server.py --config=FILE       # as a Tars node starts it

With ``--config`` the endpoint, the admin object (``local``), heartbeats to the node
(``node``) and the log files (``logpath``) all come from the config file the node wrote; see
docs/rpc-server.md. The server stops gracefully on SIGTERM, Ctrl-C or ``AdminF.shutdown``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import tarsus.idl
from tarsus.rpc.application import Application

Test = tarsus.idl.load(Path(__file__).with_name("Hello.tars")).Test

SERVANT = "Test.HelloServer.HelloObj"
log = logging.getLogger("hello")


class HelloImpl(Test.HelloServant):  # type: ignore[misc,name-defined]
    async def sayHello(self, name: str) -> tuple[int, str]:
        log.debug("sayHello(%r)", name)
        return 0, f"hello {name}, from Python"


def initialize(app: Application) -> None:
    # Runs while the node is told "activating"; a place for admin commands and configs.
    app.register_admin("hello.ping", lambda args: f"pong {args}".strip())


async def standalone(port: int) -> None:
    app = Application()
    app.add_servant(HelloImpl(), SERVANT, f"tcp -h 127.0.0.1 -p {port} -t 60000")
    await app.start()
    print(f"{SERVANT} listening on 127.0.0.1:{port}", flush=True)  # the first line, for scripts
    logging.basicConfig(level=logging.INFO, format="%(asctime)s|%(levelname)s|%(message)s")
    await app.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=18601)
    parser.add_argument("--config", help="the config file a Tars node generated")
    args = parser.parse_args()
    if args.config:
        raise SystemExit(
            Application.main(
                {SERVANT: HelloImpl()}, argv=[f"--config={args.config}"], initialize=initialize
            )
        )
    asyncio.run(standalone(args.port))
