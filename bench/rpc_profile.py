"""Where the Tarsus server's time goes under load: py-spy samples of bench/rpc.py's tarsus server.

Starts bench/rpc_servers/tarsus_server.py pinned to CPU 0, drives it from CPU 1 with
bench/rpc_loadgen.py (closed loop ``--conns x --inflight``, or open loop with ``--rate``), and
samples the server with py-spy (``pip install py-spy``) during the load window. Prints the
functions with the most samples, by self time and inclusive time (C functions such as the codec
count in the Python line that called them).

    .venv/bin/python bench/rpc_profile.py                    # 4 x 128 in flight, 10 B
    .venv/bin/python bench/rpc_profile.py --rate 20000       # open loop at 20k calls/s
    .venv/bin/python bench/rpc_profile.py --lines            # by line instead of function
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rpc import LOADGEN, LOADGEN_CPU, PY, SERVANT, SERVERS_DIR, Running, Server, pinned

#: The event loop's own frames, under which everything runs.
LOOP_FRAMES = (
    "(runners.py",
    "(tarsus_server.py",
    "run_forever",
    "run_until_complete",
    "_run_once",
    "Handle._run",
)
FRAME = re.compile(r"\s*(?P<func>.*?) \((?:.*/)?(?P<file>[^/:]+):(?P<line>\d+)\)")


def aggregate(
    raw: Path, by_line: bool
) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, n_s = line.rsplit(" ", 1)
        n = int(n_s)
        total += n
        frames = []
        for f in stack.split(";"):
            m = FRAME.match(f)
            if m is None:
                frames.append(f.strip() or "<native / idle>")
                continue
            where = f"{m['file']}:{m['line']}" if by_line else m["file"]
            frames.append(f"{m['func']} ({where})")
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return total, own, incl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--inflight", type=int, default=128)
    ap.add_argument("--rate", type=float, default=0.0, help="open loop at this many calls/s")
    ap.add_argument("--payload", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5.0, help="sampling time")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--stats", action="store_true", help="with StatReporter attached")
    ap.add_argument("--lines", action="store_true", help="aggregate by line, not function")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--raw", metavar="PATH", help="keep py-spy's raw (collapsed) stacks here")
    args = ap.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy not found: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    server_argv = [PY, str(SERVERS_DIR / "tarsus_server.py"), "--loop", args.loop]
    if args.stats:
        server_argv.append("--stats")
    spec = Server("tarsus", "tars", lambda p: [*server_argv, "--port", str(p)], "")
    log: list[str] = []
    srv = Running(spec, log)
    try:
        err = srv.wait_ready()
        if err:
            print(f"server did not start: {err}", file=sys.stderr)
            return 1
        warmup = 1.0
        load = [
            PY, str(LOADGEN), "--port", str(srv.port), "--servant", SERVANT,
            "--conns", str(args.conns), "--inflight", str(args.inflight),
            "--payload", str(args.payload), "--warmup", str(warmup),
            "--duration", str(args.seconds + 1.0), "--server-pid", str(srv.pid),
        ]  # fmt: skip
        if args.rate > 0:
            load += ["--rate", str(args.rate)]
        gen = subprocess.Popen(pinned(LOADGEN_CPU, load), stdout=subprocess.PIPE, text=True)
        time.sleep(warmup + 0.5)
        raw = Path(args.raw) if args.raw else Path(tempfile.mkstemp(suffix=".txt")[1])
        subprocess.run(
            [spy, "record", "--pid", str(srv.pid), "--duration", str(int(args.seconds)),
             "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
            check=True, capture_output=True,
        )  # fmt: skip
        out, _ = gen.communicate(timeout=args.seconds + 20)
    finally:
        srv.stop()
    res = json.loads(out.strip().splitlines()[-1])
    print(
        f"load: {res['calls_per_s']:,.0f} calls/s, p50 {res['p50_us']:,.0f} µs, "
        f"p99 {res['p99_us']:,.0f} µs, server CPU {100 * (res['server_cpu'] or 0):.0f}%, "
        f"errors {res['errors']} (py-spy itself takes some CPU: numbers run a little low)"
    )
    total, own, incl = aggregate(raw, args.lines)
    print(f"\n{total} samples; self time:")
    for name, n in own.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\ninclusive time (below the event loop):")
    shown = 0
    for name, n in incl.most_common():
        if any(x in name for x in LOOP_FRAMES):
            continue  # what every sample passes through
        print(f"  {100 * n / total:5.1f}%  {name}")
        shown += 1
        if shown >= args.top:
            break
    if not args.raw:
        raw.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
