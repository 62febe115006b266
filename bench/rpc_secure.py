"""What auth (``-e 1``) and TLS (``ssl``) cost per call on an established connection.

One Hello server per mode runs in a process of its own (``plain``: tcp; ``auth``: tcp -e 1;
``tls``: ssl; ``tls+auth``: ssl -e 1, with certificates made for the run); the client is a
tarsus Communicator keeping ``--inflight`` calls in flight on its one connection. The
connection (and its handshake) is made during warm-up; the window counts calls answered.
Modes run interleaved for ``--rounds`` rounds on the same (noisy, shared) machine; each is
reported as calls/s and as CPU time per call of the server process and of the client (read
from /proc and ``process_time`` at the window's edges), medians and ratios to plain's. On a
loaded machine the CPU per call is the steadier measure: calls/s swings with what else runs.

``--loops asyncio,uvloop`` (the default when uvloop is installed) runs every mode on both event
loops, servers and client alike, interleaved in the same rounds; ratios are to plain's on the
same loop. uvloop (``tarsus[speed]``) has its own TLS layer, asyncio's encrypts through a
memory BIO in Python.

    .venv/bin/python bench/rpc_secure.py --rounds 5 --duration 3

``--baseline DIR`` (another checkout with its own ``.venv``, e.g. the main branch's worktree)
runs every loop and mode of that checkout too, its servers and clients on its code, interleaved
with this one's in the same rounds (reported as ``base:LOOP/MODE``, ratios to its own plain):
before and after a change, side by side on the same machine load. Each sample's client then
runs in a process of its own, for both checkouts alike.

The issue's bar: auth and TLS cost ≤ 5 % of the calls/s without them (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OBJ = "Test.HelloServer.HelloObj"
MODES = {
    "plain": "tcp -h 127.0.0.1 -p {port} -t 60000",
    "auth": "tcp -h 127.0.0.1 -p {port} -t 60000 -e 1",
    "tls": "ssl -h 127.0.0.1 -p {port} -t 60000",
    "tls+auth": "ssl -h 127.0.0.1 -p {port} -t 60000 -e 1",
}
ACCESS_KEY, SECRET_KEY = "bench", "bench-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _hello() -> Any:
    import tarsus.idl

    return tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test


def _security(pki: Path, server: bool) -> Any:
    from tarsus.rpc.auth import Credentials
    from tarsus.rpc.security import ServantSecurity
    from tarsus.rpc.tls import TlsConfig

    me = "server" if server else ""
    cert, key = (str(pki / f"{me}.crt"), str(pki / f"{me}.key")) if me else ("", "")
    tls = TlsConfig(str(pki / "ca.crt"), cert, key)
    return ServantSecurity(Credentials(ACCESS_KEY, SECRET_KEY), tls)


def make_pki(d: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    issued: dict[str, Any] = {}
    for cn in ("ca", "server"):
        key = ca_key if cn == "ca" else ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name("ca"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=cn == "ca", path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        issued[cn] = cert
        (d / f"{cn}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (d / f"{cn}.key").write_bytes(pem)


async def serve(mode: str, pki: Path) -> None:
    from tarsus.rpc.application import Application

    Test = _hello()

    class Hello(Test.HelloServant):  # type: ignore[misc,name-defined]
        async def sayHello(self, name: str) -> tuple[int, str]:
            return 0, name

    app = Application()
    adapter = app.add_servant(
        Hello(), OBJ, MODES[mode].format(port=0), security=_security(pki, True), queue_cap=10**6
    )
    await app.start()
    print(adapter.port, flush=True)
    await asyncio.Event().wait()


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(name: str, coro: Any) -> Any:
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(coro)


def _cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process *pid* has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def measure(
    port: int, pid: int, mode: str, pki: Path, args: argparse.Namespace
) -> tuple[float, float, float]:
    """calls/s, and CPU µs per call of the server and of the client, over the window."""
    from tarsus.rpc.communicator import Communicator

    Test = _hello()
    target = f"{OBJ}@{MODES[mode].format(port=port)}"
    async with Communicator(cache_dir=None, security={OBJ: _security(pki, False)}) as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, target)
        count = 0
        stop = 0.0
        window = [0.0, 0.0]

        async def worker() -> None:
            nonlocal count
            while True:
                now = time.perf_counter()
                if now >= stop:
                    return
                await hello.sayHello("x" * args.payload)
                if window[0] <= time.perf_counter() < stop:
                    count += 1

        async def edge() -> tuple[float, float]:
            await asyncio.sleep(window[0] - time.perf_counter())
            return _cpu(pid), time.process_time()

        start = time.perf_counter()
        window[0] = start + args.warmup
        stop = window[0] + args.duration
        marks = asyncio.ensure_future(edge())
        await asyncio.gather(*(worker() for _ in range(args.inflight)))
        server0, client0 = await marks
        server1, client1 = _cpu(pid), time.process_time()
        n = max(count, 1)
        return count / args.duration, (server1 - server0) / n * 1e6, (client1 - client0) / n * 1e6


#: the client of one sample of ``--baseline`` runs: run with a checkout's own interpreter, on
#: its own bench and code (argv: bench dir, port, pid, mode, loop, pki, warmup, duration,
#: inflight, payload)
SAMPLE = """
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import rpc_secure as b
port, pid, mode, loop, pki = sys.argv[2:7]
warmup, duration, inflight, payload = map(float, sys.argv[7:11])
args = argparse.Namespace(warmup=warmup, duration=duration, inflight=int(inflight),
                          payload=int(payload))
print(json.dumps(b.run(loop, b.measure(int(port), int(pid), mode, Path(pki), args))))
"""


def sample_in(
    checkout: Path, port: int, pid: int, loop: str, mode: str, pki: Path, args: argparse.Namespace
) -> tuple[float, float, float]:
    """One sample with its client in a process of *checkout*'s own."""
    argv = [str(checkout / ".venv" / "bin" / "python"), "-c", SAMPLE, str(checkout / "bench")]
    argv += [str(port), str(pid), mode, loop, str(pki)]
    argv += [str(args.warmup), str(args.duration), str(args.inflight), str(args.payload)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rate, server, client = json.loads(out)
    return rate, server, client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    try:
        import uvloop  # noqa: F401

        default_loops = "asyncio,uvloop"
    except ImportError:
        default_loops = "asyncio"
    parser.add_argument(
        "--loops", default=default_loops, help=f"event loops to compare (default {default_loops})"
    )
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--payload", type=int, default=64, help="bytes of the name sent")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"modes to run (default {','.join(MODES)})"
    )
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (with .venv) to run side by side"
    )
    args = parser.parse_args()
    if args.serve:
        run(args.loop, serve(args.serve, args.pki))
        return 0
    loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    checkouts = {"": ROOT}
    if args.baseline is not None:
        checkouts["base:"] = args.baseline.resolve()
    modes = [x.strip() for x in args.modes.split(",") if x.strip()]
    if "plain" not in modes or not set(modes) <= set(MODES):
        parser.error(f"--modes: plain and any of {', '.join(MODES)}")
    runs = [(side + loop, mode) for side in checkouts for loop in loops for mode in modes]
    with tempfile.TemporaryDirectory(prefix="tarsus-bench-secure-") as tmp:
        pki = Path(tmp)
        make_pki(pki)
        servers: dict[tuple[str, str], tuple[subprocess.Popen[str], int]] = {}
        try:
            for loop, mode in runs:
                side, _, loop_name = loop.rpartition(":")
                checkout = checkouts[side + ":" if side else ""]
                python = sys.executable if checkout == ROOT else checkout / ".venv/bin/python"
                argv = ["--serve", mode, "--loop", loop_name, "--pki", str(pki)]
                proc = subprocess.Popen(
                    [str(python), str(checkout / "bench" / "rpc_secure.py"), *argv],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert proc.stdout is not None
                servers[loop, mode] = (proc, int(proc.stdout.readline()))
            results: dict[tuple[str, str], list[tuple[float, float, float]]] = {
                key: [] for key in runs
            }
            for round_ in range(args.rounds + 1):  # the first round warms the servers up
                for (loop, mode), (proc, port) in servers.items():
                    side, _, loop_name = loop.rpartition(":")
                    if args.baseline is None:
                        sample = run(loop, measure(port, proc.pid, mode, pki, args))
                    else:
                        checkout = checkouts[side + ":" if side else ""]
                        sample = sample_in(checkout, port, proc.pid, loop_name, mode, pki, args)
                    if round_:
                        results[loop, mode].append(sample)
        finally:
            for proc, _port in servers.values():
                proc.terminate()
                proc.wait()

    def med(key: tuple[str, str], i: int) -> float:
        return statistics.median(x[i] for x in results[key])

    report = {
        f"{loop}/{mode}": {
            "calls_per_s_median": round(med((loop, mode), 0)),
            "calls_per_s": [round(x[0]) for x in v],
            "rate_vs_plain": round(med((loop, mode), 0) / med((loop, "plain"), 0), 3),
            "server_cpu_us_per_call": round(med((loop, mode), 1), 1),
            "server_cpu_vs_plain": round(med((loop, mode), 1) / med((loop, "plain"), 1), 3),
            "client_cpu_us_per_call": round(med((loop, mode), 2), 1),
            "client_cpu_vs_plain": round(med((loop, mode), 2) / med((loop, "plain"), 2), 3),
        }
        for (loop, mode), v in results.items()
    }
    print(
        json.dumps({"inflight": args.inflight, "payload": args.payload, "modes": report}, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
