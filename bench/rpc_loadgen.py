"""The load generator of bench/rpc.py: one process, raw Tars frames (or gRPC), JSON out.

It is independent of the code under test: requests are built and responses read by the small
Tars codec below (checked against tarsio at startup when tarsio is installed), never by
``tarsus.codec``.

Modes
- closed loop (default): ``--conns N --inflight M`` keeps M requests in flight on each of N
  connections; every response is answered by a new request at once, and all the requests one
  read produces leave in one write. Latency runs from just before the write that carried a
  request to the start of the read that delivered its response (as anchors-measured.md).
- open loop (``--rate R``): R requests per second in total, spread round robin over the
  connections, whatever the server does (no coordinated omission). The sender busy-polls the
  event loop, so CPU 1 shows 100% in this mode; latency runs from each request's *scheduled*
  send time to the read that delivered its response. If more than ``--max-pending`` requests
  are outstanding the server is not keeping up: the run stops early and says so.

Protocols
- ``tars``: Tars RequestPackets to an ``echo(string s, out string r) -> int`` servant. During
  warm-up every response is decoded in full and checked (iVersion 1, iRet 0, result tag 0 = 0,
  out-parameter tag 2 = the string sent); during the window every response is checked for a
  known request id and iRet 0.
- ``raw``: the same request frames to a length-prefixed echo; the echoed frame must be
  byte-identical in warm-up, and carry a known request id in the window.
- ``grpc``: a grpc.aio client of the same shape (N channels x M tasks each awaiting unary calls,
  the payload as raw bytes); the reply must equal the payload (always checked). Latency is
  around each awaited call.

Timing: ``--warmup`` seconds, then a ``--duration`` second window; throughput is the number
of responses that arrived inside the window divided by its length. The server's CPU (all its
threads, /proc/PID/stat) and the generator's own are read at the window edges.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import struct
import sys
import time
from typing import Any

perf = time.perf_counter
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------------------------------------
# A minimal Tars codec (docs/codec.md): just what echo requests and responses need.

_i8 = struct.Struct(">b")
_i16 = struct.Struct(">h")
_i32 = struct.Struct(">i")
_i64 = struct.Struct(">q")
_u32 = struct.Struct(">I")


def _head(tag: int, typ: int) -> bytes:
    return bytes([(tag << 4) | typ]) if tag < 15 else bytes([0xF0 | typ, tag])


def enc_int(tag: int, v: int) -> bytes:
    if v == 0:
        return _head(tag, 12)
    if -128 <= v <= 127:
        return _head(tag, 0) + _i8.pack(v)
    if -32768 <= v <= 32767:
        return _head(tag, 1) + _i16.pack(v)
    if -(2**31) <= v < 2**31:
        return _head(tag, 2) + _i32.pack(v)
    return _head(tag, 3) + _i64.pack(v)


def enc_str(tag: int, s: bytes) -> bytes:
    if len(s) < 256:
        return _head(tag, 6) + bytes([len(s)]) + s
    return _head(tag, 7) + _u32.pack(len(s)) + s


def enc_bytes(tag: int, b: bytes) -> bytes:  # vector<byte> as a SimpleList
    return _head(tag, 13) + _head(0, 0) + enc_int(0, len(b)) + b


def enc_empty_map(tag: int) -> bytes:
    return _head(tag, 8) + enc_int(0, 0)


def dec_value(b: bytes, p: int) -> tuple[int, Any, int]:
    """Decode the field at ``p``: (tag, value, next position). Strings stay bytes."""
    h = b[p]
    tag, typ = h >> 4, h & 15
    p += 1
    if tag == 15:
        tag = b[p]
        p += 1
    if typ == 12:
        return tag, 0, p
    if typ == 0:
        return tag, _i8.unpack_from(b, p)[0], p + 1
    if typ == 1:
        return tag, _i16.unpack_from(b, p)[0], p + 2
    if typ == 2:
        return tag, _i32.unpack_from(b, p)[0], p + 4
    if typ == 3:
        return tag, _i64.unpack_from(b, p)[0], p + 8
    if typ == 4:
        return tag, struct.unpack_from(">f", b, p)[0], p + 4
    if typ == 5:
        return tag, struct.unpack_from(">d", b, p)[0], p + 8
    if typ == 6:
        n = b[p]
        return tag, bytes(b[p + 1 : p + 1 + n]), p + 1 + n
    if typ == 7:
        n = _u32.unpack_from(b, p)[0]
        return tag, bytes(b[p + 4 : p + 4 + n]), p + 4 + n
    if typ == 8:
        _, n, p = dec_value(b, p)
        m = {}
        for _ in range(n):
            _, k, p = dec_value(b, p)
            _, v, p = dec_value(b, p)
            m[k] = v
        return tag, m, p
    if typ == 9:
        _, n, p = dec_value(b, p)
        items = []
        for _ in range(n):
            _, v, p = dec_value(b, p)
            items.append(v)
        return tag, items, p
    if typ == 13:
        if b[p] != 0:
            raise ValueError("SimpleList of a type other than byte")
        _, n, p = dec_value(b, p + 1)
        return tag, bytes(b[p : p + n]), p + n
    if typ == 10:
        fields = {}
        while (b[p] & 15) != 11:
            t, v, p = dec_value(b, p)
            fields[t] = v
        return tag, fields, p + 1
    raise ValueError(f"unknown Tars type {typ} at offset {p - 1}")


def dec_fields(b: bytes) -> dict[int, Any]:
    fields: dict[int, Any] = {}
    p = 0
    while p < len(b):
        tag, v, p = dec_value(b, p)
        fields[tag] = v
    return fields


def head_ints(b: bytes, last_tag: int) -> dict[int, int]:
    """The leading integer fields of a packet, up to ``last_tag`` (the window's fast path)."""
    out = {}
    p = 0
    while True:
        h = b[p]
        tag, typ = h >> 4, h & 15
        p += 1
        if typ == 12:
            v = 0
        elif typ == 0:
            v = _i8.unpack_from(b, p)[0]
            p += 1
        elif typ == 1:
            v = _i16.unpack_from(b, p)[0]
            p += 2
        elif typ == 2:
            v = _i32.unpack_from(b, p)[0]
            p += 4
        elif typ == 3:
            v = _i64.unpack_from(b, p)[0]
            p += 8
        else:
            return out
        out[tag] = v
        if tag >= last_tag:
            return out


class RequestBuilder:
    """Frames of ``echo(s)`` RequestPackets, differing only in iRequestId."""

    def __init__(self, servant: str, payload: bytes) -> None:
        self.prefix = enc_int(1, 1) + enc_int(2, 0) + enc_int(3, 0)
        self.suffix = (
            enc_str(5, servant.encode())
            + enc_str(6, b"echo")
            + enc_bytes(7, enc_str(1, payload))
            + enc_int(8, 3000)
            + enc_empty_map(9)
            + enc_empty_map(10)
        )
        self.servant = servant
        self.payload = payload

    def frame(self, rid: int) -> bytes:
        body = self.prefix + enc_int(4, rid) + self.suffix
        return _u32.pack(len(body) + 4) + body

    def check_against_tarsio(self) -> str:
        """Compare with an independent encoder (tarsio, Rust) when it is installed."""
        try:
            import tarsio
            from tarsio import field
        except ImportError:
            return "tarsio not installed: request bytes not cross-checked"

        class Req(tarsio.Struct):
            iVersion: int = field(tag=1, default=0)
            cPacketType: int = field(tag=2, default=0)
            iMessageType: int = field(tag=3, default=0)
            iRequestId: int = field(tag=4, default=0)
            sServantName: str = field(tag=5, default="")
            sFuncName: str = field(tag=6, default="")
            sBuffer: bytes = field(tag=7, default=b"")
            iTimeout: int = field(tag=8, default=0)
            context: dict[str, str] = field(tag=9, default_factory=dict)
            status: dict[str, str] = field(tag=10, default_factory=dict)

        class Args(tarsio.Struct):
            s: str = field(tag=1, default="")

        for rid in (1, 200, 70000, 2**31 - 1):
            ref = Req(
                iVersion=1,
                iRequestId=rid,
                sServantName=self.servant,
                sFuncName="echo",
                sBuffer=Args(s=self.payload.decode()).encode(),
                iTimeout=3000,
            ).encode()
            if self.frame(rid)[4:] != ref:
                raise SystemExit(f"request builder disagrees with tarsio for id {rid}")
        return "request bytes identical to tarsio's"


def check_response(body: bytes, rid: int, payload: bytes) -> str | None:
    """Full check of one echo response; an error message or None."""
    f = dec_fields(body)
    if f.get(1) != 1:
        return f"iVersion {f.get(1)}"
    if f.get(3) != rid:
        return f"iRequestId {f.get(3)} for request {rid}"
    if f.get(5, 0) != 0:
        return f"iRet {f.get(5)}: {f.get(8, b'')!r}"
    out = dec_fields(f.get(6, b""))
    if out.get(0, 0) != 0:
        return f"echo returned {out.get(0)}"
    if out.get(2) != payload:
        return f"echoed {out.get(2, b'')[:40]!r}, sent {payload[:40]!r}"
    return None


# ---------------------------------------------------------------------------------------------
# The measurement


def cpu_of(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) used so far by process ``pid``."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def cpus_busy() -> list[float]:
    """Busy seconds of each CPU so far (/proc/stat: everything but idle and iowait)."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                out.append((sum(v[:8]) - v[3] - v[4]) / CLK_TCK)
    return out


def runq_wait(pid: int | None) -> float | None:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (schedstat)."""
    if not pid:
        return None
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e9


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Stats:
    def __init__(self) -> None:
        self.phase = "warmup"  # warmup -> window -> drain
        self.window_start = 0.0
        self.lat: list[float] = []
        self.completed = 0  # inside the window
        self.verified = 0  # fully checked in warm-up
        self.errors = 0
        self.first_errors: list[str] = []
        self.sent = 0
        self.timeline: list[tuple[float, float]] | None = None
        #: open loop: how late each batch of sends was against its oldest scheduled time
        self.send_lag: list[float] = []

    def error(self, msg: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(msg)


class TarsConn(asyncio.Protocol):
    """One connection. Closed loop: ``refill`` keeps ``inflight`` outstanding; open loop: the
    driver calls ``send_at``."""

    def __init__(self, builder: RequestBuilder, stats: Stats, proto: str, closed: bool) -> None:
        self.builder = builder
        self.stats = stats
        self.raw = proto == "raw"
        self.rid_tag = 4 if self.raw else 3
        self.closed_loop = closed
        self.buf = bytearray()
        self.pending: dict[int, float] = {}
        self.next_rid = 1
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_event_loop().create_future()
        self.stopping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if not self.stopping:
            self.stats.error(f"connection lost: {exc}")

    def _frames(self, n: int, t: float) -> bytes:
        out = []
        rid = self.next_rid
        for _ in range(n):
            out.append(self.builder.frame(rid))
            self.pending[rid] = t
            rid += 1
        self.next_rid = rid
        self.stats.sent += n
        return b"".join(out)

    def send(self, n: int) -> None:
        """Closed loop: send n new requests in one write."""
        assert self.transport is not None
        t = perf()
        self.transport.write(self._frames(n, t))

    def send_at(self, times: list[float]) -> None:
        """Open loop: one request per scheduled time, in one write."""
        assert self.transport is not None
        out = []
        rid = self.next_rid
        pending = self.pending
        frame = self.builder.frame
        for t in times:
            out.append(frame(rid))
            pending[rid] = t
            rid += 1
        self.next_rid = rid
        self.stats.sent += len(times)
        self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        t = perf()
        buf = self.buf
        buf += data
        stats = self.stats
        pending = self.pending
        phase = stats.phase
        pos = 0
        end = len(buf)
        done = 0
        while end - pos >= 4:
            n = _u32.unpack_from(buf, pos)[0]
            if end - pos < n:
                break
            body = bytes(buf[pos + 4 : pos + n])
            pos += n
            done += 1
            ints = head_ints(body, 5 if not self.raw else 4)
            rid = ints.get(self.rid_tag, 0)
            sent = pending.pop(rid, None)
            if sent is None:
                stats.error(f"response to unknown request id {rid}")
                continue
            if phase == "warmup":
                if self.raw:
                    if body != self.builder.frame(rid)[4:]:
                        stats.error(f"echo of request {rid} differs from the request")
                        continue
                else:
                    err = check_response(body, rid, self.builder.payload)
                    if err is not None:
                        stats.error(err)
                        continue
                stats.verified += 1
            elif not self.raw and ints.get(5, 0) != 0:
                stats.error(f"iRet {ints.get(5)}")
            if phase == "window" and t >= stats.window_start:
                stats.lat.append(t - sent)
                stats.completed += 1
                if stats.timeline is not None:
                    stats.timeline.append((t, t - sent))
        if pos:
            del buf[:pos]
        if done and self.closed_loop and not self.stopping:
            self.send(done)


async def run_tars(args: argparse.Namespace, stats: Stats) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    payload = b"x" * args.payload
    builder = RequestBuilder(args.servant, payload)
    crosscheck = builder.check_against_tarsio() if args.proto == "tars" else "n/a"
    closed = args.rate <= 0
    conns: list[TarsConn] = []
    for _ in range(args.conns):
        _, c = await loop.create_connection(
            lambda: TarsConn(builder, stats, args.proto, closed), args.host, args.port
        )
        conns.append(c)
    t0 = perf()
    if closed:
        for c in conns:
            c.send(args.inflight)
        await asyncio.sleep(args.warmup)
        marks = _open_window(stats, args.server_pid)
        await asyncio.sleep(args.duration)
        end = _close_window(stats, args.server_pid, marks)
        overloaded = False
    else:
        overloaded, end, marks = await _open_loop(args, stats, conns, t0)
    for c in conns:
        c.stopping = True
    # Let outstanding calls finish: each must still be answered.
    deadline = perf() + 3.0
    while any(c.pending for c in conns) and perf() < deadline:
        await asyncio.sleep(0.01)
    left = sum(len(c.pending) for c in conns)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return {"crosscheck": crosscheck, "pending_left": left, "overloaded": overloaded, **end}


async def _open_loop(
    args: argparse.Namespace, stats: Stats, conns: list[TarsConn], t0: float
) -> tuple[bool, dict[str, Any], dict[str, Any]]:
    rate = args.rate
    n = len(conns)
    i = 0
    warm_end = t0 + args.warmup
    stop = warm_end + args.duration
    marks: dict[str, Any] = {}
    batches: list[list[float]] = [[] for _ in conns]
    overloaded = False
    while True:
        now = perf()
        if stats.phase == "warmup" and now >= warm_end:
            marks = _open_window(stats, args.server_pid)
        if now >= stop:
            break
        due = int((now - t0) * rate)
        while i < due:
            batches[i % n].append(t0 + i / rate)
            i += 1
        sent_any = False
        for c, b in zip(conns, batches, strict=True):
            if b:
                if not sent_any and stats.phase == "window":
                    stats.send_lag.append(now - b[0])
                    sent_any = True
                c.send_at(b)
                b.clear()
        if sum(len(c.pending) for c in conns) > args.max_pending:
            overloaded = True
            break
        await asyncio.sleep(0)
    if not marks:
        marks = _open_window(stats, args.server_pid)
    end = _close_window(stats, args.server_pid, marks)
    return overloaded, end, marks


def _open_window(stats: Stats, pid: int | None) -> dict[str, Any]:
    stats.window_start = perf()
    stats.phase = "window"
    return {
        "t": stats.window_start,
        "cpu": self_cpu(),
        "server_cpu": cpu_of(pid),
        "cpus": cpus_busy(),
        "server_wait": runq_wait(pid),
        "wait": runq_wait(os.getpid()),
    }


def _close_window(stats: Stats, pid: int | None, marks: dict[str, Any]) -> dict[str, Any]:
    t = perf()
    server_cpu = cpu_of(pid)
    cpu = self_cpu()
    cpus = cpus_busy()
    server_wait = runq_wait(pid)
    wait = runq_wait(os.getpid())
    stats.phase = "drain"
    elapsed = t - marks["t"]
    return {
        "server_runq_wait": (server_wait - marks["server_wait"]) / elapsed
        if server_wait is not None and marks["server_wait"] is not None
        else None,
        "loadgen_runq_wait": (wait - marks["wait"]) / elapsed
        if wait is not None and marks["wait"] is not None
        else None,
        "cpus_busy": [(b - a) / elapsed for a, b in zip(marks["cpus"], cpus, strict=True)],
        "window": elapsed,
        "loadgen_cpu": (cpu - marks["cpu"]) / elapsed,
        "server_cpu": (server_cpu - marks["server_cpu"]) / elapsed
        if server_cpu is not None and marks["server_cpu"] is not None
        else None,
    }


# ---------------------------------------------------------------------------------------------
# gRPC


async def run_grpc(args: argparse.Namespace, stats: Stats) -> dict[str, Any]:
    import grpc

    payload = b"x" * args.payload
    channels = [
        grpc.aio.insecure_channel(
            f"{args.host}:{args.port}",
            options=[("grpc.use_local_subchannel_pool", 1), ("bench.channel", i)],
        )
        for i in range(args.conns)
    ]
    calls = [ch.unary_unary("/bench.Echo/Echo") for ch in channels]
    for ch in channels:
        await asyncio.wait_for(ch.channel_ready(), 10)
    stop = False

    def record(t_start: float, t_end: float, reply: bytes) -> None:
        if reply != payload:
            stats.error(f"echoed {reply[:40]!r}")
            return
        if stats.phase == "warmup":
            stats.verified += 1
        elif stats.phase == "window" and t_end >= stats.window_start:
            stats.lat.append(t_end - t_start)
            stats.completed += 1

    async def worker(call: Any) -> None:
        while not stop:
            t = perf()
            stats.sent += 1
            try:
                reply = await call(payload)
            except grpc.RpcError as e:
                stats.error(f"grpc error {e.code()}")
                continue
            record(t, perf(), reply)

    async def one(call: Any, t_sched: float) -> None:
        try:
            reply = await call(payload)
        except grpc.RpcError as e:
            stats.error(f"grpc error {e.code()}")
            return
        record(t_sched, perf(), reply)

    overloaded = False
    tasks: set[asyncio.Task[None]] = set()
    if args.rate <= 0:
        workers = [asyncio.ensure_future(worker(c)) for c in calls for _ in range(args.inflight)]
        await asyncio.sleep(args.warmup)
        marks = _open_window(stats, args.server_pid)
        await asyncio.sleep(args.duration)
        end = _close_window(stats, args.server_pid, marks)
        stop = True
        await asyncio.wait(workers, timeout=5)
    else:
        t0 = perf()
        i = 0
        warm_end = t0 + args.warmup
        stop_t = warm_end + args.duration
        marks = {}
        while True:
            now = perf()
            if stats.phase == "warmup" and now >= warm_end:
                marks = _open_window(stats, args.server_pid)
            if now >= stop_t:
                break
            due = int((now - t0) * args.rate)
            while i < due:
                task = asyncio.ensure_future(one(calls[i % len(calls)], t0 + i / args.rate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                stats.sent += 1
                i += 1
            if len(tasks) > args.max_pending:
                overloaded = True
                break
            # gRPC rates are low: sleep until the next call is due (busy polling would starve
            # the client's own completion queue).
            await asyncio.sleep(max(0.0, t0 + i / args.rate - perf()))
        if not marks:
            marks = _open_window(stats, args.server_pid)
        end = _close_window(stats, args.server_pid, marks)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
    left = len(tasks)
    for ch in channels:
        await ch.close()
    return {"crosscheck": "n/a", "pending_left": left, "overloaded": overloaded, **end}


# ---------------------------------------------------------------------------------------------


def percentile(sorted_us: list[float], q: float) -> float | None:
    if not sorted_us:
        return None
    k = min(len(sorted_us) - 1, max(0, round(q / 100 * (len(sorted_us) - 1))))
    return sorted_us[k]


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    stats = Stats()
    if args.timeline:
        stats.timeline = []
    if args.proto == "grpc":
        res = await run_grpc(args, stats)
    else:
        res = await run_tars(args, stats)
    if stats.timeline:
        t0 = stats.window_start
        buckets: dict[int, list[float]] = {}
        for t, lat_s in stats.timeline:
            buckets.setdefault(int((t - t0) * 10), []).append(lat_s * 1e6)
        for k in sorted(buckets):
            b = sorted(buckets[k])
            at = f"{t0 + k / 10:.3f} {k / 10:5.1f}s"
            p50, top = b[len(b) // 2], b[-1]
            print(f"{at} n={len(b):6d} p50={p50:9.0f} max={top:9.0f}", file=sys.stderr)
    lat = sorted(x * 1e6 for x in stats.lat)
    lag = sorted(x * 1e6 for x in stats.send_lag)
    window = res.pop("window")
    return {
        "proto": args.proto,
        "conns": args.conns,
        "inflight": args.inflight,
        "rate": args.rate,
        "payload": args.payload,
        "calls_per_s": stats.completed / window if window > 0 else 0.0,
        "completed": stats.completed,
        "window_s": window,
        "p50_us": percentile(lat, 50),
        "p99_us": percentile(lat, 99),
        "p999_us": percentile(lat, 99.9),
        "max_us": lat[-1] if lat else None,
        "send_lag_p99_us": percentile(lag, 99),
        "send_lag_max_us": lag[-1] if lag else None,
        "verified": stats.verified,
        "errors": stats.errors,
        "first_errors": stats.first_errors,
        "loop": args.loop_used,
        **res,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--proto", choices=("tars", "raw", "grpc"), default="tars")
    ap.add_argument("--servant", default="Bench.RpcServer.EchoObj")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--inflight", type=int, default=1, help="per connection (closed loop)")
    ap.add_argument("--rate", type=float, default=0.0, help="calls/s in total: open loop")
    ap.add_argument("--max-pending", type=int, default=20000, help="open loop: give up above")
    ap.add_argument("--payload", type=int, default=10, help="string length in bytes")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--timeline", action="store_true", help="print per-100 ms latency to stderr")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = ap.parse_args(argv)
    # The generator's own pauses must not count as server latency: its objects are acyclic
    # (frames, floats, dicts of floats), so reference counting frees them without the GC.
    gc.disable()
    runner: Any = asyncio.run
    args.loop_used = "asyncio"
    if args.loop == "uvloop":
        try:
            import uvloop

            runner = uvloop.run
            args.loop_used = "uvloop"
        except ImportError:
            pass
    result = runner(amain(args))
    print(json.dumps(result))
    return 0 if result["errors"] == 0 and result["pending_left"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
