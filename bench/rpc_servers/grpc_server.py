"""The grpc.aio peer of bench/rpc.py: unary ``/bench.Echo/Echo``, bytes in, the same bytes out.

No serializers (the message is the raw payload), so it carries less framing than a Tars call
(no servant or function name, no context). Run on the stdlib event loop, as grpc.aio is
usually run.

    python bench/rpc_servers/grpc_server.py --port 18702
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc


async def echo(request: bytes, context: Any) -> bytes:
    return request


class Handler(grpc.GenericRpcHandler):
    def service(self, handler_call_details: Any) -> Any:
        if handler_call_details.method == "/bench.Echo/Echo":
            return grpc.unary_unary_rpc_method_handler(echo)
        return None


async def main(port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Handler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"grpc.aio echo on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await server.stop(0.5)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    asyncio.run(main(ap.parse_args().port))
