"""The load generators of bench/registry.py: simulated tarsnodes and lookup clients.

One JSON object per line on stdout (``{"event": ...}``); the bench reads them to know when to
sample CPU times.

``keepalive``: ``--nodes`` simulated nodes (the names of bench/registry_cluster.py), each
calling ``RegistryObj.keepAlive(nodeName, LoadInfo)`` every ``--period`` seconds, spread evenly
(nodes x 1/period calls per second), through our client (``Communicator`` +
``RegistryProxy``) over ``--conns`` connections (one communicator each; node *n* uses
connection *n* mod conns). Open loop: each call leaves at its scheduled time whatever the
registry does. ``LoadInfo.avg5`` carries the call's round number, so the bench can check that
the *last* heartbeat of every node is the one in the database. stdin: ``mark NAME`` starts a
new latency bucket, ``stop`` ends the run and prints every bucket.

``lookup``: ``findObjectByIdInSameGroup`` of random servants of the cluster, after
``--warmup`` seconds, for ``--duration`` seconds, from 127.0.0.1 (IDC group "a" of the seed):

- ``--rate R``: R calls per second in total over ``--conns`` connections, through our client
  (``QueryFProxy``), open loop; every answer is checked (return code 0, at least one endpoint,
  every endpoint a host and port of that servant).
- ``--max``: ``--conns`` x ``--inflight`` calls in flight (closed loop) of pre-encoded Tars
  request frames, so the client costs little next to the registry: throughput. Answers are
  decoded and checked in full during the warm-up, and for request id and iRet in the window.

Latency is from the call (or the write) to its answer, in this process (with ``--fifo``, run
at real-time priority from the window's start). The raw frames at
``--rate`` are also timed to the moment the kernel received each answer (``SO_TIMESTAMPNS``
on the connection, read with ``recvmsg``): that figure leaves out how late this process
itself ran to read the answer (on a 2-core machine it shares its CPU with the other load
generators), so it is the registry's and the network's part of the latency alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import time
from typing import Any

from registry_cluster import Cluster
from rpc_loadgen import dec_fields, enc_bytes, enc_empty_map, enc_int, enc_str, head_ints

from tarsus.protocol.gen import NodeDescriptor, QueryF, Registry
from tarsus.rpc.communicator import Communicator

perf = time.perf_counter
_u32 = struct.Struct(">I")
#: Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS), which Python's socket module does not name: the
#: kernel's receive time of the data a recvmsg reads, as a struct timespec (CLOCK_REALTIME)
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")


def real_time(priority: int) -> None:
    """From here on, this (single-threaded) process runs at real-time priority ``priority``
    (``SCHED_FIFO``; 0: unchanged): it reads each answer when it arrives, not when the other
    processes on its CPU yield. Raised at the window's start, not before: at that priority its
    start-up would keep its CPU's other processes (``mariadbd``, a registry's database thread
    holding the GIL) from running for as long as it lasts."""
    if priority:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(values)

    def at(q: float) -> float:
        return 1000 * s[min(len(s) - 1, int(q * len(s)))]

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": 1000 * s[-1]}


class Bucket:
    """Calls of one phase: latencies, how late they left, errors."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = perf()
        self.ended: float | None = None
        self.lat: list[float] = []
        #: to the kernel's receive time of the answer (raw frames at a rate)
        self.kernel_lat: list[float] = []
        self.lag: list[float] = []
        self.errors = 0
        self.first_errors: list[str] = []

    def error(self, msg: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(msg)

    def summary(self) -> dict[str, Any]:
        end = self.ended or perf()
        lag = percentiles(self.lag)
        return {
            "calls": len(self.lat),
            "seconds": end - self.started,
            "calls_per_s": len(self.lat) / max(end - self.started, 1e-9),
            **percentiles(self.lat),
            "send_lag_p99_ms": lag["p99_ms"],
            **(
                {f"kernel_{k}": v for k, v in percentiles(self.kernel_lat).items()}
                if self.kernel_lat
                else {}
            ),
            "errors": self.errors,
            "first_errors": self.first_errors,
        }


class Schedule:
    """Call i leaves at ``t0 + i / rate`` (loop time); :meth:`due` yields the calls due now."""

    def __init__(self, rate: float) -> None:
        self.dt = 1.0 / rate
        self.t0 = asyncio.get_running_loop().time()
        self.i = 0

    async def next_batch(self) -> list[tuple[int, float]]:
        loop = asyncio.get_running_loop()
        t = self.t0 + self.i * self.dt
        delay = t - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = loop.time()
        out = []
        while self.t0 + self.i * self.dt <= now:
            out.append((self.i, self.t0 + self.i * self.dt))
            self.i += 1
        return out


# ---------------------------------------------------------------------------------------------
# keepAlive


async def run_keepalive(args: argparse.Namespace, cluster: Cluster) -> None:
    loop = asyncio.get_running_loop()
    target = f"tars.tarsregistry.RegistryObj@tcp -h 127.0.0.1 -p {args.port} -t 60000"
    comms = [Communicator(cache_dir=None) for _ in range(args.conns)]
    proxies = [c.string_to_proxy(Registry.RegistryProxy, target) for c in comms]
    await asyncio.gather(*(p.getClientIp() for p in proxies))  # every connection open
    names = [cluster.node_name(n) for n in range(cluster.nodes)]
    last_round = [-1] * cluster.nodes
    buckets = [Bucket("start")]
    tasks: set[asyncio.Task[None]] = set()
    stopping = asyncio.Event()
    sent = 0

    async def beat(n: int, rnd: int, due: float) -> None:
        bucket = buckets[-1]
        t = perf()
        bucket.lag.append(max(0.0, loop.time() - due))
        try:
            ret = await proxies[n % args.conns].keepAlive(
                names[n],
                NodeDescriptor.LoadInfo(avg1=0.5, avg5=float(rnd), avg15=float(n % 100) / 100),
            )
        except Exception as e:
            bucket.error(f"{type(e).__name__}: {e}")
            return
        bucket.lat.append(perf() - t)
        if ret != 0:
            bucket.error(f"keepAlive returned {ret}")
        elif rnd > last_round[n]:
            last_round[n] = rnd

    async def sender() -> None:
        nonlocal sent
        schedule = Schedule(cluster.nodes / args.period)
        while not stopping.is_set():
            for i, due in await schedule.next_batch():
                task = loop.create_task(beat(i % cluster.nodes, i // cluster.nodes, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1

    send_task = loop.create_task(sender())
    emit("ready", conns=args.conns, rate=cluster.nodes / args.period)
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "stop":
            break
        if words[0] == "mark":
            buckets[-1].ended = perf()
            buckets.append(Bucket(words[1]))
            emit("marked", name=words[1])
    stopping.set()
    await send_task
    if tasks:
        await asyncio.wait(tasks, timeout=10.0)
    buckets[-1].ended = perf()
    for c in comms:
        await c.close()
    emit(
        "done",
        sent=sent,
        unanswered=sum(1 for t in tasks if not t.done()),
        buckets={b.name: b.summary() for b in buckets},
        last_round=last_round,
    )


# ---------------------------------------------------------------------------------------------
# lookups through our client


def check_answer(cluster: Cluster, j: int, answer: Any) -> str | None:
    ret, active, inactive = answer
    if ret != 0:
        return f"{cluster.servant(j)}: return code {ret}"
    if not active and not inactive:
        return f"{cluster.servant(j)}: no endpoint"
    hosts, port = cluster.hosts_of(j), cluster.port_of(j)
    for ep in (*active, *inactive):
        if ep.host not in hosts or ep.port != port:
            return f"{cluster.servant(j)}: endpoint {ep.host}:{ep.port} is not one of its own"
    return None


async def run_lookup_rate(args: argparse.Namespace, cluster: Cluster) -> None:
    loop = asyncio.get_running_loop()
    target = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {args.port} -t 60000"
    comms = [Communicator(cache_dir=None) for _ in range(args.conns)]
    proxies = [c.string_to_proxy(QueryF.QueryFProxy, target) for c in comms]
    await asyncio.gather(*(p.findObjectById("tars.tarsregistry.QueryObj") for p in proxies))
    rng = random.Random(7)
    warm = Bucket("warmup")
    window = Bucket("window")
    tasks: set[asyncio.Task[None]] = set()

    async def lookup(i: int, j: int, due: float, bucket: Bucket) -> None:
        t = perf()
        bucket.lag.append(max(0.0, loop.time() - due))
        try:
            answer = await proxies[i % args.conns].findObjectByIdInSameGroup(cluster.servant(j))
        except Exception as e:
            bucket.error(f"{type(e).__name__}: {e}")
            return
        bucket.lat.append(perf() - t)
        err = check_answer(cluster, j, answer)
        if err is not None:
            bucket.error(err)

    schedule = Schedule(args.rate)
    start = loop.time()
    bucket = warm
    while True:
        now = loop.time()
        if bucket is warm and now >= start + args.warmup:
            warm.ended = perf()
            window.started = perf()
            bucket = window
            real_time(args.fifo)
            emit("window")
        if now >= start + args.warmup + args.duration:
            break
        for i, due in await schedule.next_batch():
            task = loop.create_task(lookup(i, rng.randrange(cluster.servers), due, bucket))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    window.ended = perf()
    emit("window_end")
    if tasks:
        await asyncio.wait(tasks, timeout=10.0)
    for c in comms:
        await c.close()
    emit("done", warmup=warm.summary(), window=window.summary())


# ---------------------------------------------------------------------------------------------
# lookups at full speed: pre-encoded frames


class LookupFrames:
    """``findObjectByIdInSameGroup(servant)`` RequestPackets, one suffix per servant."""

    def __init__(self, cluster: Cluster) -> None:
        self.prefix = enc_int(1, 1) + enc_int(2, 0) + enc_int(3, 0)
        self.suffixes = [
            enc_str(5, b"tars.tarsregistry.QueryObj")
            + enc_str(6, b"findObjectByIdInSameGroup")
            + enc_bytes(7, enc_str(1, cluster.servant(j).encode()))
            + enc_int(8, 3000)
            + enc_empty_map(9)
            + enc_empty_map(10)
            for j in range(cluster.servers)
        ]

    def frame(self, rid: int, j: int) -> bytes:
        body = self.prefix + enc_int(4, rid) + self.suffixes[j]
        return _u32.pack(len(body) + 4) + body


def check_raw(cluster: Cluster, j: int, body: bytes) -> str | None:
    f = dec_fields(body)
    if f.get(5, 0) != 0:
        return f"iRet {f.get(5)}: {f.get(8, b'')!r}"
    out = dec_fields(f.get(6, b""))
    eps = [*out.get(2, []), *out.get(3, [])]
    if out.get(0, 0) != 0 or not eps:
        return f"{cluster.servant(j)}: return code {out.get(0, 0)}, {len(eps)} endpoints"
    hosts, port = cluster.hosts_of(j), cluster.port_of(j)
    for ep in eps:
        if ep.get(0, b"").decode() not in hosts or ep.get(1) != port:
            return f"{cluster.servant(j)}: endpoint {ep.get(0)!r}:{ep.get(1)} is not its own"
    return None


class RawConn(asyncio.Protocol):
    def __init__(self, cluster: Cluster, frames: LookupFrames, inflight: int, seed: int) -> None:
        self.cluster = cluster
        self.frames = frames
        self.inflight = inflight
        self.rng = random.Random(seed)
        self.buf = bytearray()
        self.pending: dict[int, tuple[float, int]] = {}
        self.next_rid = 1
        self.transport: asyncio.Transport | None = None
        self.bucket = Bucket("warmup")
        self.verify = True
        self.verified = 0
        self.stopping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.inflight:
            self.send(self.inflight)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stopping:
            self.bucket.error(f"connection lost: {exc}")

    def send(self, n: int) -> None:
        """Send ``n`` lookups of random servants in one write."""
        assert self.transport is not None
        calls = [(self.next_rid + i, self.rng.randrange(self.cluster.servers)) for i in range(n)]
        self.next_rid += n
        data = b"".join(self.frames.frame(rid, j) for rid, j in calls)
        t, t_ns = perf(), time.time_ns()  # the write's time: the frames are built
        for rid, j in calls:
            self.pending[rid] = (t, j, t_ns)
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.consume(data, perf(), None)

    def consume(self, data: bytes, t: float, kernel_ns: int | None) -> None:
        """The answers in ``data``, read at ``t`` (and received by the kernel at
        ``kernel_ns``, realtime, when known)."""
        buf = self.buf
        buf += data
        pos, end, done = 0, len(buf), 0
        bucket = self.bucket
        while end - pos >= 4:
            n = _u32.unpack_from(buf, pos)[0]
            if end - pos < n:
                break
            body = bytes(buf[pos + 4 : pos + n])
            pos += n
            done += 1
            ints = head_ints(body, 5)
            sent = self.pending.pop(ints.get(3, 0), None)
            if sent is None:
                bucket.error(f"answer to unknown request id {ints.get(3)}")
                continue
            if self.verify:
                err = check_raw(self.cluster, sent[1], body)
                if err is not None:
                    bucket.error(err)
                    continue
                self.verified += 1
            elif ints.get(5, 0) != 0:
                bucket.error(f"iRet {ints.get(5)}")
                continue
            bucket.lat.append(t - sent[0])
            if kernel_ns is not None:
                bucket.kernel_lat.append((kernel_ns - sent[2]) / 1e9)
        if pos:
            del buf[:pos]
        if done and self.inflight and not self.stopping:
            self.send(done)


class _StampedSocket:
    """A connection's socket read with ``recvmsg`` and ``SO_TIMESTAMPNS``, written with
    ``send``: what :class:`RawConn` needs of a transport, and the kernel's receive times."""

    def __init__(self, sock: socket.socket, conn: RawConn) -> None:
        self.sock = sock
        self.conn = conn
        self.ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(True)  # writes: a few small frames, never a full buffer
        asyncio.get_running_loop().add_reader(sock.fileno(), self.readable)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    def readable(self) -> None:
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(
                    65536, self.ancillary, socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return
            except OSError as e:
                self.conn.connection_lost(e)
                self.close()
                return
            if not data:
                self.conn.connection_lost(None)
                self.close()
                return
            stamp = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(value)
                    stamp = sec * 1_000_000_000 + nsec
            self.conn.consume(data, perf(), stamp)


async def _stamped_connection(port: int, conn: RawConn) -> RawConn:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    conn.connection_made(_StampedSocket(sock, conn))  # type: ignore[arg-type]
    return conn


async def run_lookup_raw(args: argparse.Namespace, cluster: Cluster) -> None:
    """Pre-encoded frames: closed loop (``--max``) or open loop at ``--rate``."""
    loop = asyncio.get_running_loop()
    frames = LookupFrames(cluster)
    inflight = args.inflight if args.max else 0
    conns: list[RawConn] = []
    for i in range(args.conns):
        if args.max:
            _, c = await loop.create_connection(
                lambda i=i: RawConn(cluster, frames, inflight, 100 + i), "127.0.0.1", args.port
            )
        else:  # at a rate: timed to the kernel's receive time too
            c = await _stamped_connection(args.port, RawConn(cluster, frames, 0, 100 + i))
        conns.append(c)
    window = Bucket("window")

    async def open_loop() -> None:
        schedule = Schedule(args.rate)
        while not conns[0].stopping:
            due = await schedule.next_batch()
            now = loop.time()
            counts = [0] * len(conns)
            for i, t in due:
                counts[i % len(conns)] += 1
                if conns[0].bucket is window:
                    window.lag.append(max(0.0, now - t))
            for c, n in zip(conns, counts, strict=True):
                if n:
                    c.send(n)

    sender = None if args.max else loop.create_task(open_loop())
    await asyncio.sleep(args.warmup)
    verified = sum(c.verified for c in conns)
    warm_errors = [e for c in conns for e in c.bucket.first_errors]
    warm_error_count = sum(c.bucket.errors for c in conns)
    window.started = perf()
    for c in conns:
        c.verify = False
        c.bucket = window
    real_time(args.fifo)
    emit("window")
    await asyncio.sleep(args.duration)
    window.ended = perf()
    for c in conns:
        c.stopping = True
    if sender is not None:
        await sender
    emit("window_end")
    deadline = perf() + 5.0
    while any(c.pending for c in conns) and perf() < deadline:
        await asyncio.sleep(0.01)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    # Answers that arrived after the window closed are not counted in calls_per_s.
    emit(
        "done",
        window=window.summary(),
        verified_in_warmup=verified,
        warmup_errors=warm_error_count,
        warmup_first_errors=warm_errors[:5],
        unanswered=sum(len(c.pending) for c in conns),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["keepalive", "lookup"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--servers-per-node", type=int, required=True)
    ap.add_argument("--replicas", type=int, default=10)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--period", type=float, default=10.0, help="keepAlive period per node")
    ap.add_argument("--rate", type=float, default=1000.0, help="lookups per second")
    ap.add_argument("--max", action="store_true", help="lookups: closed loop, full speed")
    ap.add_argument("--raw", action="store_true", help="lookups at --rate: pre-encoded frames")
    ap.add_argument("--inflight", type=int, default=32)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument(
        "--fifo",
        type=int,
        default=0,
        metavar="PRIORITY",
        help="lookups at --rate: run the window at this SCHED_FIFO priority (0: as started)",
    )
    ap.add_argument("--duration", type=float, default=10.0)
    args = ap.parse_args()
    cluster = Cluster(args.nodes, args.servers_per_node, args.replicas)
    if args.mode == "keepalive":
        run = run_keepalive(args, cluster)
    elif args.max or args.raw:
        run = run_lookup_raw(args, cluster)
    else:
        run = run_lookup_rate(args, cluster)
    asyncio.run(run)


if __name__ == "__main__":
    main()
