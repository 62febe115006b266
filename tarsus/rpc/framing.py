"""Splitting a TCP byte stream into Tars packets.

Each packet is a 4-byte big-endian length that counts itself, then the body. A length outside
[5, max] is a protocol error: the peer is not speaking Tars, or is hostile, and the connection
is closed (as C++ does) rather than buffering up to the claimed size.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Final

from tarsus.rpc import allocator

#: Upstream C++ accepts packets up to 100 MiB (TARS_NET_MAX_PACKAGE_SIZE); Go 10 MiB.
DEFAULT_MAX_PACKET: Final = 100 * 1024 * 1024
MIN_PACKET: Final = 5
#: A body above this many bytes that one read leaves incomplete is gathered in a buffer of
#: its own (:class:`FrameAssembler`).
BIG_PACKET: Final = 64 * 1024

_unpack_len = struct.Struct(">I").unpack_from
pack_len = struct.Struct(">I").pack


class FramingError(Exception):
    """The stream is not a sequence of valid Tars packets."""


def split_frames(buf: bytearray, max_packet: int = DEFAULT_MAX_PACKET) -> list[bytes]:
    """Remove every complete packet body from the front of ``buf`` and return them.

    An incomplete packet stays in ``buf`` for the next read.
    """
    frames: list[bytes] = []
    pos = 0
    end = len(buf)
    while end - pos >= 4:
        n = _unpack_len(buf, pos)[0]
        if n < MIN_PACKET or n > max_packet:
            raise FramingError(f"packet length {n} outside {MIN_PACKET}..{max_packet}")
        if end - pos < n:
            break
        frames.append(bytes(buf[pos + 4 : pos + n]))
        pos += n
    if pos:
        del buf[:pos]
    return frames


class FrameAssembler:
    """The packet bodies of a TCP byte stream, as its reads arrive (:meth:`feed`).

    Packets a read holds whole are cut straight out of it (one copy each); only the start of
    an incomplete one is kept for the next read. A packet longer than :data:`BIG_PACKET` that
    a read leaves incomplete moves to a buffer of its own that grows as its bytes arrive (never
    ahead of them: a length alone reserves no memory) and, once whole, is handed out as it is,
    a ``bytearray`` not copied again: a multi-MiB packet arriving in many reads costs one copy
    of each byte, not three.
    """

    __slots__ = ("_big", "_buf", "_missing", "max_packet")

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET) -> None:
        self.max_packet = max_packet
        #: the start of an incomplete packet (at most :data:`BIG_PACKET` and its length)
        self._buf = bytearray()
        #: the body of a big packet being received, and how many of its bytes are missing
        self._big: bytearray | None = None
        self._missing = 0

    def feed(self, data: bytes) -> list[bytes | bytearray]:
        """Take one read's ``data``; return the packet bodies it completes, in order.

        Raises :class:`FramingError` for a length outside ``[5, max_packet]``: the stream
        cannot be trusted after it."""
        frames: list[bytes | bytearray] = []
        big = self._big
        if big is not None:
            missing = self._missing
            if len(data) < missing:
                big += data
                self._missing = missing - len(data)
                return frames
            big += memoryview(data)[:missing]
            frames.append(big)
            self._big = None
            data = data[missing:]
            if not data:
                return frames
        buf = self._buf
        src: bytes | bytearray = data
        if buf:
            buf += data
            src = buf
        pos = 0
        end = len(src)
        max_packet = self.max_packet
        while end - pos >= 4:
            n = _unpack_len(src, pos)[0]
            if n < MIN_PACKET or n > max_packet:
                raise FramingError(f"packet length {n} outside {MIN_PACKET}..{max_packet}")
            if end - pos < n:
                break
            frames.append(bytes(src[pos + 4 : pos + n]) if buf else src[pos + 4 : pos + n])
            pos += n
        if buf:
            if pos:
                del buf[:pos]
        elif pos < end:
            buf += memoryview(data)[pos:]
        if len(buf) >= 4:
            n = _unpack_len(buf, 0)[0]  # checked above
            if n - 4 > BIG_PACKET:
                self._big = buf[4:]
                self._missing = n - len(buf)
                buf.clear()
        return frames


def frame(body: bytes) -> bytes:
    return pack_len(len(body) + 4) + body


class BatchingProtocol(asyncio.Protocol):
    """A connection whose writes made in one turn of the event loop leave in one write (a big
    packet, above :data:`BIG_PACKET`, in a write of its own).

    Batching replies (server) and requests (client) per turn is worth about 1.7x in throughput
    under load (docs/benchmarks.md), and costs nothing at depth 1.
    """

    __slots__ = ("_loop", "_out", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] | None = None
        self._loop = asyncio.get_event_loop()
        allocator.tune()  # big packets: see tarsus.rpc.allocator

    def send(self, data: bytes) -> None:
        out = self._out
        if out is None:
            self._out = [data]
            self._loop.call_soon(self._flush)
        else:
            out.append(data)

    def _flush(self) -> None:
        out = self._out
        self._out = None
        transport = self.transport
        if not out or transport is None:
            return
        if len(out) == 1:
            transport.write(out[0])
            return
        if max(map(len, out)) <= BIG_PACKET:
            transport.write(b"".join(out))
            return
        # Small packets leave together; a big one is written as it is (joining copies it,
        # and the socket usually takes it whole).
        small: list[bytes] = []
        for data in out:
            if len(data) <= BIG_PACKET:
                small.append(data)
                continue
            if small:
                transport.write(b"".join(small))
                small = []
            transport.write(data)
        if small:
            transport.write(b"".join(small))
