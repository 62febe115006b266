"""The ceiling of bench/rpc.py: a length-prefixed echo with no decoding.

Every complete frame of one read goes back in one write, untouched.

    python bench/rpc_servers/bare_server.py --port 18701 [--loop asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct

_unpack_len = struct.Struct(">I").unpack_from


class Echo(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 4:
            n = _unpack_len(buf, pos)[0]
            if n < 4 or end - pos < n:
                break
            pos += n
        if pos:
            assert self.transport is not None
            self.transport.write(bytes(buf[:pos]))
            del buf[:pos]


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"bare echo on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    a = ap.parse_args()
    if a.loop == "uvloop":
        import uvloop

        uvloop.run(main(a.port))
    else:
        asyncio.run(main(a.port))
