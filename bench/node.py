"""The node agent's cost per supervised process: its memory and CPU with 0 and with N services.

A machine runs one node agent (``tarsus node``) beside its services, so what the node costs
per service it supervises (heartbeats received, state kept, processes watched) sets how many
small services a machine holds. This bench runs:

1. the framework (registry + admin registry over SQLite, what ``tarsus up --no-node`` runs) as
   one process, bench/node_framework.py, on free ports, so that upstream's fixed ports stay
   free for whoever else runs ``tarsus up`` here;
2. the node agent as a process of its own: ``python -m tarsus node --locator ... --port P
   --stop-services``, measured alone;
3. ``--count`` copies of examples/hello (default 20), each its own server ``Bench.Hello<i>``
   with its own port: a package directory per copy (server.py with its ``SERVANT`` set to
   ``Bench.Hello<i>.HelloObj``, Hello.tars, a tarsus.toml naming ``Bench.Hello<i>``),
   deployed, installed and started through the admin registry with
   ``python -m tarsus server deploy Bench.Hello<i> --node 127.0.0.1 --servant HelloObj=<port>
   --package <dir> --start``, then each called by name through the registry until it answers.

The node process is measured with psutil over a ``--window`` (default 60 s) after
``--settle`` seconds, once with no service and once with all of them: RSS (sampled every
second, median), CPU (user + system over the window, % of one core), threads and open file
descriptors. Reported per supervised process: ΔRSS/N and ΔCPU/N. The services' own RSS, USS
and CPU are given for context, and the framework's too.

    .venv/bin/python bench/node.py                  # 20 services, 60 s windows, docs
    .venv/bin/python bench/node.py --count 50 --no-write
    .venv/bin/python bench/node.py --quick --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from machine_load import LoadWindow, load_lines, machine_facts, pct
from report import command_lines, replace_section

import tarsus.idl
from tarsus.rpc.communicator import Communicator
from tarsus.testing import free_ports

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BEGIN, END = "<!-- node:begin -->", "<!-- node:end -->"
DEFAULT_DOC = ROOT / "docs" / "benchmarks.md"
HELLO = ROOT / "examples" / "hello"
NODE_NAME = "127.0.0.1"
EXAMPLE_SERVANT_LINE = 'SERVANT = "Test.HelloServer.HelloObj"'
EXAMPLE_NAME_LINE = 'name = "Test.HelloServer"'
MB = 1024 * 1024

Test = tarsus.idl.load(HELLO / "Hello.tars").Test
#: a call before the route exists logs warnings in this process; keep stderr readable
logging.getLogger("tarsus").setLevel(logging.CRITICAL)


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# processes


class Child:
    """A process of the bench, its stdout and stderr in a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("w") as log:
            self.p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.ps = psutil.Process(self.p.pid)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self) -> str:
        lines = self.text().splitlines()[-15:]
        return (f"\n{self.name} log:\n    " + "\n    ".join(lines)) if lines else ""

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.p.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.p.returncode}){self.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no {needle!r} within {timeout:.0f} s{self.tail()}")
            time.sleep(0.05)

    def interrupt(self, timeout: float = 60.0) -> tuple[float, int]:
        """Ctrl-C; (seconds until it exited, exit code)."""
        t0 = time.monotonic()
        self.p.send_signal(signal.SIGINT)
        try:
            code = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(
                f"{self.name} did not exit within {timeout:.0f} s{self.tail()}"
            ) from None
        return time.monotonic() - t0, code

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def services_under(path: Path) -> list[psutil.Process]:
    """Processes started with ``--config=`` from under ``path`` (the services)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(a.startswith("--config=") for a in cmdline) and any(str(path) in a for a in cmdline):
            found.append(proc)
    return found


def tarsus_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(
        [PY, "-m", "tarsus", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        cmd = " ".join(shlex.quote(a) for a in args)
        raise BenchError(f"tarsus {cmd} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# ---------------------------------------------------------------------------------------------
# the services


def make_package(dest: Path, name: str, port: int) -> Path:
    """A copy of examples/hello that installs as server ``name`` (``App.Server``)."""
    server_py = (HELLO / "server.py").read_text()
    manifest = (HELLO / "tarsus.toml").read_text()
    if EXAMPLE_SERVANT_LINE not in server_py or EXAMPLE_NAME_LINE not in manifest:
        raise BenchError(
            f"examples/hello changed: expected {EXAMPLE_SERVANT_LINE!r} in server.py and "
            f"{EXAMPLE_NAME_LINE!r} in tarsus.toml; update bench/node.py"
        )
    pkg = dest / name
    pkg.mkdir(parents=True)
    (pkg / "server.py").write_text(
        server_py.replace(EXAMPLE_SERVANT_LINE, f'SERVANT = "{name}.HelloObj"')
    )
    shutil.copy(HELLO / "Hello.tars", pkg / "Hello.tars")
    (pkg / "tarsus.toml").write_text(
        manifest.replace(EXAMPLE_NAME_LINE, f'name = "{name}"').replace("18601", str(port))
    )
    return pkg


async def answer_all(locator: str, names: list[str], timeout: float) -> None:
    """Call every ``<name>.HelloObj`` by name through the registry until each answers."""
    deadline = time.monotonic() + timeout
    for name in names:
        last = ""
        while True:
            try:
                # a new communicator per attempt: an early "no endpoint" is not remembered
                async with Communicator(locator, cache_dir=None, timeout_ms=2000) as comm:
                    hello = comm.string_to_proxy(Test.HelloProxy, f"{name}.HelloObj")
                    ret, greeting = await hello.sayHello("x")
                if ret == 0 and greeting == "hello x, from Python":
                    break
                last = f"ret={ret} greeting={greeting!r}"
            except Exception as e:  # not routed yet
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise BenchError(f"{name}.HelloObj did not answer by name: {last}")
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# measuring


def cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def measure(
    node: psutil.Process, framework: psutil.Process, seconds: float, interval: float
) -> dict[str, Any]:
    """The node's (and its services') memory and CPU over ``seconds``."""
    services = []
    for child in node.children():
        with contextlib.suppress(psutil.Error):  # one that ends meanwhile is not a service
            if any(a.startswith("--config=") for a in child.cmdline()):
                services.append(child)
    window = LoadWindow().start()
    t0 = time.perf_counter()
    node_cpu0, fw_cpu0 = cpu_s(node), cpu_s(framework)
    svc_cpu0 = {s.pid: cpu_s(s) for s in services}
    node_rss: list[int] = []
    fw_rss: list[int] = []
    svc_rss: dict[int, list[int]] = {s.pid: [] for s in services}
    k = 0
    while True:
        node_rss.append(node.memory_info().rss)
        fw_rss.append(framework.memory_info().rss)
        for s in services:
            svc_rss[s.pid].append(s.memory_info().rss)
        k += 1
        wake = t0 + k * interval
        if wake - t0 > seconds:
            break
        time.sleep(max(0.0, wake - time.perf_counter()))
    dt = time.perf_counter() - t0
    node_cpu, fw_cpu = cpu_s(node) - node_cpu0, cpu_s(framework) - fw_cpu0
    svc_cpu = {s.pid: (cpu_s(s) - svc_cpu0[s.pid]) / dt for s in services}
    gone = [s.pid for s in services if not s.is_running()]
    if gone:
        raise BenchError(f"services {gone} ended during the window")
    return {
        "seconds": dt,
        "samples": len(node_rss),
        "node_rss": statistics.median(node_rss),
        "node_rss_min": min(node_rss),
        "node_rss_max": max(node_rss),
        "node_uss": node.memory_full_info().uss,
        "node_cpu": node_cpu / dt,
        "node_cpu_s": node_cpu,
        "node_threads": node.num_threads(),
        "node_fds": node.num_fds(),
        "framework_rss": statistics.median(fw_rss),
        "framework_cpu": fw_cpu / dt,
        "services": len(services),
        "svc_rss": [statistics.median(v) for v in svc_rss.values()],
        "svc_uss": [s.memory_full_info().uss for s in services],
        "svc_cpu": list(svc_cpu.values()),
        "load": window.end(),
    }


# ---------------------------------------------------------------------------------------------
# the whole bench


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="tarsus-bench-node-"))
    ports = free_ports(5 + args.count)
    query, registry, admin_port, node_port, patch_port = ports[:5]
    service_ports = ports[5:]
    # the CLI uploads each package to this framework's package store, as an operator's does
    env = dict(
        os.environ,
        TARSUS_CACHE_DIR=str(tmp / "cache"),
        COLUMNS="200",
        TARSUS_PATCH=f"tcp -h 127.0.0.1 -p {patch_port}",
    )
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {query}"
    admin = f"tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p {admin_port}"
    children: list[Child] = []
    ok = False
    try:
        framework = Child(
            "framework",
            [PY, str(ROOT / "bench" / "node_framework.py"), "--data-dir",
             str(tmp / "framework"), "--ports", f"{query},{registry},{admin_port},{patch_port}"],
            tmp,
            env,
        )  # fmt: skip
        children.append(framework)
        framework.wait_for('"event": "ready"', 60)
        t_node = time.monotonic()
        node = Child(
            "node",
            [PY, "-m", "tarsus", "node", "--locator", locator, "--data-dir", str(tmp / "node"),
             "--node-name", NODE_NAME, "--port", str(node_port), "--stop-services"],
            tmp,
            env,
        )  # fmt: skip
        children.append(node)
        while True:
            listed = json.loads(tarsus_cli(["node", "list", "--admin", admin, "--json"], env))
            if any(n["name"] == NODE_NAME and n["connected"] for n in listed["nodes"]):
                break
            if node.p.poll() is not None or time.monotonic() - t_node > 60:
                raise BenchError(f"the node did not connect to the admin registry{node.tail()}")
            time.sleep(0.2)
        node_ready_s = time.monotonic() - t_node
        print(f"node connected after {node_ready_s:.1f} s; settling", file=sys.stderr)

        time.sleep(args.settle)
        print(f"measuring the node alone for {args.window:.0f} s", file=sys.stderr)
        idle = measure(node.ps, framework.ps, args.window, args.interval)

        names = [f"Bench.Hello{i}" for i in range(1, args.count + 1)]
        deploy_times = []
        t_deploy = time.monotonic()
        for name, port in zip(names, service_ports, strict=True):
            pkg = make_package(tmp / "packages", name, port)
            t0 = time.monotonic()
            tarsus_cli(
                ["server", "deploy", name, "--node", NODE_NAME, "--servant", f"HelloObj={port}",
                 "--package", str(pkg), "--start", "--admin", admin, "--user", "tarsus-bench"],
                env,
            )  # fmt: skip
            deploy_times.append(time.monotonic() - t0)
        asyncio.run(answer_all(locator, names, 120))
        deploy_s = time.monotonic() - t_deploy
        print(
            f"{args.count} services deployed and answering by name in {deploy_s:.1f} s; settling",
            file=sys.stderr,
        )
        time.sleep(args.settle)
        print(f"measuring the node with {args.count} services for {args.window:.0f} s",
              file=sys.stderr)  # fmt: skip
        busy = measure(node.ps, framework.ps, args.window, args.interval)
        if busy["services"] != args.count:
            raise BenchError(
                f"the node runs {busy['services']} services, not {args.count}{node.tail()}"
            )

        stop_s, code = node.interrupt()
        deadline = time.monotonic() + 10
        left = services_under(tmp)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = services_under(tmp)
        for proc in left:  # ours: report them, then take them away
            proc.kill()
        framework.interrupt()
        ok = True
        return {
            "date": datetime.date.today().isoformat(),
            "machine": machine_facts(),
            "count": args.count,
            "settle": args.settle,
            "window": args.window,
            "interval": args.interval,
            "node_ready_s": node_ready_s,
            "deploy_s": deploy_s,
            "deploy_each_s": statistics.median(deploy_times),
            "idle": idle,
            "busy": busy,
            "stop_s": stop_s,
            "stop_code": code,
            "leftovers": len(left),
        }
    finally:
        for child in reversed(children):
            child.kill()
        for proc in services_under(tmp):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if ok or not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} (logs)", file=sys.stderr)


def mb(x: float) -> str:
    return f"{x / MB:.1f} MB"


def pct2(x: float) -> str:
    return f"{100 * x:.2f}%"


def spread(xs: list[float], fmt: Any) -> str:
    if not xs:
        return "-"
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))} - {fmt(max(xs))})"


def cpu_resolution(data: dict[str, Any]) -> float:
    """The per-service CPU share one clock tick (what /proc counts CPU time in) makes."""
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    return tick / data["busy"]["seconds"] / data["count"]


def results_table(data: dict[str, Any]) -> str:
    n, idle, busy = data["count"], data["idle"], data["busy"]
    d_rss = (busy["node_rss"] - idle["node_rss"]) / n
    d_cpu = (busy["node_cpu"] - idle["node_cpu"]) / n
    rows = [
        f"| node agent process (`tarsus node`) | 0 services | {n} services "
        "| **per supervised process** (Δ / N) |",
        "|---|---:|---:|---:|",
        f"| RSS, median of {busy['samples']} samples (min - max) "
        f"| {mb(idle['node_rss'])} ({mb(idle['node_rss_min'])} - {mb(idle['node_rss_max'])}) "
        f"| {mb(busy['node_rss'])} ({mb(busy['node_rss_min'])} - {mb(busy['node_rss_max'])}) "
        f"| **{d_rss / 1024:.0f} kB** |",
        f"| USS (memory only it holds), at the end | {mb(idle['node_uss'])} "
        f"| {mb(busy['node_uss'])} | {(busy['node_uss'] - idle['node_uss']) / n / 1024:.0f} kB |",
        f"| CPU, % of one core (CPU seconds in the window) "
        f"| {100 * idle['node_cpu']:.2f}% ({idle['node_cpu_s']:.2f} s) "
        f"| {100 * busy['node_cpu']:.2f}% ({busy['node_cpu_s']:.2f} s) "
        f"| **{100 * d_cpu:.4f}%** (1 tick: {100 * cpu_resolution(data):.4f}%) |",
        f"| threads | {idle['node_threads']} | {busy['node_threads']} "
        f"| {(busy['node_threads'] - idle['node_threads']) / n:.2f} |",
        f"| open file descriptors | {idle['node_fds']} | {busy['node_fds']} "
        f"| {(busy['node_fds'] - idle['node_fds']) / n:.2f} |",
        "",
        "| for context | 0 services | " + f"{n} services |",
        "|---|---:|---:|",
        f"| each service's RSS: median (min - max) | - | {spread(busy['svc_rss'], mb)} |",
        f"| each service's USS: median (min - max) | - | {spread(busy['svc_uss'], mb)} |",
        f"| each service's CPU, % of one core: median (min - max) | - "
        f"| {spread(busy['svc_cpu'], pct2)} |",
        f"| all services' CPU together | - | {pct2(sum(busy['svc_cpu']))} |",
        f"| framework process (registry + admin registry): RSS, CPU "
        f"| {mb(idle['framework_rss'])}, {pct(idle['framework_cpu'])} "
        f"| {mb(busy['framework_rss'])}, {pct(busy['framework_cpu'])} |",
        f"| other processes' CPU during the window (not the bench's) "
        f"| {pct(idle['load']['other'])} | {pct(busy['load']['other'])} |",
        f"| both CPUs busy during the window (of {100 * (os.cpu_count() or 1)}%) "
        f"| {pct(idle['load']['machine_busy'])} | {pct(busy['load']['machine_busy'])} |",
        f"| load average (1 / 5 / 15 min) at the window's start "
        f"| {idle['load']['load_before']} | {busy['load']['load_before']} |",
        f"| load average at the window's end | {idle['load']['load_after']} "
        f"| {busy['load']['load_after']} |",
    ]
    return "\n".join(rows)


def facts_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"- node connected to the admin registry {data['node_ready_s']:.1f} s after its spawn; "
        f"{data['count']} services deployed, installed, started and answering by name in "
        f"{data['deploy_s']:.1f} s (one `tarsus server deploy --start`: median "
        f"{data['deploy_each_s']:.1f} s, its own interpreter start included)",
        f"- CPU times come from /proc in clock ticks of {1000 / os.sysconf('SC_CLK_TCK'):.0f} "
        f"ms: one tick over this window, divided by {data['count']}, is "
        f"{100 * cpu_resolution(data):.4f}% of a core; the node's own timers (keepAlive to "
        "the registry, reports to the admin registry, every 10 s) fall unevenly into one "
        "window: read the per-service CPU as an order of magnitude",
        f"- Ctrl-C to the node (`--stop-services`): exited {data['stop_code']} in "
        f"{data['stop_s']:.1f} s; service processes left: {data['leftovers']}",
    ]


def section(data: dict[str, Any], cmd: str) -> str:
    n = data["count"]
    busy_top = "; ".join(data["busy"]["load"]["top_others"]) or "none above 1%"
    idle_top = "; ".join(data["idle"]["load"]["top_others"]) or "none above 1%"
    return "\n".join(
        [
            BEGIN,
            "## Node agent: memory and CPU per supervised process",
            "",
            "A machine runs one node agent beside its services; what the node costs per "
            "service it supervises (heartbeats received, state kept, processes watched) sets "
            "how many small services one machine holds.",
            "",
            f"Measured {data['date']} on {data['machine']}.",
            "",
            "- **Framework**: registry and admin registry in one process over SQLite "
            "(bench/node_framework.py: what `tarsus up --no-node` runs, on free ports instead "
            "of upstream's fixed ones, which other work on this machine uses).",
            "- **Node agent**: its own process, `python -m tarsus node --locator ... --port P "
            "--stop-services`, default settings; measured alone (the services are its "
            "children, counted apart).",
            f"- **Services**: {n} copies of examples/hello, each its own server "
            '`Bench.Hello<i>` (server.py with `SERVANT = "Bench.Hello<i>.HelloObj"`, a '
            "tarsus.toml naming it), deployed with `python -m tarsus server deploy "
            "Bench.Hello<i> --node 127.0.0.1 --servant HelloObj=<port> --package <dir> "
            "--start`, each in its own venv, then each called by name through the registry "
            "until it answered. Idle: nobody calls them; each sends the node its keepAlive.",
            f"- **Measured**: the node process with psutil over {data['window']:.0f} s, "
            f"{data['settle']:.0f} s after the node connected (0 services) and "
            f"{data['settle']:.0f} s after the last service answered ({n} services): RSS "
            f"every {data['interval']:g} s (median), CPU as user + system over the window "
            "(% of one core), threads and file descriptors at the end. Per supervised "
            f"process = (with {n} - with 0) / {n}; the memory difference includes what "
            "deploying and installing left on the node's heap.",
            "",
            results_table(data),
            "",
            *facts_lines(data),
            f"- busiest other processes, 0-service window: {idle_top}",
            f"- busiest other processes, {n}-service window: {busy_top}",
            "",
            *command_lines(cmd),
            END,
        ]
    )


def write_markdown(path: Path, text: str) -> None:
    replace_section(path, BEGIN, END, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 services, 3 s windows")
    ap.add_argument("--count", type=int, help="services to supervise (default 20; 2 with --quick)")
    ap.add_argument("--window", type=float, help="seconds measured (default 60; 3 with --quick)")
    ap.add_argument("--settle", type=float, help="seconds before each window (default 10; 1)")
    ap.add_argument("--interval", type=float, help="seconds between RSS samples (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) on failure")
    ap.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    ap.add_argument("--no-write", action="store_true", help="do not touch the docs")
    ap.add_argument("--write", metavar="MD", default=str(DEFAULT_DOC), help="markdown to update")
    args = ap.parse_args(argv)
    q = args.quick
    args.count = args.count or (2 if q else 20)
    args.window = args.window if args.window is not None else (3.0 if q else 60.0)
    args.settle = args.settle if args.settle is not None else (1.0 if q else 10.0)
    args.interval = args.interval or (0.5 if q else 1.0)
    if args.count < 1:
        ap.error("--count must be at least 1")
    given = argv if argv is not None else sys.argv[1:]
    cmd = " ".join([".venv/bin/python", "bench/node.py", *(shlex.quote(a) for a in given)])
    try:
        data = run_bench(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    data["command"] = cmd
    print()
    print(results_table(data))
    print()
    print("\n".join(facts_lines(data)))
    print("\n".join(load_lines(data["busy"]["load"])))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
    if not args.no_write:
        write_markdown(Path(args.write), section(data, cmd))
        print(f"wrote {args.write}", file=sys.stderr)
    return 0 if data["stop_code"] == 0 and not data["leftovers"] else 1


if __name__ == "__main__":
    sys.exit(main())
