"""What one TLS layer costs per batch, without sockets: a client's write of one batch and the
server's read of it, through

- ``raw``: ``SSLObject.write`` / ``MemoryBIO`` / ``SSLObject.read`` alone (OpenSSL's share),
- ``tarsus``: ``tarsus.rpc.tls_transport.TlsProtocol`` (what ``ssl`` endpoints use),
- ``asyncio``: the stdlib's ``asyncio.sslproto.SSLProtocol`` (``create_server(ssl=...)``),
- ``uvloop``: uvloop's own ``SSLProtocol``, when installed,

each pair handshaken once over in-memory transports, the batch (``--size`` bytes: 32 requests
of bench/rpc_secure.py are about 3.3 KB) written and read ``--number`` times; best of
``--repeat``, layers interleaved over ``--rounds``, medians. No kernel, no scheduling: the
steadier measure on a shared machine, where bench/rpc_secure.py's calls/s swing with the load.

    .venv/bin/python bench/tls_layer.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import statistics
import sys
import tempfile
import timeit
from asyncio import sslproto
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tarsus.rpc.tls_transport import TlsProtocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rpc_secure import make_pki  # the bench beside this one


class Wire(asyncio.Transport):
    """The TCP transport underneath, in memory: what is written waits in :attr:`sent`."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def write(self, data: Any) -> None:
        self.sent.append(data)

    def writelines(self, list_of_data: Iterable[Any]) -> None:
        self.sent.append(b"".join(list_of_data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class Sink(asyncio.Protocol):
    """The connection above: counts the plaintext it gets."""

    def __init__(self) -> None:
        self.received = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)


def receive(protocol: Any, data: bytes) -> None:
    """What the event loop does with bytes read for *protocol* (buffered or not)."""
    if isinstance(protocol, TlsProtocol) or not hasattr(protocol, "get_buffer"):
        protocol.data_received(data)
        return
    buf = protocol.get_buffer(len(data))
    buf[: len(data)] = data
    protocol.buffer_updated(len(data))


def contexts(pki: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki / "server.crt", pki / "server.key")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.load_verify_locations(pki / "ca.crt")
    return server, client


def layer_pair(
    kind: str, loop: asyncio.AbstractEventLoop, server: Any, client: Any, s_app: Sink, c_app: Sink
) -> tuple[Any, Any]:
    """The server's and the client's layer of *kind*, over *s_app* and *c_app*."""
    if kind == "tarsus":
        return (
            TlsProtocol(server, s_app, server_side=True),
            TlsProtocol(client, c_app, server_side=False),
        )
    if kind == "asyncio":
        return (
            sslproto.SSLProtocol(loop, s_app, server, None, server_side=True),
            sslproto.SSLProtocol(loop, c_app, client, None, server_side=False),
        )
    import uvloop.loop  # type: ignore[import-not-found]

    return (
        uvloop.loop.SSLProtocol(loop, s_app, server, None, server_side=True),
        uvloop.loop.SSLProtocol(loop, c_app, client, None, server_side=False),
    )


def time_layer(kind: str, server: Any, client: Any, args: argparse.Namespace) -> float:
    """µs for one batch written by the client's layer and read by the server's."""
    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    async def go() -> float:
        app_s, app_c = Sink(), Sink()
        s, c = layer_pair(kind, loop, server, client, app_s, app_c)
        s_wire, c_wire = Wire(), Wire()
        s.connection_made(s_wire)
        c.connection_made(c_wire)
        for _ in range(50):  # the handshake and the session tickets
            while c_wire.sent:
                receive(s, c_wire.sent.pop(0))
            while s_wire.sent:
                receive(c, s_wire.sent.pop(0))
            await asyncio.sleep(0)
        batch = b"x" * args.size

        def one() -> None:
            app_c.transport.write(batch)
            receive(s, c_wire.sent.pop())

        before = app_s.received
        best = min(timeit.repeat(one, number=args.number, repeat=args.repeat))
        assert app_s.received - before == args.repeat * args.number * args.size, kind
        return best / args.number * 1e6

    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def time_raw(server: ssl.SSLContext, client: ssl.SSLContext, args: argparse.Namespace) -> float:
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out)
    for _ in range(10):
        for end in (s, c):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    batch = b"x" * args.size

    def one() -> None:
        c.write(batch)
        s_in.write(c_out.read())
        s.read(16384)

    return min(timeit.repeat(one, number=args.number, repeat=args.repeat)) / args.number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=3300, help="bytes per batch")
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kinds = ["raw", "tarsus", "asyncio"]
    try:
        import uvloop  # noqa: F401

        kinds.append("uvloop")
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        make_pki(Path(tmp))
        server, client = contexts(Path(tmp))
        results: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.rounds):
            for kind in kinds:
                if kind == "raw":
                    results[kind].append(time_raw(server, client, args))
                else:
                    results[kind].append(time_layer(kind, server, client, args))
    raw = statistics.median(results["raw"])
    report = {
        kind: {
            "us_per_batch_median": round(statistics.median(v), 2),
            "us_per_batch": [round(x, 2) for x in v],
            "vs_raw": round(statistics.median(v) / raw, 2),
        }
        for kind, v in results.items()
    }
    print(json.dumps({"size": args.size, "layers": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
