"""Packets are reassembled from a TCP stream however it is cut: a length prefix split over
reads, many packets in one read, a multi-MiB packet arriving in hundreds of reads (the package
store's 1 MiB chunks), and a bad length after all that still closes the stream."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tarsus.idl
from tarsus.codec import RequestPacket, ResponsePacket, decode, encode
from tarsus.rpc.framing import BIG_PACKET, FrameAssembler, FramingError, frame, split_frames
from tarsus.testing import serve

ROOT = Path(__file__).resolve().parents[2]
Test: Any = tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test
SAY_HELLO = Test.HelloServant._tars_ops_["sayHello"]
OBJ = "Test.HelloServer.HelloObj"


def _cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(
        st.one_of(st.integers(1, 300), st.integers(BIG_PACKET - 8, BIG_PACKET + 8)),
        min_size=1,
        max_size=6,
    ),
    big=st.integers(0, 2),
    cuts=st.lists(st.integers(0, 10**9), max_size=40),
)
def test_any_cut_of_the_stream_gives_the_same_packets(
    sizes: list[int], big: int, cuts: list[int]
) -> None:
    bodies = [os.urandom(n) for n in sizes]
    bodies.insert(big % (len(bodies) + 1), os.urandom(3 * 1024 * 1024 + 17) if big else b"x")
    stream = b"".join(frame(b) for b in bodies)
    assembler = FrameAssembler()
    got: list[bytes] = []
    for piece in _cut(stream, cuts):
        got += [bytes(b) for b in assembler.feed(piece)]
    assert got == bodies


def test_a_big_packet_in_many_reads_then_a_bad_length_closes_the_stream() -> None:
    body = os.urandom(2 * 1024 * 1024)
    stream = frame(body) + frame(b"after")
    assembler = FrameAssembler(max_packet=4 * 1024 * 1024)
    got: list[bytes | bytearray] = []
    for i in range(0, len(stream), 1000):  # 2 100 reads, the first cutting the length
        got += assembler.feed(stream[i : i + 1000])
    assert [bytes(b) for b in got] == [body, b"after"]
    with pytest.raises(FramingError, match=r"outside 5\.\.4194304"):
        assembler.feed(struct.pack(">I", 4 * 1024 * 1024 + 1))
    with pytest.raises(FramingError, match="outside"):
        FrameAssembler().feed(b"\x00\x00\x00\x03")


class _Hello(Test.HelloServant):  # type: ignore[misc]
    async def sayHello(self, name: str) -> tuple[int, str]:
        return len(name), name[::-1]


async def test_a_multi_mib_call_cut_into_small_writes_is_answered_whole() -> None:
    name = os.urandom(3 * 1024 * 1024).hex()[: 3 * 1024 * 1024]
    async with serve(_Hello(), OBJ) as served:
        # our client: a 3 MiB request, a 3 MiB answer read back in many reads
        proxy = served.proxy(Test.HelloProxy)
        assert await proxy.sayHello(name) == (len(name), name[::-1])

        # a raw client writing a small call and the big one in pieces: the length prefix a
        # byte at a time, then 1-7 000 bytes per write
        small = RequestPacket(1, 0, 0, 1, OBJ, "sayHello", SAY_HELLO.encode_args(("hi",)), 3000)
        big = RequestPacket(1, 0, 0, 2, OBJ, "sayHello", SAY_HELLO.encode_args((name,)), 9000)
        stream = frame(encode(small)) + frame(encode(big))
        reader, writer = await asyncio.open_connection("127.0.0.1", served.adapter.port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pos = 0
        for step in [1, 1, 1, 1, 3, 50] + [7000, 1, 333] * 2000:
            if pos >= len(stream):
                break
            writer.write(stream[pos : pos + step])
            pos += step
            if pos < 64:
                await writer.drain()
                await asyncio.sleep(0.01)  # separate reads on the server
        writer.write(stream[pos:])
        await writer.drain()
        buf = bytearray()
        frames: list[bytes] = []
        while len(frames) < 2:
            data = await reader.read(1 << 20)
            assert data, "the server closed the connection"
            buf += data
            frames += split_frames(buf)
        writer.close()
        answers = [decode(f, ResponsePacket) for f in frames]
        assert [(a.iRequestId, a.iRet) for a in answers] == [(1, 0), (2, 0)]
        assert SAY_HELLO.decode_results(answers[0].sBuffer) == (2, "ih")
        assert SAY_HELLO.decode_results(answers[1].sBuffer) == (len(name), name[::-1])
