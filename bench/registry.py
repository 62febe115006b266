"""The registry at cluster scale: 100,000 routed instances, 10,000 nodes beating, lookups.

What a registry costs is set by the size of the cluster it serves, not by one call: every node
sends ``RegistryObj.keepAlive`` every 10 s (10,000 nodes: 1,000 calls/s, each a database write
sooner or later), every client's locator asks ``QueryObj`` where servants run, and the route
cache of every instance is rebuilt from the database every 10 s (incremental) and every 300 s
(full). This bench runs that on SQLite and on MariaDB, one run each, and reports:

1. the route cache of ``--nodes`` x ``--servers-per-node`` instances (default 10,000 x 10),
   each with one adapter, a realistic mix of states, IDC groups and sets
   (bench/registry_cluster.py), seeded with bulk INSERTs; the time of the registry's initial
   full load (``app.start()``), of a periodic full reload and of incremental loads (nothing
   changed; 1% of the servers changed);
2. the registry's CPU (psutil, all threads, % of one core) while ``--nodes`` simulated nodes
   call ``keepAlive`` every ``--period`` seconds, evenly spread, over ``--conns`` connections,
   for ``--duration`` seconds (bench/registry_loadgen.py: our client, a separate process);
   keepAlive p50/p99; and at the end whether every node's last heartbeat is in
   ``t_node_info`` (``last_heartbeat`` recent, ``load_avg5`` = the round number the node sent
   last, node and server states untouched by the dead-node sweep);
3. ``findObjectByIdInSameGroup`` of random servants under that load, from another process:
   at a steady ``--lookup-rate`` through our client (p50/p99), then at full speed with
   pre-encoded frames (lookups/s).

The registry is its own process (bench/registry_server.py, ``add_registry`` on an
``Application``, default settings, stdlib asyncio), its event loop pinned to CPU 0 and its
other threads (aiosqlite's) to CPU 1; the load generators are pinned to CPU 1. On SQLite the
database work is inside the registry process (aiosqlite's thread) and counted in its CPU; on
MariaDB it is in ``mariadbd``, shown apart: by default a server of the bench's own
(bench/own_mariadb.py), pinned to CPU 1 with the load generators, so that neither the
machine's other users of the shared server nor its threads running on the registry's CPU are
in the registry's figures.

    .venv/bin/python bench/registry.py                      # both databases, full size, docs
    .venv/bin/python bench/registry.py --db sqlite --duration 60 --no-write
    .venv/bin/python bench/registry.py --quick --db sqlite  # small sizes, seconds, no docs

The MariaDB run creates a database ``tarsus_bench_<hex>`` on ``--mariadb`` (``own``, the
default when mariadb-server is installed, or a server URL such as
``mysql://root@127.0.0.1:3306``) and drops it afterwards. Timings are for reading, never for
asserting; the heartbeat check is a correctness check: the exit code is 1 when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import queue
import secrets
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import own_mariadb
import psutil
from own_mariadb import OwnMariaDB
from registry_cluster import Cluster, change_servers, check_heartbeats, seed
from report import command_lines, replace_section

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
BEGIN, END = "<!-- registry:begin -->", "<!-- registry:end -->"
DEFAULT_DOC = ROOT / "docs" / "benchmarks.md"
REGISTRY_CPU, LOADGEN_CPU = "0", "1"
DB_PREFIX = "tarsus_bench_"

#: The issues' figures: registry CPU (share of one core) holding 10,000 nodes, lookup p99,
#: the longest event-loop stall while it serves (flushes, sweeps, loads).
MUST_CPU, GOAL_CPU = 0.50, 0.20
MUST_P99_MS, GOAL_P99_MS = 1.0, 0.5
MUST_STALL_MS = 5.0
#: The windows whose stalls count for the target (at max lookups the loop is saturated: its
#: lateness is the queue of lookups, not a stall).
STALL_WINDOWS = (("ka", "keepAlive"), ("lk", "+ lookups (QueryFProxy)"), ("raw", "+ lookups (raw)"))
#: RegistrySettings defaults the bench relies on (flush every 1 s).
FLUSH_INTERVAL = 1.0


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# processes


#: ``SCHED_FIFO`` priority of the steady-rate lookup probes' windows (``--probe-priority``)
PROBE_FIFO = 50


def probe_options(priority: str) -> list[str]:
    """The load generator's options that run a steady-rate lookup probe's window at
    ``priority``: ``fifo`` is real-time (``SCHED_FIFO``), so the probe reads each answer when
    it arrives rather than when ``mariadbd`` or the keepAlive generator on its shared CPU
    yields; ``normal`` (or a machine that does not allow this process real-time priority)
    runs it as any other."""
    if priority != "fifo":
        return []
    fifo = f"import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param({PROBE_FIFO}))"
    may = subprocess.run([PY, "-c", fifo], capture_output=True, check=False)
    return ["--fifo", str(PROBE_FIFO)] if may.returncode == 0 else []


def pinned(cpu: str | None, argv: list[str]) -> list[str]:
    if cpu is None or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return argv
    return ["taskset", "-c", cpu, *argv]


class Proc:
    """A child speaking JSON lines on stdout; stderr goes to a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, cpu: str | None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.argv = pinned(cpu, argv)
        self.p = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=ROOT,
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._ps = psutil.Process(self.p.pid)

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "text", "line": line.rstrip()})
        self.events.put(None)

    @property
    def pid(self) -> int:
        return self.p.pid

    def cpu(self) -> float:
        """CPU seconds of the process (all threads), the taskset wrapper excepted."""
        t = self._ps.cpu_times()
        return t.user + t.system

    def runq_wait(self) -> float:
        """Seconds the process's threads were runnable but waiting for a CPU (schedstat)."""
        return runq_wait(self.p.pid)

    def send(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def wait(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no {event!r} within {timeout:.0f}s{self.tail()}")
            try:
                msg = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                self.p.wait(timeout=5)
                raise BenchError(
                    f"{self.name} exited ({self.p.returncode}) before {event!r}{self.tail()}"
                )
            if msg.get("event") == event:
                return msg
            if msg.get("event") == "error":
                raise BenchError(f"{self.name}: {msg.get('message')}")

    def tail(self) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return (":\n    " + "\n    ".join(lines)) if lines else ""

    def close(self, timeout: float = 15.0) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.p.stdin is not None
                self.p.stdin.close()
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._log.close()


# ---------------------------------------------------------------------------------------------
# CPU accounting


def runq_wait(pid: int) -> float:
    total = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
    return total / 1e9


def find_mariadbd() -> psutil.Process | None:
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("mariadbd", "mysqld"):
            return p
    return None


def all_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of every process now, with a short label."""
    out: dict[int, tuple[str, float]] = {}
    for p in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        t = p.info["cpu_times"]
        if t is None:
            continue
        cmd = " ".join((p.info["cmdline"] or [])[:4]) or p.info["name"] or "?"
        out[p.info["pid"]] = (cmd[:80], t.user + t.system)
    return out


def busy_cores() -> float:
    """Seconds all CPUs were busy so far (everything but idle and iowait)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


class Window:
    """CPU of our processes, mariadbd and the machine between :meth:`start` and :meth:`end`."""

    def __init__(self, procs: dict[str, Proc], mariadbd: psutil.Process | None) -> None:
        self.procs = procs
        self.mariadbd = mariadbd

    def _sample(self) -> dict[str, Any]:
        cpu, wait = {}, {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                cpu[name] = proc.cpu()
            wait[name] = proc.runq_wait()
        if self.mariadbd is not None:
            with contextlib.suppress(psutil.Error):
                t = self.mariadbd.cpu_times()
                cpu["mariadbd"] = t.user + t.system
        return {
            "t": time.perf_counter(),
            "cpu": cpu,
            "wait": wait,
            "busy": busy_cores(),
            "all": all_cpu(),
        }

    def start(self) -> Window:
        self.s0 = self._sample()
        return self

    def end(self) -> dict[str, Any]:
        s0, s1 = self.s0, self._sample()
        dt = s1["t"] - s0["t"]
        share = {k: (s1["cpu"][k] - s0["cpu"][k]) / dt for k in s1["cpu"] if k in s0["cpu"]}
        waited = {k: (s1["wait"][k] - s0["wait"][k]) / dt for k in s1["wait"] if k in s0["wait"]}
        ours = {os.getpid(), *(p.pid for p in self.procs.values())}
        if self.mariadbd is not None:
            ours.add(self.mariadbd.pid)
        others: list[tuple[float, str]] = []
        for pid, (label, c1) in s1["all"].items():
            if pid in ours:
                continue
            # a process started during the window: all of its CPU is in it
            d = (c1 - (s0["all"][pid][1] if pid in s0["all"] else 0.0)) / dt
            if d > 0:
                others.append((d, label))
        others.sort(reverse=True)
        busy = (s1["busy"] - s0["busy"]) / dt
        other = sum(d for d, _ in others)
        return {
            "seconds": dt,
            "share": share,
            "runq_wait": waited,
            "machine_busy": busy,
            "other": other,
            "top_others": [f"{label} {100 * d:.0f}%" for d, label in others[:4] if d >= 0.01],
        }


# ---------------------------------------------------------------------------------------------
# databases


def mariadb_url(server: str) -> str:
    return f"{server.rstrip('/')}/{DB_PREFIX}{secrets.token_hex(6)}"


async def drop_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    from tarsus.store import drop_database as drop

    name = make_url(url).database or ""
    if not name.startswith(DB_PREFIX) or not name[len(DB_PREFIX) :].isalnum():
        raise ValueError(f"refusing to drop {name!r}: not a database this bench created")
    await drop(url)


async def with_store(url: str, action: Callable[[Any], Any]) -> Any:
    from tarsus.store import open_store

    store = await open_store(url)
    try:
        return await action(store)
    finally:
        await store.close()


async def db_version(url: str) -> str:
    from sqlalchemy import text

    async def version(store: Any) -> str:
        async with store.connect() as conn:
            return str((await conn.execute(text("SELECT VERSION()"))).scalar())

    return await with_store(url, version)


# ---------------------------------------------------------------------------------------------
# one database


def run_db(kind: str, args: argparse.Namespace, cluster: Cluster, log_dir: Path) -> dict[str, Any]:
    """Every measurement on one database; the result as a dict (``failed`` on an error)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tarsus-bench-registry-{kind}-"))
    res: dict[str, Any] = {"db": kind, "loadavg": [os.getloadavg()]}
    procs: dict[str, Proc] = {}
    own: OwnMariaDB | None = None
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'tarsus.db'}"
    elif args.mariadb == "own":
        own = OwnMariaDB(tmp / "mariadb", None if args.no_pin else LOADGEN_CPU)
        try:
            own.start()
        except (AssertionError, RuntimeError, OSError, subprocess.SubprocessError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            return {**res, "failed": f"the bench's own MariaDB: {e}"}
        url = mariadb_url(own.server_url)
        res["mariadb_server"] = "own" + ("" if args.no_pin else f", CPU {LOADGEN_CPU}")
    else:
        url = mariadb_url(args.mariadb)
        res["mariadb_server"] = "shared"
    cpu_reg = None if args.no_pin else REGISTRY_CPU
    cpu_gen = None if args.no_pin else LOADGEN_CPU
    layout = [
        "--nodes",
        str(cluster.nodes),
        "--servers-per-node",
        str(cluster.servers_per_node),
        "--replicas",
        str(cluster.replicas),
    ]
    loadgen = [PY, str(BENCH / "registry_loadgen.py")]
    probe = probe_options(args.probe_priority)
    res["probe"] = f"SCHED_FIFO {PROBE_FIFO}" if probe else "normal"
    timeline: list[tuple[float, str]] = res.setdefault("timeline", [])

    def say(text: str, **kw: Any) -> None:
        """Progress: printed (unless --quiet) and kept with its time in the results, which
        places the registry's longest stall (``max_stall_at``) in the run."""
        timeline.append((time.time(), text))
        if not args.quiet:
            print(text, **kw)

    try:
        t0 = time.perf_counter()
        asyncio.run(with_store(url, lambda store: seed(store, cluster)))
        res["seed_s"] = time.perf_counter() - t0
        res["db_version"] = (
            f"SQLite {sqlite3.sqlite_version}"
            if kind == "sqlite"
            else "MariaDB " + asyncio.run(db_version(url)).split("-")[0]
        )
        say(f"[{kind}] seeded {cluster.instances:,} instances in {res['seed_s']:.1f}s", flush=True)

        reg = procs["registry"] = Proc(
            f"{kind}-registry",
            [PY, str(BENCH / "registry_server.py"), "--url", url,
             "--stall-stacks", str(args.stall_stacks),
             "--cpu-limit", str(args.cpu_limit),
             *([] if cpu_reg is None else ["--worker-cpu", LOADGEN_CPU])],
            log_dir,
            cpu_reg,
        )  # fmt: skip
        ready = reg.wait("ready", timeout=600)
        res["ready"] = ready
        started_at = time.monotonic()
        say(
            f"[{kind}] registry up: {ready['instances']:,} instances, full load "
            f"{ready['start_s']:.2f}s",
            flush=True,
        )

        def stalls() -> dict[str, Any]:
            """The registry's event-loop stalls since the last call."""
            reg.send("stalls")
            return reg.wait("stalls", timeout=30)

        def load(what: str) -> dict[str, Any]:
            reg.send(f"load {what}")
            return reg.wait("loaded", timeout=600)

        res["incr_none"] = [load("incr") for _ in range(3)]
        res["full"] = load("full")
        res["changed_instances"] = asyncio.run(
            with_store(url, lambda store: change_servers(store, cluster, args.change_share))
        )
        res["incr_changed"] = [load("incr") for _ in range(3)]
        res["pre_phase_s"] = time.monotonic() - started_at

        ka = procs["keepalive"] = Proc(
            f"{kind}-keepalive",
            [
                *loadgen,
                "keepalive",
                "--port",
                str(ready["registry_port"]),
                *layout,
                "--conns",
                str(args.conns),
                "--period",
                str(args.period),
            ],
            log_dir,
            cpu_gen,
        )
        ka.wait("ready", timeout=120)
        mariadbd = (
            (own.process if own is not None else find_mariadbd()) if kind == "mariadb" else None
        )
        # warm-up: every node has beaten once and the flushes are in their steady state
        time.sleep(args.period + 2 * FLUSH_INTERVAL)
        ka.send("mark keepalive")
        ka.wait("marked", timeout=30)
        say(f"[{kind}] keepAlive window: {args.duration:.0f}s", flush=True)
        reg.send("tasks")
        reg.wait("tasks", timeout=30)
        stalls()
        win = Window({"registry": reg, "keepalive": ka}, mariadbd).start()
        time.sleep(args.duration)
        res["w_keepalive"] = win.end()
        res["stalls_keepalive"] = stalls()
        reg.send("tasks")
        res["tasks_keepalive"] = reg.wait("tasks", timeout=30)["tasks"]
        reg.send("rss")
        res["rss_mb"] = reg.wait("rss", timeout=30)["rss_mb"]

        def lookup_phase(key: str, what: str, options: list[str], duration: float) -> None:
            """One lookup client run under the keepAlive load, its window measured; run again
            (bounded) while other work kept the registry waiting for its CPU, keeping the
            least disturbed attempt."""
            ka.send(f"mark {key}")
            ka.wait("marked", timeout=30)
            attempts: list[dict[str, Any]] = []
            for attempt in range(1 + args.retries):
                say(f"[{kind}] lookups, {what}: {duration:.0f}s"
                    + (f" (attempt {attempt + 1})" if attempt else ""), flush=True)  # fmt: skip
                lk = procs[key] = Proc(
                    f"{kind}-{key}-{attempt + 1}",
                    [*loadgen, "lookup", "--port", str(ready["query_port"]),
                     *layout, *options, "--warmup", str(args.lookup_warmup),
                     "--duration", str(duration)],
                    log_dir,
                    cpu_gen,
                )  # fmt: skip
                lk.wait("window", timeout=120)
                stalls()
                win = Window({"registry": reg, "keepalive": ka, "lookups": lk}, mariadbd)
                win.start()
                lk.wait("window_end", timeout=duration + 60)
                window = win.end()
                window["stalls"] = stalls()
                done = lk.wait("done", timeout=60)
                lk.close()
                del procs[key]
                attempts.append({"window": window, "done": done})
                if window["runq_wait"].get("registry", 0.0) <= args.max_wait:
                    break
            best = min(attempts, key=lambda x: x["window"]["runq_wait"].get("registry", 0.0))
            res[f"w_{key}"] = best["window"]
            res[key] = best["done"]
            res[f"{key}_attempts"] = [
                {
                    "p99_ms": x["done"]["window"]["p99_ms"],
                    "runq_wait": x["window"]["runq_wait"].get("registry"),
                    "calls_per_s": x["done"]["window"]["calls_per_s"],
                }
                for x in attempts
            ]

        rate = ["--rate", str(args.lookup_rate), "--conns", str(args.lookup_conns)]
        # the steady-rate probes at real-time priority (--probe-priority); the full-speed one
        # would starve its CPU's other processes at that priority, so it runs as any other
        lookup_phase("lookups", "QueryFProxy at a steady rate", [*rate, *probe],
                     args.lookup_duration)  # fmt: skip
        lookup_phase("lookups_raw", "raw frames at a steady rate", [*rate, *probe, "--raw"],
                     args.lookup_duration)  # fmt: skip
        lookup_phase(
            "max",
            "raw frames at full speed",
            ["--max", "--conns", str(args.max_conns), "--inflight", str(args.max_inflight)],
            args.max_duration,
        )

        ka.send("mark tail")
        ka.wait("marked", timeout=30)
        stopped_at = datetime.datetime.now()
        ka.send("stop")
        done = ka.wait("done", timeout=60)
        ka.close()
        del procs["keepalive"]
        res["keepalive"] = {k: v for k, v in done.items() if k != "last_round"}
        time.sleep(FLUSH_INTERVAL + 1.5)  # the registry's next flush writes the last beats
        since = (stopped_at - datetime.timedelta(seconds=args.period + 1)).replace(microsecond=0)
        res["check"] = asyncio.run(
            with_store(
                url, lambda store: check_heartbeats(store, cluster, done["last_round"], since)
            )
        )
        reg.send("stop")
        res["stopped"] = reg.wait("stopped", timeout=60)
        reg.close()
        del procs["registry"]
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        res["failed"] = str(e)
        print(f"[{kind}] FAILED: {e}", file=sys.stderr, flush=True)
    finally:
        for proc in procs.values():
            with contextlib.suppress(Exception):
                proc.p.kill()
            proc.close(timeout=5)
        res["loadavg"].append(os.getloadavg())
        if own is not None:
            own.stop()
        elif kind == "mariadb":
            try:
                asyncio.run(drop_database(url))
            except Exception as e:
                print(f"[{kind}] could not drop {url}: {e}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return res


# ---------------------------------------------------------------------------------------------
# tables


def ms(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def median_of(loads: list[dict[str, Any]], key: str) -> float:
    return statistics.median(x[key] for x in loads)


def figures(r: dict[str, Any]) -> dict[str, Any]:
    """The numbers the tables show, from one database's result."""
    if "failed" in r and "w_keepalive" not in r:
        return {}
    f: dict[str, Any] = {}
    ready = r.get("ready", {})
    f["db_version"] = r.get("db_version", r["db"])
    f["instances"] = ready.get("instances")
    f["servants"] = ready.get("servants")
    f["seed_s"] = r.get("seed_s")
    f["start_s"], f["start_cpu_s"] = ready.get("start_s"), ready.get("start_cpu_s")
    if "full" in r:
        f["full_s"], f["full_cpu_s"] = r["full"]["wall_s"], r["full"]["cpu_s"]
        f["full_stall_ms"] = r["full"]["max_stall_ms"]
    if "incr_none" in r:
        f["incr_none_ms"] = 1000 * median_of(r["incr_none"], "wall_s")
        f["incr_none_cpu_ms"] = 1000 * median_of(r["incr_none"], "cpu_s")
    if "incr_changed" in r:
        f["incr_changed_ms"] = 1000 * median_of(r["incr_changed"], "wall_s")
        f["incr_changed_cpu_ms"] = 1000 * median_of(r["incr_changed"], "cpu_s")
        f["incr_changed_stall_ms"] = max(x["max_stall_ms"] for x in r["incr_changed"])
        f["changed_instances"] = r.get("changed_instances")
    f["rss_mb"] = r.get("rss_mb")
    w = r.get("w_keepalive")
    if w:
        f["cpu_keepalive"] = w["share"].get("registry")
        f["mariadbd_keepalive"] = w["share"].get("mariadbd")
        f["gen_keepalive"] = w["share"].get("keepalive")
    tasks = r.get("tasks_keepalive")
    if tasks:
        f["tasks"] = "; ".join(
            f"{name} {len(v)}x {1000 * statistics.median(v):.1f} / {1000 * max(v):.1f} ms"
            for name, v in tasks.items()
            if v
        )
    ka = r.get("keepalive", {}).get("buckets", {}).get("keepalive")
    if ka:
        f["ka_rate"] = ka["calls_per_s"]
        f["ka_p50"], f["ka_p99"], f["ka_max"] = ka["p50_ms"], ka["p99_ms"], ka["max_ms"]
        f["ka_lag_p99"] = ka["send_lag_p99_ms"]
    if "keepalive" in r:
        f["ka_errors"] = sum(b["errors"] for b in r["keepalive"]["buckets"].values())
    for key, pre in (("lookups", "lk"), ("lookups_raw", "raw")):
        lk = r.get(key)
        if not lk:
            continue
        win = lk["window"]
        f[f"{pre}_rate"] = win["calls_per_s"]
        f[f"{pre}_p50"], f[f"{pre}_p99"], f[f"{pre}_max"] = (
            win["p50_ms"],
            win["p99_ms"],
            win["max_ms"],
        )
        f[f"{pre}_lag_p99"] = win["send_lag_p99_ms"]
        if "kernel_p99_ms" in win:  # raw frames: to the kernel's receive time of the answer
            f["kraw_p50"], f["kraw_p99"], f["kraw_max"] = (
                win["kernel_p50_ms"],
                win["kernel_p99_ms"],
                win["kernel_max_ms"],
            )
        warm = lk.get("warmup", {})
        f[f"{pre}_errors"] = win["errors"] + warm.get("errors", lk.get("warmup_errors", 0))
        f[f"{pre}_cpu"] = r[f"w_{key}"]["share"].get("registry")
        f[f"{pre}_runq"] = r[f"w_{key}"]["runq_wait"].get("registry")
    stalls = {"ka": r.get("stalls_keepalive")}
    for key, pre in (("lookups", "lk"), ("lookups_raw", "raw"), ("max", "max")):
        stalls[pre] = r.get(f"w_{key}", {}).get("stalls")
    for pre, st in stalls.items():
        if st:
            f[f"cpu_{pre}"] = st.get("cpu", {}).get("longest_ms")
            f[f"stall_{pre}"] = st["max_stall_ms"]
            f[f"stall5_{pre}"] = st["stalls_over_5ms"]
            f[f"stall1_{pre}"] = st["stalls_over_1ms"]
    served = [f[f"stall_{pre}"] for pre, _ in STALL_WINDOWS if f"stall_{pre}" in f]
    if served:
        f["stall_served"] = max(served)
    if "stopped" in r and "max_stall_ms" in r["stopped"]:
        f["stall_run"] = r["stopped"]["max_stall_ms"]
        f["cpu_run"] = r["stopped"]["cpu_longest_ms"]
        f["cpu_run_in"] = r["stopped"]["cpu_longest_in"]
        f["gc_run"] = r["stopped"].get("gc_longest_ms")
        f["stall_stop"] = r["stopped"].get("stopping_stall_ms")
    mx = r.get("max")
    if mx:
        win = mx["window"]
        f["max_rate"] = win["calls_per_s"]
        f["max_p50"], f["max_p99"] = win["p50_ms"], win["p99_ms"]
        f["max_errors"] = win["errors"] + mx["warmup_errors"]
        f["max_verified"] = mx["verified_in_warmup"]
        f["cpu_max"] = r["w_max"]["share"].get("registry")
        f["gen_max"] = r["w_max"]["share"].get("lookups")
    c = r.get("check")
    if c:
        f["check"] = c
    return f


def results_table(data: dict[str, Any]) -> str:
    dbs = [r["db"] for r in data["results"]]
    figs = {r["db"]: figures(r) for r in data["results"]}
    label = {"sqlite": "SQLite", "mariadb": "MariaDB"}
    rows = [
        "| | " + " | ".join(label.get(d, d) for d in dbs) + " |",
        "|---|" + "---:|" * len(dbs),
    ]

    def row(name: str, fmt: Callable[[dict[str, Any]], str]) -> None:
        cells = []
        for d in dbs:
            f = figs[d]
            try:
                cells.append(fmt(f) if f else "failed")
            except (KeyError, TypeError):
                cells.append("n/a")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")

    row("database", lambda f: f["db_version"])
    row(
        "endpoints in the route cache (servants)",
        lambda f: f"{f['instances']:,} ({f['servants']:,})",
    )
    row("seeding, bulk INSERT (not the registry)", lambda f: f"{f['seed_s']:.1f} s")
    row(
        "**initial full load** (`app.start()`): wall (CPU)",
        lambda f: f"**{f['start_s']:.2f} s** ({f['start_cpu_s']:.2f} s)",
    )
    row(
        "periodic full reload: wall (CPU), longest loop stall",
        lambda f: f"{f['full_s']:.2f} s ({f['full_cpu_s']:.2f} s), {f['full_stall_ms']:.0f} ms",
    )
    row(
        "**incremental load**, nothing changed: wall (CPU)",
        lambda f: f"**{f['incr_none_ms']:.1f} ms** ({f['incr_none_cpu_ms']:.1f} ms)",
    )
    row(
        "**incremental load**, 1% of servers changed: wall (CPU), stall",
        lambda f: (
            f"**{f['incr_changed_ms']:.0f} ms** ({f['incr_changed_cpu_ms']:.0f} ms), "
            f"{f['incr_changed_stall_ms']:.0f} ms [{f['changed_instances']:,} instances]"
        ),
    )
    row("registry memory (RSS) with the routes", lambda f: f"{f['rss_mb']:.0f} MB")
    row(
        "keepAlive calls/s (connections)",
        lambda f: f"{f['ka_rate']:,.0f}/s ({data['args']['conns']})",
    )
    row(
        "**registry CPU, keepAlive only** (% of one core)",
        lambda f: f"**{pct(f['cpu_keepalive'])}**",
    )
    row(
        "keepAlive p50 / p99 / max",
        lambda f: f"{ms(f['ka_p50'])} / {ms(f['ka_p99'])} / {ms(f['ka_max'], '.1f')} ms",
    )
    row("keepAlive errors (whole run)", lambda f: f"{f['ka_errors']:,}")
    row("the registry's loops in that window: runs, wall p50 / max", lambda f: f["tasks"])
    row(
        "**every heartbeat in the DB at the end**",
        lambda f: (
            f"**{'yes' if f['check']['ok'] else 'NO'}** ({f['check']['last_value']:,}"
            f"/{f['check']['nodes']:,} nodes)"
        ),
    )
    row(
        "mariadbd CPU during keepAlive",
        lambda f: (
            pct(f["mariadbd_keepalive"])
            if f.get("mariadbd_keepalive") is not None
            else "in registry"
        ),
    )
    rate = f"{data['args']['lookup_rate']:,.0f}/s"
    for pre, how in (("lk", "through `QueryFProxy`"), ("raw", "raw frames")):
        row(
            f"**lookups at {rate}**, {how}, under keepAlive: p50 / p99 / max",
            lambda f, p=pre: (
                f"**{ms(f[p + '_p50'])} / {ms(f[p + '_p99'])}** / {ms(f[p + '_max'], '.1f')} ms"
            ),
        )
        row(
            f"registry CPU (run-queue wait), keepAlive + lookups {how}",
            lambda f, p=pre: f"{pct(f[p + '_cpu'])} ({1000 * f[p + '_runq']:.0f} ms/s)",
        )
        row(f"lookup errors, {how}", lambda f, p=pre: f"{f[p + '_errors']:,}")
    row(
        f"**lookups at {rate}**, raw frames, to the kernel's receive time of each answer "
        "(`SO_TIMESTAMPNS`: the load generator's own lateness left out): p50 / p99 / max",
        lambda f: (
            f"**{ms(f['kraw_p50'])} / {ms(f['kraw_p99'])}** / {ms(f['kraw_max'], '.1f')} ms"
            if "kraw_p99" in f
            else "n/a"
        ),
    )
    for pre, what in (*STALL_WINDOWS, ("max", "+ max lookups (loop saturated)")):
        row(
            f"event-loop stalls, {what}: longest (over 1 ms, over 5 ms); most CPU in one callback",
            lambda f, p=pre: (
                f"{f['stall_' + p]:.1f} ms ({f['stall1_' + p]:,}, {f['stall5_' + p]:,}); "
                f"{f['cpu_' + p]:.2f} ms"
            ),
        )
    row(
        "**longest event-loop stall** of the run, serving (loads included); **most CPU "
        "in one callback** (where)",
        lambda f: f"**{f['stall_run']:.1f} ms**; **{f['cpu_run']:.2f} ms** (`{f['cpu_run_in']}`)",
    )
    row(
        "longest garbage-collector pause of the run once serving", lambda f: f"{f['gc_run']:.1f} ms"
    )
    row(
        "longest event-loop stall while stopping (draining, closing the database; not counted "
        "above)",
        lambda f: "-" if f.get("stall_stop") is None else f"{f['stall_stop']:.1f} ms",
    )
    row(
        f"**max lookups/s** under keepAlive ({data['args']['max_conns']}x"
        f"{data['args']['max_inflight']} in flight)",
        lambda f: f"**{f['max_rate']:,.0f}/s** (p50 {ms(f['max_p50'])} ms)",
    )
    row("registry CPU at max lookups", lambda f: pct(f["cpu_max"]))
    return "\n".join(rows)


def targets_table(data: dict[str, Any]) -> str:
    dbs = [r["db"] for r in data["results"]]
    figs = {r["db"]: figures(r) for r in data["results"]}
    label = {"sqlite": "SQLite", "mariadb": "MariaDB"}
    nodes = data["args"]["nodes"]
    rows = [
        "| target | kind | " + " | ".join(label.get(d, d) for d in dbs) + " |",
        "|---|---|" + "---|" * len(dbs),
    ]

    def line(name: str, kind: str, key: str, limit: float, show: Callable[[float], str]) -> None:
        cells = []
        for d in dbs:
            v = figs[d].get(key)
            cells.append(
                "failed" if v is None else f"{show(v)} {'yes' if v <= limit else '**no**'}"
            )
        rows.append(f"| {name} | {kind} | " + " | ".join(cells) + " |")

    line(
        f"registry CPU < {MUST_CPU:.0%} of one core, {nodes:,} nodes",
        "must",
        "cpu_keepalive",
        MUST_CPU,
        pct,
    )
    for limit, kind in ((MUST_P99_MS, "must"), (GOAL_P99_MS, "goal")):
        if kind == "goal":
            line(f"registry CPU < {GOAL_CPU:.0%} of one core", "goal", "cpu_keepalive",
                 GOAL_CPU, pct)  # fmt: skip
        for pre, how in (
            ("lk", "`QueryFProxy`"),
            ("raw", "raw frames"),
            ("kraw", "raw frames, kernel receive time"),
        ):
            line(f"lookup p99 ≤ {limit:g} ms under that load, {how}", kind, f"{pre}_p99",
                 limit, lambda v: f"{v:.2f} ms")  # fmt: skip
    line(f"longest event-loop stall ≤ {MUST_STALL_MS:g} ms, keepAlive and lookups", "must",
         "stall_served", MUST_STALL_MS, lambda v: f"{v:.1f} ms")  # fmt: skip
    line(f"longest event-loop stall ≤ {MUST_STALL_MS:g} ms, whole run (reloads too)", "must",
         "stall_run", MUST_STALL_MS, lambda v: f"{v:.1f} ms")  # fmt: skip
    line(f"most CPU in one event-loop callback ≤ {MUST_STALL_MS:g} ms, whole run", "must",
         "cpu_run", MUST_STALL_MS, lambda v: f"{v:.2f} ms")  # fmt: skip
    cells = []
    for d in dbs:
        c = figs[d].get("check")
        cells.append("failed" if c is None else ("yes" if c["ok"] else "**NO**"))
    rows.append(
        "| every node's last heartbeat in `t_node_info` | check | " + " | ".join(cells) + " |"
    )
    fl = data.get("floor")
    if fl and "max_stall_ms" in fl:
        rows.append(
            f"| the machine's floor: longest stall of an empty event loop on CPU {REGISTRY_CPU}, "
            f"{fl['seconds']:.0f} s before the runs (bench/loop_floor.py) | - | "
            + " | ".join(
                (
                    f"{fl['max_stall_ms']:.1f} ms ({fl['stalls_over_5ms']:,} over 5 ms)"
                    if fl["max_stall_ms"]
                    else "none over 1 ms"
                )
                for _ in dbs
            )
            + " |"
        )
    return "\n".join(rows)


def measure_floor(args: argparse.Namespace) -> dict[str, Any]:
    """bench/loop_floor.py on the registry's CPU for ``--floor`` seconds, nothing of the bench
    running: the longest stall this machine gives an event loop that does nothing."""
    if not args.floor:
        return {}
    cpu = None if args.no_pin else REGISTRY_CPU
    argv = pinned(cpu, [PY, str(BENCH / "loop_floor.py"), "--duration", str(args.floor)])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.floor + 60)
    if proc.returncode != 0:
        return {"failed": proc.stderr.strip()[-500:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def load_table(data: dict[str, Any]) -> str:
    """How busy the machine was in each measured window."""
    rows = [
        "| database | window | seconds | attempts | registry CPU | registry run-queue wait "
        "| load generators | their run-queue wait | mariadbd | other processes | machine busy "
        "(of 2 cores) | busiest other processes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    names = {
        "keepalive": "keepAlive",
        "lookups": "+ lookups (QueryFProxy)",
        "lookups_raw": "+ lookups (raw)",
        "max": "+ max lookups",
    }
    gens = ("keepalive", "lookups")
    for r in data["results"]:
        for key, name in names.items():
            w = r.get(f"w_{key}")
            if not w:
                continue
            s, q = w["share"], w["runq_wait"]
            tries = r.get(f"{key}_attempts") or []
            tried = "1"
            if len(tries) > 1:
                tried = "; ".join(
                    f"{1000 * (t['runq_wait'] or 0):.0f} ms/s → p99 {ms(t['p99_ms'])} ms"
                    for t in tries
                )
            rows.append(
                f"| {r['db']} | {name} | {w['seconds']:.0f} | {tried} | {pct(s.get('registry'))} "
                f"| {1000 * q.get('registry', 0):.0f} ms/s "
                f"| {pct(sum(v for k, v in s.items() if k in gens))} "
                f"| {1000 * sum(v for k, v in q.items() if k in gens):.0f} ms/s "
                f"| {pct(s.get('mariadbd'))} | {pct(w['other'])} | {pct(w['machine_busy'])} "
                f"| {'; '.join(w['top_others']) or '-'} |"
            )
    loads = [
        f"{r['db']} {' / '.join(f'{x:.2f}' for x in r['loadavg'][0])} before, "
        f"{' / '.join(f'{x:.2f}' for x in r['loadavg'][1])} after"
        for r in data["results"]
        if len(r.get("loadavg") or ()) == 2
    ]
    if loads:
        rows += ["", f"Load average (`uptime`, 1 / 5 / 15 min): {'; '.join(loads)}."]
    return "\n".join(rows)


def check_lines(data: dict[str, Any]) -> list[str]:
    out = []
    limit = data["args"].get("max_wait", 0.04)
    for r in data["results"]:
        disturbed = [
            f"{key} {1000 * r[f'w_{key}']['runq_wait'].get('registry', 0):.0f} ms/s"
            for key in ("keepalive", "lookups", "lookups_raw", "max")
            if f"w_{key}" in r and r[f"w_{key}"]["runq_wait"].get("registry", 0) > limit
        ]
        if disturbed:
            out.append(
                f"- **{r['db']}: disturbed by other work** (the registry waited for its CPU "
                f"more than {1000 * limit:.0f} ms/s in: {', '.join(disturbed)}); its "
                "latencies are upper bounds, re-run on a quiet machine"
            )
        if "failed" in r:
            out.append(f"- **{r['db']}: FAILED**: {r['failed']}")
        c = r.get("check")
        if not c:
            continue
        verdict = "ok" if c["ok"] else "FAILED"
        out.append(
            f"- {r['db']} heartbeat check {verdict}: {c['nodes']:,} nodes, {c['recent']:,} with "
            f"`last_heartbeat` in the last {data['args']['period'] + 1:g} s of the run, "
            f"{c['last_value']:,} holding the last round they sent, {c['active']:,} active; "
            f"server states {'as seeded' if c['server_states_kept'] else 'CHANGED: '}"
            f"{'' if c['server_states_kept'] else c['server_states']}"
            + (f"; e.g. {', '.join(c['examples'])}" if c["examples"] else "")
        )
        for what, key in (("lookup", "lookups"), ("max-lookup", "max")):
            first = (r.get(key) or {}).get("window", {}).get("first_errors")
            if first:
                out.append(f"- {r['db']} {what} errors, first: {'; '.join(first)}")
    return out


# ---------------------------------------------------------------------------------------------
# markdown


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for dist in ("SQLAlchemy", "aiosqlite", "asyncmy"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} not installed")
    return ", ".join(parts)


def mariadb_server_text(data: dict[str, Any]) -> str:
    """Which MariaDB server the run used (bench/own_mariadb.py), as the docs say it."""
    used = {r.get("mariadb_server") for r in data["results"] if r["db"] == "mariadb"}
    if used == {f"own, CPU {LOADGEN_CPU}"}:
        return (
            "a server of the bench's own (bench/own_mariadb.py, the shared server's settings), "
            f"pinned to CPU {LOADGEN_CPU} with the load generators, so that its threads never "
            "take the registry's CPU and no other user of the machine's shared server queries "
            "it meanwhile"
        )
    if used == {"own"}:
        return "a server of the bench's own (bench/own_mariadb.py), not pinned"
    return "the machine's shared server, on any CPU (the registry's too)"


def probe_text(data: dict[str, Any]) -> str:
    """How the steady-rate lookup probes were scheduled (``--probe-priority``)."""
    used = {r.get("probe", "normal") for r in data["results"]}
    if used == {f"SCHED_FIFO {PROBE_FIFO}"}:
        return (
            f"The steady-rate probes ran their windows at real-time priority (`SCHED_FIFO` "
            f"{PROBE_FIFO}): a client on a machine of its own reads its answer when it "
            "arrives, where a probe sharing a CPU with `mariadbd` and the keepAlive load "
            "reads it when they yield. "
            "The kernel receive time needs no priority, and checks that it changes nothing "
            "on the registry's side. The full-speed phase ran at normal priority."
        )
    if used == {"normal"}:
        return "The probes ran at normal priority (`--probe-priority normal`)."
    return (
        "The probes' priority differed between the databases: "
        + ", ".join(f"{r['db']} {r.get('probe', 'normal')}" for r in data["results"])
        + "."
    )


def section(data: dict[str, Any]) -> str:
    a = data["args"]
    dbs = ", ".join(r["db_version"] for r in data["results"] if "db_version" in r)
    cluster = Cluster(a["nodes"], a["servers_per_node"], a["replicas"])
    return "\n".join(
        [
            BEGIN,
            "## Registry: route cache, 10,000 nodes, lookups",
            "",
            "The registry's load grows with the cluster, not with one call: every node calls "
            "`RegistryObj.keepAlive` every 10 s (10,000 nodes: 1,000 calls/s, all ending in "
            "database writes), every client's locator asks `QueryObj` where servants run, and "
            "the route cache of every instance is rebuilt from the database every 10 s "
            "(incremental) and every 300 s (full). This measures whether one registry process "
            "holds a 10,000-node cluster, on each database, and what its loads cost.",
            "",
            f"Measured {data['date']} on {data['cpu']} (`nproc` {data['nproc']}), "
            f"{data['versions']}; {dbs}. Each database: one run.",
            "",
            f"- **Cluster** (bench/registry_cluster.py): {cluster.nodes:,} nodes x "
            f"{cluster.servers_per_node} servers = {cluster.instances:,} instances of "
            f"{cluster.servers:,} servers ({cluster.replicas} nodes each), one adapter each; "
            "about 92% routable, the rest standby, stopped, down, starting or flow-off; 20% of "
            "the servers IDC-grouped (two IDCs, rules on /24s, a priority row), 10% in sets. "
            "Seeded with bulk INSERTs, every `registry_timestamp` a day old.",
            "- **Registry**: its own process (bench/registry_server.py): `add_registry` on an "
            "`Application`, default `RegistrySettings`, stdlib asyncio, its event loop pinned "
            f"to CPU {REGISTRY_CPU} and its other threads (aiosqlite's, which run the SQLite "
            f"statements) to CPU {LOADGEN_CPU}, as an unpinned process gets another core for "
            "them (bench/registry_server.py, `WorkerThreads`). Load generators "
            "(bench/registry_loadgen.py, our client) pinned "
            f"to CPU {LOADGEN_CPU}. CPU is psutil `cpu_times` (user + system, all threads) "
            "over the window, as % of one core. On SQLite the database work runs in the "
            "registry process (aiosqlite's thread) and is counted; on MariaDB it runs in "
            "`mariadbd` (shown apart, in the machine-load table): "
            + mariadb_server_text(data)
            + ".",
            "- **Loads**: the initial full load is `app.start()` (first load, then listening); "
            "the periodic full reload and the incremental loads are `Registry.load()` called "
            "in the running registry (incremental: median of 3; *1% changed* = every "
            f"{round(1 / a['change_share'])}th server got a new `patch_version` and "
            "`registry_timestamp`, as a deploy writes them). The stall is the longest the "
            "event loop was late during the load (below).",
            f"- **keepAlive**: {cluster.nodes:,} simulated nodes, each every {a['period']:g} s, "
            f"evenly spread, over {a['conns']} connections (node n on connection n mod "
            f"{a['conns']}), open loop; after a {a['period']:g} s warm-up, a "
            f"{a['duration']:g} s window with no lookups. Latency: from the call to "
            "its answer in the client. At the end: every node's `last_heartbeat` within the "
            "last period, its `load_avg5` = the round number it sent last, no node or server "
            "touched by the dead-node sweep.",
            f"- **Lookups**: `findObjectByIdInSameGroup` of random servants from 127.0.0.1 (IDC "
            f"a), keepAlive still running, each phase after a {a['lookup_warmup']:g} s warm-up: "
            f"{a['lookup_rate']:,.0f}/s over {a['lookup_conns']} connections for "
            f"{a['lookup_duration']:g} s through `QueryFProxy` (what a Tarsus locator sees; "
            "every answer checked: code 0, endpoints of that servant), the same rate of "
            "pre-encoded request frames (the client then costs little, so the latency is "
            f"mostly the registry's), and {a['max_conns']}x{a['max_inflight']} pre-encoded "
            f"requests in flight for {a['max_duration']:g} s (raw answers checked in full "
            "during the warm-up). Open loop at a steady rate; latency from the call (or the "
            "write) to its answer, as the load generator reads it; for the raw frames at a "
            "steady rate also to the time the kernel received the answer (`SO_TIMESTAMPNS`, "
            "read with `recvmsg`), which leaves out how late the load generator itself ran "
            "to read it (it shares its CPU with the keepAlive load generator and mariadbd): "
            "the registry's and loopback's part of the latency alone. " + probe_text(data),
            "- **The registry's loops**: wall time of each `flush` (the queued keepAlives "
            "written in statements of 100 nodes paced over half a second, so mostly waiting), "
            "`reap` (own heartbeat + incremental load) and `sweep_nodes` in the keepAlive "
            "window, timed in the registry process.",
            '- **Event-loop stalls** (docs/registry.md, "Latency"): in the registry process, '
            "a task sleeping 1 ms in a loop all along; a *stall* is how late it woke (the loop "
            "ran something else, a garbage collection, or the process waited for a CPU: on a "
            "busy machine this is mostly the machine). *The machine's floor* (last row of the "
            "targets): the same watch in a process that does nothing else, pinned to CPU "
            f"{REGISTRY_CPU} before the runs (bench/loop_floor.py); no registry stalls "
            "less. *Most CPU in one callback*: the CPU time of the loop's thread in its "
            "longest callback (`asyncio.Handle._run` timed), what the registry itself makes "
            "lookups wait (on this VM it too grows with the machine's other work: a step "
            "measures up to several times its cost alone). The GC pause: `gc.callbacks`. "
            "Stalls and callbacks count from the end of the initial load (`ready`) to the "
            "stop; the run includes the periodic full reload and the loads above.",
            "",
            results_table(data),
            "",
            targets_table(data),
            "",
            *check_lines(data),
            "",
            "How loaded the machine was in each window (% of one core). *Run-queue wait*: time "
            "the threads of a process were ready to run but waited for a CPU (schedstat); for "
            "the registry it goes straight into latencies. A lookup phase during which the "
            f"registry waited more than {1000 * a.get('max_wait', 0.04):.0f} ms/s was run "
            f"again (at most {a.get('retries', 0)} times), keeping the least disturbed attempt "
            "(*attempts* lists each one's registry wait and lookup p99). *Other processes*: "
            "the CPU of every other process (other work on this shared machine, kernel "
            "threads included), except those that started and ended inside the window; "
            "*machine busy*: both CPUs, from /proc/stat's tick sampling (which under-counts "
            "short bursts).",
            "",
            load_table(data),
            "",
            *command_lines(data["command"]),
            END,
        ]
    )


def write_markdown(path: Path, text: str) -> None:
    replace_section(path, BEGIN, END, text)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "mariadb", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="small sizes, seconds; no docs")
    ap.add_argument("--nodes", type=int, help="simulated nodes (default 10000; 100 quick)")
    ap.add_argument("--servers-per-node", type=int, help="default 10 (5 quick)")
    ap.add_argument("--replicas", type=int, default=10, help="nodes per server (default 10)")
    ap.add_argument("--duration", type=float, help="keepAlive window, s (default 60; 3 quick)")
    ap.add_argument("--period", type=float, help="keepAlive period per node (default 10; 2 quick)")
    ap.add_argument("--conns", type=int, help="keepAlive connections (default 100; 10 quick)")
    ap.add_argument("--lookup-rate", type=float, help="lookups/s (default 1000; 200 quick)")
    ap.add_argument("--lookup-conns", type=int, default=10)
    ap.add_argument("--lookup-duration", type=float, help="s (default 20; 2 quick)")
    ap.add_argument("--lookup-warmup", type=float, help="s (default 2; 0.5 quick)")
    ap.add_argument("--max-duration", type=float, help="s (default 10; 2 quick)")
    ap.add_argument("--max-conns", type=int, default=4)
    ap.add_argument("--max-inflight", type=int, default=32)
    ap.add_argument("--change-share", type=float, default=0.01, help="servers changed (0.01)")
    ap.add_argument(
        "--mariadb",
        default=os.environ.get(
            "TARSUS_BENCH_MARIADB",
            "own" if own_mariadb.unavailable_reason() is None else "mysql://root@127.0.0.1:3306",
        ),
        help="'own': a mariadbd of the bench's own, pinned to the load generators' CPU "
        "(bench/own_mariadb.py; the default when mariadb-server is installed); else a server "
        "URL without database (a tarsus_bench_<hex> one is made and dropped)",
    )
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    ap.add_argument(
        "--probe-priority",
        choices=("fifo", "normal"),
        default="fifo",
        help="the steady-rate lookup probes' scheduling: 'fifo' (default; real-time, chrt -f "
        f"{PROBE_FIFO} from the window's start, where allowed) reads each answer as it "
        "arrives, not when the other processes on the load generators' CPU yield; 'normal' "
        "as any process",
    )
    ap.add_argument(
        "--max-wait",
        type=float,
        default=0.04,
        help="run a lookup phase again when the registry waited for its CPU more than this "
        "share of the window (default 0.04: 40 ms/s)",
    )
    ap.add_argument("--retries", type=int, help="extra attempts per lookup phase (2; 0 quick)")
    ap.add_argument(
        "--floor",
        type=float,
        help="seconds of an empty event loop on the registry's CPU before the runs, the "
        "machine's floor for the stalls (bench/loop_floor.py; default 30, 1 quick; 0: none)",
    )
    ap.add_argument(
        "--stall-stacks",
        type=float,
        default=0.0,
        metavar="MS",
        help="diagnosis: sample where the registry's event loop is during stalls over MS "
        "(saved with --json; it lowers the registry's switch interval and costs CPU)",
    )
    ap.add_argument(
        "--cpu-limit",
        type=float,
        default=0.5,
        metavar="MS",
        help="list the registry's event-loop callbacks that used more CPU than MS in each "
        "window (saved with --json; default 0.5)",
    )
    ap.add_argument("--json", metavar="PATH", help="also save the raw results as JSON")
    ap.add_argument("--from-json", metavar="PATH", help="render a --json file again, no run")
    ap.add_argument(
        "--write",
        metavar="MD",
        help=f"the markdown to update (default {DEFAULT_DOC} unless --quick)",
    )
    ap.add_argument("--no-write", action="store_true", help="do not touch any markdown")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    q = args.quick

    def default(name: str, full: Any, quick: Any) -> None:
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)

    default("nodes", 10_000, 100)
    default("servers_per_node", 10, 5)
    default("duration", 60.0, 3.0)
    default("period", 10.0, 2.0)
    default("conns", 100, 10)
    default("lookup_rate", 1000.0, 200.0)
    default("lookup_duration", 20.0, 2.0)
    default("lookup_warmup", 2.0, 0.5)
    default("max_duration", 10.0, 2.0)
    default("retries", 2, 0)
    default("floor", 30.0, 1.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
    else:
        try:
            cluster = Cluster(args.nodes, args.servers_per_node, args.replicas)
        except ValueError as e:
            print(e, file=sys.stderr)
            return 2
        kinds = ["sqlite", "mariadb"] if args.db == "both" else [args.db]
        log_dir = Path(tempfile.mkdtemp(prefix="tarsus-bench-registry-logs-"))
        started = time.monotonic()
        if not args.quiet and args.floor:
            print(f"the machine's floor: an empty event loop for {args.floor:g}s", flush=True)
        floor = measure_floor(args)
        results = [run_db(kind, args, cluster, log_dir) for kind in kinds]
        keep = {
            "nodes",
            "servers_per_node",
            "replicas",
            "duration",
            "period",
            "conns",
            "lookup_rate",
            "lookup_conns",
            "lookup_duration",
            "lookup_warmup",
            "max_duration",
            "max_conns",
            "max_inflight",
            "change_share",
            "retries",
            "max_wait",
        }
        data = {
            "date": datetime.date.today().isoformat(),
            "cpu": cpu_model(),
            "nproc": os.cpu_count(),
            "versions": versions(),
            "command": " ".join(
                [
                    ".venv/bin/python",
                    "bench/registry.py",
                    *(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
                ]
            ),
            "args": {k: v for k, v in vars(args).items() if k in keep},
            "results": results,
            "floor": floor,
            "elapsed_s": time.monotonic() - started,
            "logs": str(log_dir),
        }
    print()
    print(results_table(data))
    print()
    print(targets_table(data))
    print()
    for line in check_lines(data):
        print(line)
    print()
    print(load_table(data))
    print(f"\nrun: {data['elapsed_s']:.0f} s; process logs in {data['logs']}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1, default=str))
    target = None if args.no_write else (args.write or (None if args.quick else str(DEFAULT_DOC)))
    if target:
        write_markdown(Path(target), section(data))
        print(f"wrote {target}", file=sys.stderr)
    ok = all("failed" not in r and r.get("check", {}).get("ok") for r in data["results"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
