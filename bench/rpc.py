"""Echo RPC side by side: Tarsus vs grpc.aio vs @tars/rpc (Node) vs a bare asyncio echo.

Every server implements ``int echo(string s, out string r)`` (r = s), runs as one process
pinned to CPU 0, and is driven by the same load generator (bench/rpc_loadgen.py: a separate
process pinned to CPU 1, uvloop when installed, raw Tars frames; a grpc.aio client of the same
shape for the gRPC server), as anchors-measured.md did:

- ``tarsus``: ``Application`` + ``Adapter`` with an ``async def echo(s): return 0, s`` servant
  (bench/rpc_servers/tarsus_server.py), stdlib asyncio;
- ``tarsus+stats``: the same with ``tarsus.rpc.stats.StatReporter`` attached (skipped while
  that module does not exist);
- ``grpc.aio``: grpcio's asyncio server, a generic unary handler, bytes in and out;
- ``node``: @tars/rpc with a hand-written servant (bench/rpc_servers/node_server.js);
- ``bare``: a length-prefixed echo with no decoding, every complete frame of a read written back
  in one write: the ceiling of any Python server on this loop.

For each server and payload (a 10-byte and a 1 KiB string) it measures, in this order:
``depth-1`` (1 connection x 1 in flight: p50/p99 latency), ``4x32`` (4 connections x 32 in
flight: throughput at saturation), a higher closed-loop setting (default ``4x128``: the peak is
the better of the two) and ``half`` (open loop, rate-limited to 50% of that server's peak:
p99 latency at half load, from each call's scheduled send time). Every run verifies every
response during its warm-up (iRet 0, the echoed string) and checks request ids and iRet during
the window; a run with errors is reported as failed.

The machine is noisy (2 cores, shared): each pass restarts every server; passes alternate the
server order. Before each run the script waits (bounded) for CPUs 0 and 1 to be quiet; every
run records how much of the two CPUs went to work other than the server and the generator
("other CPU"), and a disturbed run is repeated (bounded). Cells are medians over the passes
that were not disturbed, or the least disturbed pass, marked †. Compare ratios from one run,
not absolute numbers across runs.

    .venv/bin/python bench/rpc.py                          # full matrix (about 6 minutes)
    .venv/bin/python bench/rpc.py --quick                  # under a minute, 10-byte payload only
    .venv/bin/python bench/rpc.py --write docs/benchmarks.md

Needs grpcio (and uvloop, used by the load generator when installed), ``taskset``, and Node
with tests/interop/node/node_modules (``npm ci`` there) for the Node row; a missing peer is
skipped with a note. Timings are for reading, never for asserting.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report import command_lines, replace_section

from tarsus.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SERVERS_DIR = BENCH / "rpc_servers"
LOADGEN = BENCH / "rpc_loadgen.py"
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"
BEGIN, END = "<!-- rpc:begin -->", "<!-- rpc:end -->"
SERVANT = "Bench.RpcServer.EchoObj"
SERVER_CPU, LOADGEN_CPU = "0", "1"
PY = sys.executable

#: Targets the lead reports against (calls/s at saturation, ratios of peak throughput).
MUST_CALLS, GOAL_CALLS = 25_000, 40_000
MUST_X_GRPC, GOAL_X_GRPC = 5.0, 10.0
MUST_D1_P99_US = 400.0
GOAL_X_BARE = 0.5
GOAL_STATS_COST = 0.10
#: issue 14: against @tars/rpc on the same machine, same run
MUST_X_NODE, GOAL_X_NODE = 1.0, 1.5
MUST_P99_X_NODE, GOAL_P99_X_NODE = 1.0, 0.8
MUST_GC_MS, GOAL_GC_MS = 5.0, 2.0
#: the loop each Tarsus row runs on (stated in docs/benchmarks.md)
LOOP_OF = {"tarsus": "asyncio", "tarsus+stats": "asyncio", "tarsus-uvloop": "uvloop"}
#: the saturation run that times GC pauses: this payload at the highest setting
GC_PAYLOAD = 10


@dataclass
class Server:
    name: str
    proto: str  # tars | raw | grpc
    argv: Callable[[int], list[str]]
    what: str
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None  # why it cannot run here


@dataclass
class Mode:
    name: str
    conns: int
    inflight: int = 1
    half: bool = False  # open loop at 50% of the peak measured so far

    @property
    def closed(self) -> bool:
        return not self.half


def parse_setting(s: str) -> Mode:
    c, m = s.lower().split("x")
    return Mode(f"{int(c)}x{int(m)}", int(c), int(m))


# ---------------------------------------------------------------------------------------------
# probes


def probe(code: str, env: dict[str, str] | None = None, pin: str | None = None) -> tuple[bool, str]:
    """Run ``code`` in a fresh interpreter (a crashing C extension cannot take us down)."""
    argv = [PY, "-c", code]
    proc = subprocess.run(
        pinned(pin, argv) if pin else argv,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        tail = out.splitlines()[-1] if out else f"exit code {proc.returncode}"
        return False, tail
    return True, out


def tarsus_codec_impl() -> tuple[bool, str]:
    ok, out = probe(
        "import tarsus.codec.api as a; "
        "print('C speedups' if a.SPEEDUPS else 'pure Python (C extension not built or disabled)')"
    )
    if not ok:
        return False, (
            f"`import tarsus.codec` fails: {out or 'killed silently'} (an ASan build of the C "
            "extension? run with LD_PRELOAD=$(gcc -print-file-name=libasan.so) "
            "ASAN_OPTIONS=detect_leaks=0, or rebuild it)"
        )
    return True, out


def server_specs() -> dict[str, Server]:
    ts = str(SERVERS_DIR / "tarsus_server.py")
    node = shutil.which("node")
    node_skip = None
    if node is None:
        node_skip = "node not found"
    elif not (NODE_MODULES / "@tars" / "rpc").is_dir():
        node_skip = f"{NODE_MODULES} missing (run `npm ci` in {NODE_MODULES.parent})"
    ok_grpc, _ = probe("import grpc")
    stats_ok, stats_msg = probe("import tarsus.rpc.stats")
    specs = [
        Server(
            "tarsus",
            "tars",
            lambda p: [PY, ts, "--port", str(p), "--loop", "asyncio"],
            "Application + Adapter, async def echo, GC tuned as Application.main does; "
            "loop: stdlib asyncio",
        ),
        Server(
            "tarsus+stats",
            "tars",
            lambda p: [PY, ts, "--port", str(p), "--loop", "asyncio", "--stats"],
            "the same with tarsus.rpc.stats.StatReporter attached; loop: stdlib asyncio",
            skip=None if stats_ok else f"tarsus/rpc/stats.py not importable yet ({stats_msg})",
        ),
        Server(
            "grpc.aio",
            "grpc",
            lambda p: [PY, str(SERVERS_DIR / "grpc_server.py"), "--port", str(p)],
            "grpcio asyncio server, generic unary handler, bytes in/out, stdlib asyncio",
            skip=None if ok_grpc else "grpcio not installed (.venv/bin/pip install grpcio)",
        ),
        Server(
            "node",
            "tars",
            lambda p: [node or "node", str(SERVERS_DIR / "node_server.js"), str(p), SERVANT],
            "@tars/rpc 2.0.15 server, hand-written servant",
            env={"NODE_PATH": str(NODE_MODULES)},
            skip=node_skip,
        ),
        Server(
            "bare",
            "raw",
            lambda p: [
                PY,
                str(SERVERS_DIR / "bare_server.py"),
                "--port",
                str(p),
                "--loop",
                "asyncio",
            ],
            "length-prefixed echo, no decoding, one write per read, stdlib asyncio",
        ),
        # Extras (not run unless named with --servers).
        Server(
            "tarsus-uvloop",
            "tars",
            lambda p: [PY, ts, "--port", str(p), "--loop", "uvloop"],
            "the same; loop: uvloop (what Application.main picks when it is installed)",
        ),
        Server(
            "bare-uvloop",
            "raw",
            lambda p: [
                PY,
                str(SERVERS_DIR / "bare_server.py"),
                "--port",
                str(p),
                "--loop",
                "uvloop",
            ],
            "bare echo on uvloop",
        ),
    ]
    return {s.name: s for s in specs}


DEFAULT_SERVERS = ("tarsus", "tarsus-uvloop", "grpc.aio", "node", "bare")


# ---------------------------------------------------------------------------------------------
# processes


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TARS_CONFIG", "TARS_MONITOR")}
    env.update(extra)
    return env


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


class Running:
    def __init__(self, spec: Server, log: list[str]) -> None:
        self.spec = spec
        self.port = free_port()
        argv = pinned(SERVER_CPU, spec.argv(self.port))
        log.append(" ".join(shlex.quote(a) for a in argv))
        self.proc = subprocess.Popen(
            argv,
            env=clean_env(spec.env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid  # taskset execs the server: same pid

    def wait_ready(self, timeout: float = 20.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                return f"exited with {self.proc.returncode}: {err.strip()[-500:]}"
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                time.sleep(0.3)  # the servers print and settle after binding
                return None
            time.sleep(0.1)
        return "did not listen within 20 s"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


def one_call(port: int, payload: int) -> bytes:
    """The raw response frame to one echo request with id 1 (for the byte-for-byte check)."""
    from rpc_loadgen import RequestBuilder

    frame = RequestBuilder(SERVANT, b"x" * payload).frame(1)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(frame)
        data = b""
        while len(data) < 4 or len(data) < int.from_bytes(data[:4], "big"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def cpu_busy(cpus: tuple[int, ...]) -> list[float]:
    tck = os.sysconf("SC_CLK_TCK")
    busy: dict[int, float] = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                n = int(line[3 : line.index(" ")])
                v = [int(x) for x in line.split()[1:]]
                busy[n] = (sum(v[:8]) - v[3] - v[4]) / tck
    return [busy.get(c, 0.0) for c in cpus]


class Quiet:
    """Wait (bounded, per run and in total) until CPUs 0 and 1 are mostly idle."""

    def __init__(self, per_run: float, total: float, threshold: float = 0.15) -> None:
        self.per_run = per_run
        self.budget = total
        self.threshold = threshold
        self.waited = 0.0
        self.retry_spent = 0.0

    def wait(self) -> float:
        """Returns how busy the CPUs were at the last look (max of the two, 0..1)."""
        start = time.monotonic()
        while True:
            a = cpu_busy((0, 1))
            time.sleep(0.2)
            b = cpu_busy((0, 1))
            load = max((y - x) / 0.2 for x, y in zip(a, b, strict=True))
            spent = time.monotonic() - start
            out_of_time = spent >= self.per_run or self.waited + spent >= self.budget
            if load <= self.threshold or out_of_time:
                self.waited += spent
                return load


def run_load(
    spec: Server,
    srv: Running,
    payload: int,
    mode: Mode,
    rate: float,
    args: argparse.Namespace,
    log: list[str],
) -> dict[str, Any]:
    argv = [
        PY, str(LOADGEN), "--port", str(srv.port), "--proto", spec.proto,
        "--servant", SERVANT, "--conns", str(mode.conns), "--inflight", str(mode.inflight),
        "--payload", str(payload), "--warmup", str(args.warmup),
        "--duration", str(args.duration), "--server-pid", str(srv.pid),
    ]  # fmt: skip
    if rate > 0:
        argv += ["--rate", f"{rate:.0f}"]
    return run_pinned_load(argv, srv, args.warmup + args.duration + 15, {}, log)


def run_pinned_load(
    argv: list[str],
    srv: Running,
    timeout: float,
    env: dict[str, str],
    log: list[str],
    who: str = "load generator",
) -> dict[str, Any]:
    """Run a load generator or client (``argv``) pinned to the load CPU against ``srv``; its
    JSON line (bench/rpc_loadgen.py's shape), with ``failed`` when it failed, erred, left
    calls unanswered, verified nothing in its warm-up or outlived the server, and
    ``other_cpu``: what other work took of CPUs 0-1 meanwhile."""
    argv = pinned(LOADGEN_CPU, argv)
    log.append(" ".join(shlex.quote(a) for a in argv))
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=clean_env(env), check=False
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"{who} timed out"}
    try:
        res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"failed": f"{who} exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    if res["errors"] or res["pending_left"]:
        res["failed"] = f"{res['errors']} errors, {res['pending_left']} unanswered: " + "; ".join(
            res["first_errors"]
        )
    elif res["verified"] == 0:
        res["failed"] = "nothing verified during warm-up"
    if srv.proc.poll() is not None:
        res["failed"] = f"server died (exit {srv.proc.returncode})"
    busy = res.get("cpus_busy") or []
    if len(busy) >= 2 and res.get("server_cpu") is not None:
        res["other_cpu"] = max(0.0, busy[0] + busy[1] - res["server_cpu"] - res["loadgen_cpu"])
    return res


def measure(
    spec: Server,
    srv: Running,
    payload: int,
    mode: Mode,
    rate: float,
    args: argparse.Namespace,
    log: list[str],
    quiet: Quiet,
) -> tuple[dict[str, Any], float]:
    """One run; run again (bounded) while other work took CPU 0/1 during the window, and keep
    the attempt that was disturbed least."""
    best: dict[str, Any] | None = None
    before = 0.0
    for attempt in range(1 + args.retries):
        before = quiet.wait()
        t = time.monotonic()
        res = run_load(spec, srv, payload, mode, rate, args, log)
        res["attempts"] = attempt + 1
        if best is None or (res.get("other_cpu") or 0) < (best.get("other_cpu") or 0):
            best = res
        if "failed" in res or (res.get("other_cpu") or 0) <= args.max_other:
            break
        quiet.retry_spent += time.monotonic() - t
        if quiet.retry_spent >= args.retry_budget:
            break
        print(
            f"  (other work took {fmt_pct(res.get('other_cpu'))} of CPUs 0-1: again)",
            file=sys.stderr,
        )
    assert best is not None
    return best, before


# ---------------------------------------------------------------------------------------------
# the matrix


def run_matrix(args: argparse.Namespace) -> dict[str, Any]:
    specs = server_specs()
    names = args.servers.split(",") if args.servers else list(DEFAULT_SERVERS)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise SystemExit(f"unknown server(s) {unknown}; known: {', '.join(specs)}")
    codec_ok, codec = tarsus_codec_impl()
    skipped: dict[str, str] = {}
    chosen = []
    for n in names:
        s = specs[n]
        if s.name.startswith("tarsus") and not codec_ok:
            s.skip = codec
        if s.skip:
            skipped[n] = s.skip
            print(f"skip {n}: {s.skip}", file=sys.stderr)
        else:
            chosen.append(s)
    payloads = [int(p) for p in args.payloads.split(",")]
    modes = [Mode("depth-1", 1, 1)]
    modes += [parse_setting(x) for x in args.settings.split(",")]
    modes.append(Mode("half", 4, 1, half=True))
    log: list[str] = []
    runs: list[dict[str, Any]] = []
    quiet = Quiet(per_run=args.quiet_wait, total=args.quiet_budget)
    wire: dict[int, dict[str, bytes]] = {}
    t_start = time.monotonic()
    for p in range(args.passes):
        order = chosen if p % 2 == 0 else list(reversed(chosen))
        for spec in order:
            srv = Running(spec, log)
            err = srv.wait_ready()
            if err is not None:
                srv.stop()
                print(f"pass {p + 1}: {spec.name} did not start: {err}", file=sys.stderr)
                skipped[spec.name] = f"did not start: {err}"
                continue
            try:
                if spec.proto == "tars" and p == 0:
                    for payload in payloads:
                        wire.setdefault(payload, {})[spec.name] = one_call(srv.port, payload)
                for payload in payloads:
                    peak = 0.0
                    for mode in modes:
                        # the cost of stats shows at saturation: skip the latency modes
                        skip_stats = spec.name == "tarsus+stats" and not args.stats_all
                        if skip_stats and (mode.half or mode.name == "depth-1"):
                            continue
                        rate = 0.5 * peak if mode.half else 0.0
                        if mode.half and rate <= 0:
                            continue
                        res, before = measure(spec, srv, payload, mode, rate, args, log, quiet)
                        res.update(
                            server=spec.name,
                            payload=payload,
                            mode=mode.name,
                            pass_=p + 1,
                            target_rate=rate,
                            idle_check=before,
                        )
                        runs.append(res)
                        if mode.closed and mode.name != "depth-1" and "failed" not in res:
                            peak = max(peak, res["calls_per_s"])
                        print(describe(res), file=sys.stderr, flush=True)
                        if srv.proc.poll() is not None:
                            break
            finally:
                srv.stop()
    gc_runs = run_gc(chosen, args, log, quiet) if args.gc_seconds > 0 else {}
    stats_ab: list[dict[str, Any]] = []
    stats_hook = None
    if not args.no_stats and codec_ok:
        if specs["tarsus+stats"].skip:
            skipped["tarsus+stats"] = specs["tarsus+stats"].skip or ""
        else:
            stats_ab = run_stats_ab(specs, payloads, args, log, quiet)
            stats_hook = hook_cost_us()
    return {
        "runs": runs,
        "stats_ab": stats_ab,
        "stats_hook_us": stats_hook,
        "gc": gc_runs,
        "gc_seconds": args.gc_seconds,
        "skipped": skipped,
        "codec": codec,
        "servers": {s.name: s.what for s in chosen},
        "modes": [m.name for m in modes],
        "payloads": payloads,
        "commands": log,
        "elapsed": time.monotonic() - t_start,
        "quiet_waited": quiet.waited,
        "retry_spent": quiet.retry_spent,
        "wire": {pl: {k: v.hex() for k, v in d.items()} for pl, d in wire.items()},
    }


def run_gc(
    chosen: list[Server], args: argparse.Namespace, log: list[str], quiet: Quiet
) -> dict[str, dict[str, Any]]:
    """The worst GC pause of each Tarsus server during one long saturation run: the server
    times every collection (``--gc-report``, ``gc.callbacks``) from start-up to SIGTERM."""
    mode = parse_setting(args.settings.split(",")[-1])
    long_run = argparse.Namespace(**{**vars(args), "duration": args.gc_seconds, "retries": 0})
    out: dict[str, dict[str, Any]] = {}
    for spec in chosen:
        if spec.name not in ("tarsus", "tarsus-uvloop"):
            continue
        fd, report_path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        report = Path(report_path)
        timed = Server(
            spec.name,
            spec.proto,
            lambda p, argv=spec.argv, out=str(report): [*argv(p), "--gc-report", out],
            spec.what,
        )
        srv = Running(timed, log)
        try:
            err = srv.wait_ready()
            if err is not None:
                out[spec.name] = {"failed": f"did not start: {err}"}
                continue
            res, _ = measure(timed, srv, GC_PAYLOAD, mode, 0.0, long_run, log, quiet)
        finally:
            srv.stop()
        try:
            pauses = json.loads(report.read_text())
        except (OSError, json.JSONDecodeError) as e:
            res["failed"] = res.get("failed") or f"no GC report: {e}"
            pauses = {}
        finally:
            report.unlink(missing_ok=True)
        out[spec.name] = {**res, **pauses, "mode": mode.name}
        print(
            f"gc {spec.name}: {res.get('calls_per_s', 0):,.0f} calls/s "
            f"for {args.gc_seconds:.0f} s, "
            f"worst pause {pauses.get('worst_pause_ms', 'n/a')} ms, "
            f"collections {pauses.get('collections')}",
            file=sys.stderr,
            flush=True,
        )
    return out


def render_gc(data: dict[str, Any]) -> str:
    gc_runs = data.get("gc") or {}
    if not gc_runs:
        return ""
    rows = [
        "| server (loop) | calls/s during the run | collections gen 0 / 1 / 2 "
        "| worst pause gen 0 / 1 / 2, ms | worst pause | all pauses, ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, g in gc_runs.items():
        label = f"{name} ({LOOP_OF.get(name, '?')})"
        if "failed" in g and "worst_ms" not in g:
            rows.append(f"| {label} | FAILED: {g['failed']} |||||")
            continue
        flag = f" (run FAILED: {g['failed']})" if "failed" in g else ""
        rows.append(
            f"| {label} | {num(g.get('calls_per_s'))}{flag} "
            f"| {' / '.join(map(str, g['collections']))} "
            f"| {' / '.join(f'{w:.2f}' for w in g['worst_ms'])} "
            f"| **{g['worst_pause_ms']:.2f} ms** | {g['total_ms']:.0f} |"
        )
    return "\n".join(rows)


def run_stats_ab(
    specs: dict[str, Server],
    payloads: list[int],
    args: argparse.Namespace,
    log: list[str],
    quiet: Quiet,
) -> list[dict[str, Any]]:
    """What attaching ``StatReporter`` costs: both servers run at once (the idle one costs
    nothing), loaded in turn at the last (highest) setting, A B B A A B ..., so that the
    machine's slow drifts (other tenants, CPU speed) hit both alike."""
    mode = parse_setting(args.settings.split(",")[-1])
    servers = [Running(specs["tarsus"], log), Running(specs["tarsus+stats"], log)]
    out: list[dict[str, Any]] = []
    try:
        for srv in servers:
            err = srv.wait_ready()
            if err is not None:
                print(f"stats A/B: {srv.spec.name} did not start: {err}", file=sys.stderr)
                return []
        for payload in payloads:
            for i in range(args.stats_rounds):
                for srv in servers if i % 2 == 0 else servers[::-1]:
                    res, _ = measure(srv.spec, srv, payload, mode, 0.0, args, log, quiet)
                    res.update(server=srv.spec.name, payload=payload, mode=mode.name, pass_=i + 1,
                               target_rate=0.0)  # fmt: skip
                    out.append(res)
                    print("stats A/B " + describe(res), file=sys.stderr, flush=True)
    finally:
        for srv in servers:
            srv.stop()
    return out


HOOK_PROBE = """
import time, timeit, types
from tarsus.rpc.communicator import Communicator
from tarsus.codec import RequestPacket
from tarsus.rpc.current import Current
from tarsus.rpc.stats import StatReporter
stats = StatReporter(Communicator(), "tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 9", "B.S")
conn = types.SimpleNamespace(peer=("127.0.0.1", 40000))
req = RequestPacket(1, 0, 0, 1, "B.S.EchoObj", "echo", b"", 3000, {}, {})
cur = Current(conn, req, None)
hook = stats.observe_request
mono = time.monotonic
def call():  # what Adapter._reply adds when a hook is set
    hook(cur, 0, mono() - cur.received_at)
t = timeit.Timer(call)
n = t.autorange()[0]
print(min(t.repeat(5, n)) / n * 1e6)
"""


def hook_cost_us() -> float | None:
    """µs per call of the stats hook itself (``observe_request`` as ``_reply`` calls it)."""
    ok, out = probe(HOOK_PROBE, pin=SERVER_CPU)
    if not ok:
        print(f"stats hook probe failed: {out}", file=sys.stderr)
        return None
    return float(out.splitlines()[-1])


def stats_summary(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Per payload: medians of calls/s and server µs CPU/call with and without stats."""
    result: dict[int, dict[str, Any]] = {}
    for payload in data["payloads"]:
        row: dict[str, Any] = {}
        for name in ("tarsus", "tarsus+stats"):
            rs = [
                r
                for r in data.get("stats_ab", [])
                if r["server"] == name and r["payload"] == payload and "failed" not in r
            ]
            if not rs:
                break
            row[name] = {
                "calls_per_s": statistics.median(r["calls_per_s"] for r in rs),
                "us_per_call": statistics.median(
                    r["server_cpu"] * 1e6 / r["calls_per_s"] for r in rs if r.get("server_cpu")
                ),
                "n": len(rs),
            }
        else:
            # Runs were made in A/B pairs (AB, BA, AB, ...): compare within each pair.
            rs = [r for r in data["stats_ab"] if r["payload"] == payload and "failed" not in r]
            pairs = [(rs[i], rs[i + 1]) for i in range(0, len(rs) - 1, 2)]
            lost, added = [], []
            for x, y in pairs:
                a_r, b_r = (x, y) if x["server"] == "tarsus" else (y, x)
                if a_r["server"] == b_r["server"] or not a_r.get("server_cpu"):
                    continue
                lost.append(1 - b_r["calls_per_s"] / a_r["calls_per_s"])
                added.append(
                    (b_r["server_cpu"] / b_r["calls_per_s"])
                    / (a_r["server_cpu"] / a_r["calls_per_s"])
                    - 1
                )
            if not lost:
                continue
            row["calls_lost"] = statistics.median(lost)
            row["cpu_added"] = statistics.median(added)
            row["pairs"] = len(lost)
            result[payload] = row
    return result


def render_stats(data: dict[str, Any]) -> str:
    ss = stats_summary(data)
    if not ss:
        return ""
    lines = [
        "| payload | tarsus calls/s | +stats calls/s | calls/s lost | tarsus µs CPU/call "
        "| +stats µs CPU/call | CPU/call added | runs each |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    hook = data.get("stats_hook_us")
    for payload, row in ss.items():
        a, b = row["tarsus"], row["tarsus+stats"]
        lines.append(
            f"| {payload} B | {num(a['calls_per_s'])} | {num(b['calls_per_s'])} "
            f"| {100 * row['calls_lost']:+.1f}% | {a['us_per_call']:.1f} | {b['us_per_call']:.1f} "
            f"| {100 * row['cpu_added']:+.1f}% | {a['n']} |"
        )
    if hook is not None:
        a_us = [row["tarsus"]["us_per_call"] for row in ss.values()]
        share = ", ".join(f"{100 * hook / x:.1f}%" for x in a_us)
        lines += [
            "",
            f"The hook itself (`StatReporter.observe_request` plus the clock read `Adapter._reply` "
            f"adds when a hook is set), timed alone: **{hook:.2f} µs per call**, that is {share} "
            "of tarsus's server CPU per call above.",
        ]
    return "\n".join(lines)


def describe(r: dict[str, Any]) -> str:
    head = f"pass {r['pass_']} {r['server']:>13} {r['payload']:>5} B {r['mode']:>8}"
    if "failed" in r:
        return f"{head}: FAILED {r['failed']}"
    rate = f" (target {r['target_rate']:,.0f}/s)" if r["target_rate"] else ""
    sc = r.get("server_cpu")
    return (
        f"{head}: {num(r['calls_per_s']):>9} calls/s{rate} p50 {num(r.get('p50_us')):>8} µs "
        f"p99 {num(r.get('p99_us')):>8} µs  server {fmt_pct(sc)} "
        f"loadgen {fmt_pct(r.get('loadgen_cpu'))} "
        f"other {fmt_pct(r.get('other_cpu'))} server runq {fmt_pct(r.get('server_runq_wait'))}"
        + (f" (attempt {r['attempts']})" if r.get("attempts", 1) > 1 else "")
    )


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


# ---------------------------------------------------------------------------------------------
# aggregation and tables


def cell(
    runs: list[dict[str, Any]], server: str, payload: int, mode: str, max_other: float
) -> dict[str, Any]:
    """One (server, payload, mode): ``failed`` if any pass failed; else medians over the
    passes that other work did not disturb (other CPU ≤ ``max_other``), or the least
    disturbed pass (``disturbed`` set) when every pass was."""
    rs = [r for r in runs if (r["server"], r["payload"], r["mode"]) == (server, payload, mode)]
    if not rs:
        return {}
    bad = [r["failed"] for r in rs if "failed" in r]
    if bad:
        return {"failed": bad[0], "n": len(rs)}
    clean = [r for r in rs if (r.get("other_cpu") or 0) <= max_other]
    disturbed = not clean
    rs = clean or [min(rs, key=lambda r: r.get("other_cpu") or 0)]
    out: dict[str, Any] = {
        "n": len(rs),
        "runs": [r["calls_per_s"] for r in rs],
        "disturbed": disturbed,
    }
    for k in (
        "calls_per_s",
        "p50_us",
        "p99_us",
        "server_cpu",
        "loadgen_cpu",
        "other_cpu",
        "target_rate",
    ):
        vals = [r[k] for r in rs if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    out["overloaded"] = any(r.get("overloaded") for r in rs)
    return out


def summarize(data: dict[str, Any], settings: list[str], max_other: float) -> dict[str, Any]:
    runs = data["runs"]
    servers = list(data["servers"])
    summary: dict[str, Any] = {}
    for payload in data["payloads"]:
        for s in servers:
            c = {m: cell(runs, s, payload, m, max_other) for m in data["modes"]}
            best, best_mode = 0.0, None
            for m in settings:
                v = c.get(m, {}).get("calls_per_s")
                if v is not None and v > best:
                    best, best_mode = v, m
            c["peak"] = {"calls_per_s": best, "setting": best_mode}
            if best_mode:
                pc = c[best_mode]
                c["peak"]["us_per_call"] = (
                    pc["server_cpu"] * 1e6 / best if pc.get("server_cpu") else None
                )
                c["peak"]["server_cpu"] = pc.get("server_cpu")
                c["peak"]["loadgen_cpu"] = pc.get("loadgen_cpu")
            summary[f"{s}/{payload}"] = c
    return summary


def num(x: float | None, spec: str = ",.0f") -> str:
    return "n/a" if x is None else format(x, spec)


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "n/a"
    return f"{a / b:.2f}" if a / b < 10 else f"{a / b:.1f}"


def render(data: dict[str, Any], summary: dict[str, Any], settings: list[str]) -> str:
    servers = list(data["servers"])
    lines: list[str] = []
    sat = settings[0]
    for payload in data["payloads"]:
        label = "10-byte" if payload == 10 else f"{payload}-byte"
        lines += [
            f"### {label} string",
            "",
            f"| server | depth-1 p50 / p99 µs | {sat} calls/s | peak calls/s (setting) "
            "| at 50% of peak: p50 / p99 µs (rate, server CPU) | server CPU at peak "
            "| server µs CPU/call at peak "
            "| ÷ grpc.aio | ÷ node | ÷ bare |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        ref = {
            n: summary.get(f"{n}/{payload}", {}).get("peak", {}).get("calls_per_s")
            for n in ("grpc.aio", "node", "bare")
        }
        for s in servers:
            c = summary[f"{s}/{payload}"]
            d1, st, half, pk = c["depth-1"], c.get(sat, {}), c.get("half", {}), c["peak"]
            if not st:
                lines.append(f"| {s} | not run |||||||||")
                continue
            if "failed" in d1 or "failed" in st:
                why = d1.get("failed") or st.get("failed")
                lines.append(f"| {s} | FAILED: {why} |||||||||")
                continue
            d1_s = f"{num(d1['p50_us'])} / {num(d1['p99_us'])}" if d1 else "not run"
            if any(x.get("disturbed") for x in (d1, st, half, *(c.get(m, {}) for m in settings))):
                s = f"{s} †"
            if not half:
                half_s = "not run"
            elif "failed" in half:
                half_s = "failed"
            else:
                half_s = (
                    f"{num(half['p50_us'])} / {num(half['p99_us'])} "
                    f"({num(half['target_rate'])}/s, CPU {fmt_pct(half.get('server_cpu'))})"
                )
                if half.get("overloaded"):
                    half_s += " overloaded"
            lines.append(
                f"| {s} | {d1_s} | {num(st['calls_per_s'])} "
                f"| {num(pk['calls_per_s'])} ({pk['setting']}) | {half_s} "
                f"| {fmt_pct(pk.get('server_cpu'))} | {num(pk.get('us_per_call'), '.1f')} "
                f"| {ratio(pk['calls_per_s'], ref['grpc.aio'])} "
                f"| {ratio(pk['calls_per_s'], ref['node'])} "
                f"| {ratio(pk['calls_per_s'], ref['bare'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def targets(data: dict[str, Any], summary: dict[str, Any], settings: list[str]) -> str:
    sat = settings[0]
    rows = ["| target | kind | 10 B | 1 KiB | met |", "|---|---|---:|---:|---|"]

    def get(s: str, payload: int) -> dict[str, Any]:
        return summary.get(f"{s}/{payload}", {})

    def line(name: str, kind: str, fn: Callable[[int], tuple[float | None, bool | None, str]]):
        cells, oks = [], []
        for payload in (10, 1024):
            if payload not in data["payloads"]:
                cells.append("not run")
                continue
            _, ok, s = fn(payload)
            cells.append(s)
            if ok is not None:
                oks.append(ok)
        met = "n/a" if not oks or kind == "info" else ("yes" if all(oks) else "no")
        rows.append(f"| {name} | {kind} | {cells[0]} | {cells[1]} | {met} |")

    def calls(payload: int, key: str, server: str = "tarsus") -> float | None:
        c = get(server, payload)
        if key == "peak":
            return c.get("peak", {}).get("calls_per_s") or None
        return c.get(key, {}).get("calls_per_s")

    def thr(limit: float, key: str):
        def f(p: int) -> tuple[float | None, bool | None, str]:
            v = calls(p, key)
            return v, (None if v is None else v >= limit), num(v)

        return f

    def vs(peer: str, limit: float, server: str = "tarsus"):
        def f(p: int) -> tuple[float | None, bool | None, str]:
            a = calls(p, "peak", server)
            b = get(peer, p).get("peak", {}).get("calls_per_s") or None
            if a is None or b is None:
                return None, None, "n/a"
            return a / b, a / b >= limit, f"{a / b:.2f}x"

        return f

    def d1p99(p: int) -> tuple[float | None, bool | None, str]:
        v = get("tarsus", p).get("depth-1", {}).get("p99_us")
        return v, (None if v is None else v <= MUST_D1_P99_US), f"{num(v)} µs"

    def d1p99_vs(server: str, limit: float):
        def f(p: int) -> tuple[float | None, bool | None, str]:
            a = get(server, p).get("depth-1", {}).get("p99_us")
            b = get("node", p).get("depth-1", {}).get("p99_us")
            if a is None or not b:
                return None, None, "n/a"
            return a / b, a / b <= limit, f"{a / b:.2f}x"

        return f

    def gc_pause(server: str, limit_ms: float):
        def f(p: int) -> tuple[float | None, bool | None, str]:
            g = data.get("gc", {}).get(server)
            if p != GC_PAYLOAD or not g or "failed" in g:
                return None, None, "—" if p != GC_PAYLOAD else "n/a"
            v = g["worst_pause_ms"]
            return v, v <= limit_ms, f"{v:.2f} ms"

        return f

    def cpu_vs(server: str):
        def f(p: int) -> tuple[float | None, bool | None, str]:
            a = get(server, p).get("peak", {}).get("us_per_call")
            b = get("node", p).get("peak", {}).get("us_per_call")
            if not a or not b:
                return None, None, "n/a"
            return b / a, None, f"{b / a:.2f}x"

        return f

    for server in ("tarsus", "tarsus-uvloop"):
        if server not in data["servers"]:
            continue
        loop = LOOP_OF[server]
        line(f"{loop}: peak ÷ node ≥ {MUST_X_NODE:.1f}x", "must", vs("node", MUST_X_NODE, server))
        line(f"{loop}: calls per CPU-second ÷ node's (node µs CPU/call ÷ ours)", "info",
             cpu_vs(server))  # fmt: skip
        line(f"{loop}: depth-1 p99 ÷ node ≤ {MUST_P99_X_NODE:.1f}x", "must",
             d1p99_vs(server, MUST_P99_X_NODE))  # fmt: skip
        line(f"{loop}: worst GC pause, {data.get('gc_seconds', 30):.0f} s saturated "
             f"≤ {MUST_GC_MS:.0f} ms", "must", gc_pause(server, MUST_GC_MS))  # fmt: skip
        line(f"{loop}: peak ÷ node ≥ {GOAL_X_NODE:.1f}x", "goal", vs("node", GOAL_X_NODE, server))
        line(f"{loop}: depth-1 p99 ÷ node ≤ {GOAL_P99_X_NODE:.1f}x", "goal",
             d1p99_vs(server, GOAL_P99_X_NODE))  # fmt: skip
        line(f"{loop}: worst GC pause ≤ {GOAL_GC_MS:.0f} ms", "goal", gc_pause(server, GOAL_GC_MS))

    ss = stats_summary(data)

    def stats_cost(p: int) -> tuple[float | None, bool | None, str]:
        if p not in ss:
            return None, None, "not run"
        cost = ss[p]["calls_lost"]
        return cost, cost <= GOAL_STATS_COST, f"{100 * cost:+.1f}%"

    line(f"≥ {MUST_CALLS:,} calls/s at {sat} (async handler)", "must", thr(MUST_CALLS, sat))
    line(f"≥ {MUST_CALLS:,} calls/s at peak", "must", thr(MUST_CALLS, "peak"))
    line(f"≥ {MUST_X_GRPC:.0f}x grpc.aio (peak)", "must", vs("grpc.aio", MUST_X_GRPC))
    line(f"depth-1 p99 ≤ {MUST_D1_P99_US:.0f} µs", "must", d1p99)
    line(f"≥ {GOAL_CALLS:,} calls/s at peak", "goal", thr(GOAL_CALLS, "peak"))
    line(f"≥ {GOAL_X_GRPC:.0f}x grpc.aio (peak)", "goal", vs("grpc.aio", GOAL_X_GRPC))
    line("≥ Node's throughput (peak)", "goal", vs("node", 1.0))
    line(f"≥ {GOAL_X_BARE:.0%} of bare echo (peak)", "goal", vs("bare", GOAL_X_BARE))

    def stats_cpu(p: int) -> tuple[float | None, bool | None, str]:
        if p not in ss:
            return None, None, "not run"
        cost = ss[p]["cpu_added"]
        return cost, cost <= GOAL_STATS_COST, f"{100 * cost:+.1f}%"

    def stats_hook(p: int) -> tuple[float | None, bool | None, str]:
        hook = data.get("stats_hook_us")
        a = ss[p]["tarsus"]["us_per_call"] if p in ss else None
        if hook is None or not a:
            return None, None, "not run"
        return hook / a, hook / a <= GOAL_STATS_COST, f"{100 * hook / a:.1f}%"

    line(f"stats enabled costs ≤ {GOAL_STATS_COST:.0%}: hook µs / CPU per call", "goal", stats_hook)
    line("(A/B, noisy: see above) calls/s lost with stats", "info", stats_cost)
    line("(A/B, noisy: see above) CPU/call added with stats", "info", stats_cpu)
    return "\n".join(rows)


def all_runs_table(data: dict[str, Any]) -> str:
    rows = [
        "| pass | server | payload | mode | calls/s | p50 µs | p99 µs | server CPU | loadgen CPU "
        "| other CPU | server run-queue wait | attempts | verified in warm-up |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        if "failed" in r:
            rows.append(
                f"| {r['pass_']} | {r['server']} | {r['payload']} | {r['mode']} "
                f"| FAILED: {r['failed']} |||||||||"
            )
            continue
        mode = r["mode"] + (f" @ {r['target_rate']:,.0f}/s" if r["target_rate"] else "")
        rows.append(
            f"| {r['pass_']} | {r['server']} | {r['payload']} | {mode} | {num(r['calls_per_s'])} "
            f"| {num(r['p50_us'])} | {num(r['p99_us'])} | {fmt_pct(r.get('server_cpu'))} "
            f"| {fmt_pct(r['loadgen_cpu'])} | {fmt_pct(r.get('other_cpu'))} "
            f"| {fmt_pct(r.get('server_runq_wait'))} | {r.get('attempts', 1)} "
            f"| {r['verified']:,} |"
        )
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# markdown


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for mod, label in (("uvloop", "uvloop"), ("grpc", "grpcio")):
        ok, out = probe(f"import {mod}; print({mod}.__version__)")
        parts.append(f"{label} {out if ok else 'not installed'}")
    node = shutil.which("node")
    if node:
        v = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
        parts.append(f"Node {v.stdout.strip()}")
        pkg = NODE_MODULES / "@tars" / "rpc" / "package.json"
        if pkg.exists():
            parts.append(f"@tars/rpc {json.loads(pkg.read_text())['version']}")
    return ", ".join(parts)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def wire_check(data: dict[str, Any]) -> str:
    """Whether the Tars servers answered one identical request with identical bytes."""
    parts = []
    for payload, by_server in data["wire"].items():
        frames = {k: bytes.fromhex(v) for k, v in by_server.items()}
        if len(frames) < 2:
            continue
        sizes = ", ".join(f"{k} {len(v)} B" for k, v in frames.items())
        same = len(set(frames.values())) == 1
        parts.append(f"{payload} B string: {'identical' if same else 'DIFFERENT'} ({sizes})")
    if not parts:
        return ""
    return "One request with id 1 sent to each Tars server, response bytes compared: " + (
        "; ".join(parts) + "."
    )


def section(
    data: dict[str, Any],
    summary: dict[str, Any],
    settings: list[str],
    cmd: str,
    args: argparse.Namespace,
) -> str:
    sat = settings[0]
    others = [r.get("other_cpu") or 0.0 for r in data["runs"] if "failed" not in r]
    noisy = sum(1 for o in others if o > args.max_other)
    retried = sum(1 for r in data["runs"] if r.get("attempts", 1) > 1)
    skipped = [f"- **{k}** not run: {v}" for k, v in data["skipped"].items()]
    servers = [f"- **{k}**: {v}" for k, v in data["servers"].items()]
    return "\n".join(
        [
            BEGIN,
            "## RPC: echo calls side by side",
            "",
            f"Measured {datetime.date.today().isoformat()} on {cpu_model()} "
            f"({os.cpu_count()} CPUs), {versions()}. Tarsus codec: {data['codec']}.",
            f"Each server is one process pinned to CPU {SERVER_CPU} (`taskset`); the load "
            f"generator (bench/rpc_loadgen.py, uvloop) is another process pinned to CPU "
            f"{LOADGEN_CPU}, sending raw Tars frames (a grpc.aio client of the same shape for "
            "grpc.aio). `echo(string s, out string r) -> int`, r = s.",
            f"{args.passes} pass(es), each restarting every server, the order reversed on even "
            f"passes; cells are medians over the passes that other work did not disturb (see "
            f"Caveats). Each run: {args.warmup} s warm-up (every "
            f"response decoded and checked: iRet 0, ret 0, r = s), then a {args.duration} s "
            "window (every response checked for its request id and iRet 0).",
            "",
            *servers,
            *skipped,
            "",
            wire_check(data),
            "",
            "Columns: **depth-1**: 1 connection x 1 call in flight, latency from the write to the "
            f"read that brought the answer. **{sat}**: 4 connections x 32 in flight (closed "
            "loop, answers immediately replaced, the new requests of one read sent in one "
            f"write). **peak**: the best of {', '.join(settings)}. **at 50% of peak**: open "
            "loop over 4 connections at half of that server's peak rate, requests sent one by "
            "one on schedule, latency from each call's scheduled send time (no coordinated "
            "omission); the server CPU it took shows how far from saturation half the peak "
            "rate really is when requests do not arrive in batches. **server CPU**: % of one "
            "core (all threads of the process). **÷ columns**: peak calls/s over the peer's "
            "peak calls/s, same payload, same run.",
            "",
            render(data, summary, settings),
            "### What stats cost",
            "",
            "`tarsus` and `tarsus+stats` (the same server with `tarsus.rpc.stats.StatReporter` "
            "attached to its adapter, as a server under a node has) run at the same time, "
            f"loaded in turn at {args.settings.split(',')[-1]}, in pairs (A B, B A, A B, ...), "
            f"{args.stats_rounds} runs each per payload; calls/s and CPU/call are medians, the "
            "costs are medians of the differences within each A/B pair. Consecutive identical "
            "runs differ by 10-30% here (how many requests arrive per read settles differently "
            "each run), so the hook timed alone is the sharper number.",
            "",
            render_stats(data) or "Not run: " + data["skipped"].get("tarsus+stats", "--no-stats"),
            "",
            "### GC pauses under saturation",
            "",
            f"Each Tarsus server once more, loaded at {args.settings.split(',')[-1]} with "
            f"{GC_PAYLOAD}-byte strings for {args.gc_seconds:.0f} s; the server times every "
            "garbage collection from start-up to its stop (`gc.callbacks`, "
            "`tarsus.rpc.runtime.GcPauses`), with the GC tuned as `Application.main` tunes it "
            "(`gc.freeze()` once serving, thresholds "
            "`tarsus.rpc.runtime.GC_THRESHOLDS`).",
            "",
            render_gc(data) or "Not run (`--gc-seconds 0`).",
            "",
            "### Targets",
            "",
            "The `tarsus` row (stdlib asyncio) for the older targets; issue 14's targets for "
            "both loops, as ratios to `node` (@tars/rpc) measured in the same run.",
            "",
            targets(data, summary, settings),
            "",
            "Caveats:",
            "",
            "- **bare** saturates the load generator, not the server (see its loadgen CPU "
            "below): ÷ bare compares against a client-bound ceiling. So does any server whose "
            "peak the load generator cannot exceed (loadgen CPU near 100%, server CPU well "
            "below): then ÷ node is capped near 1.0 and the server's CPU per call (calls per "
            "CPU-second ÷ node's, in Targets) is the ratio that tells the servers apart.",
            "- Saturation throughput of one server varies by up to about 30% between clean "
            "runs on this machine (how requests bunch into reads settles differently each "
            "time, and the host's other tenants change the CPU's speed): read the ratios with "
            "that margin.",
            "- **grpc.aio** carries less framing (raw bytes, no servant or function name, no "
            "context) and is measured through grpc.aio's own client.",
            "- This machine is shared. A run during which other work took more than "
            f"{args.max_other:.0%} of a core on CPUs 0-1 was run again (at most "
            f"{args.retries} times, {args.retry_budget:.0f} s in all), keeping the least "
            f"disturbed attempt: {retried} runs were repeated, and {noisy} of {len(others)} "
            'still exceed it. "other CPU" also counts kernel time (loopback softirq) charged to '
            'neither process; "server run-queue wait" is time the server was ready but not '
            "running (for the multi-threaded node and grpc.aio it includes their own threads).",
            f"- Matrix time {data['elapsed']:.0f} s (of which {data['quiet_waited']:.0f} s "
            f"waiting for quiet CPUs and {data['retry_spent']:.0f} s on repeated runs).",
            "",
            "- † in a table: at least one of that row's cells comes from a run that other work "
            "disturbed in every pass (the least disturbed one is shown); treat it as a rough "
            "number.",
            "",
            "<details><summary>All runs</summary>",
            "",
            all_runs_table(data),
            "",
            "</details>",
            "",
            *command_lines(cmd),
            END,
        ]
    )


def write_markdown(path: Path, text: str) -> None:
    replace_section(path, BEGIN, END, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="under a minute: 10 B, 1 pass, short")
    ap.add_argument("--servers", help=f"comma list (default {','.join(DEFAULT_SERVERS)})")
    ap.add_argument("--payloads", help="comma list of string sizes (default 10,1024)")
    ap.add_argument(
        "--settings",
        default="4x32,4x128",
        help="closed-loop CONNSxINFLIGHT settings; the first is 'saturation', the "
        "best is the peak (default 4x32,4x128)",
    )
    ap.add_argument("--passes", type=int, help="default 2 (1 with --quick)")
    ap.add_argument("--warmup", type=float, help="seconds (default 1.0; 0.3 with --quick)")
    ap.add_argument("--duration", type=float, help="seconds (default 2.5; 1.0 with --quick)")
    ap.add_argument(
        "--stats-all",
        action="store_true",
        help="run tarsus+stats in every mode (default: saturation settings only)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=3.0,
        help="max seconds to wait for quiet CPUs before each run",
    )
    ap.add_argument("--quiet-budget", type=float, help="max total waiting (default 20; 5 quick)")
    ap.add_argument(
        "--max-other",
        type=float,
        default=0.2,
        help="run again when other work took more than this share of CPUs 0-1 "
        "(cores) during the window (default 0.2)",
    )
    ap.add_argument("--retries", type=int, default=2, help="at most this many extra attempts")
    ap.add_argument(
        "--retry-budget",
        type=float,
        help="max seconds spent on extra attempts (default 40; 5 with --quick)",
    )
    ap.add_argument("--json", metavar="PATH", help="also save every run as JSON")
    ap.add_argument("--no-stats", action="store_true", help="skip the stats A/B runs")
    ap.add_argument(
        "--gc-seconds",
        type=float,
        help="length of the saturation run that times GC pauses (default 30; 5 with "
        "--quick; 0 skips it)",
    )
    ap.add_argument("--stats-rounds", type=int, help="A/B rounds per payload (default 3; 2 quick)")
    ap.add_argument("--from-json", metavar="PATH", help="render a --json file again, no runs")
    ap.add_argument("--write", metavar="MD", help="replace the rpc section of this markdown")
    args = ap.parse_args(argv)
    q = args.quick
    args.payloads = args.payloads or ("10" if q else "10,1024")
    args.passes = args.passes or (1 if q else 2)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if q else 1.0)
    args.duration = args.duration if args.duration is not None else (1.0 if q else 2.5)
    args.quiet_budget = args.quiet_budget if args.quiet_budget is not None else (5 if q else 20)
    if args.gc_seconds is None:
        args.gc_seconds = 5.0 if q else 30.0
    if args.stats_rounds is None:
        args.stats_rounds = 2 if q else 3
    if args.retry_budget is None:
        args.retry_budget = 5.0 if q else 40.0
    settings = [parse_setting(s).name for s in args.settings.split(",")]

    cmd = " ".join(
        [
            ".venv/bin/python",
            "bench/rpc.py",
            *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        ]
    )
    if args.from_json:
        # Render an earlier run as it was run: its settings and its command.
        data = json.loads(Path(args.from_json).read_text())
        data["wire"] = {int(k): v for k, v in data["wire"].items()}
        data["payloads"] = [int(p) for p in data["payloads"]]
        for k, v in data.get("args", {}).items():
            setattr(args, k, v)
        cmd = data.get("command", cmd)
        settings = [parse_setting(s).name for s in args.settings.split(",")]
    else:
        data = run_matrix(args)
        data["command"] = cmd
        data["args"] = {
            k: getattr(args, k)
            for k in ("passes", "warmup", "duration", "settings", "stats_rounds", "max_other",
                      "retries", "retry_budget", "gc_seconds")
        }  # fmt: skip
    summary = summarize(data, settings, args.max_other)
    print()
    print(render(data, summary, settings))
    print(targets(data, summary, settings))
    print(render_stats(data))
    print(render_gc(data))
    print(wire_check(data))
    print(f"\nmatrix: {data['elapsed']:.0f} s", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({**data, "summary": summary}, indent=1))
    if args.write:
        write_markdown(Path(args.write), section(data, summary, settings, cmd, args))
        print(f"wrote {args.write}", file=sys.stderr)
    failed = [r for r in data["runs"] if "failed" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
