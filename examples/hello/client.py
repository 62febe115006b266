"""Call Test.HelloServer.HelloObj.

python examples/hello/client.py [NAME] [--port 18601]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import tarsus.idl
from tarsus.rpc.communicator import Communicator

Test = tarsus.idl.load(Path(__file__).with_name("Hello.tars")).Test


async def main(name: str, port: int) -> None:
    async with Communicator() as comm:
        hello = comm.string_to_proxy(
            Test.HelloProxy, f"Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p {port} -t 60000"
        )
        ret, greeting = await hello.sayHello(name)
        print(f"ret={ret} greeting={greeting!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", nargs="?", default="world")
    parser.add_argument("--port", type=int, default=18601)
    args = parser.parse_args()
    asyncio.run(main(args.name, args.port))
