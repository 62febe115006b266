"""``tarsus up``: time from the command to a call by name that answers, cold and warm.

What a new user waits for after typing ``tarsus up``: the process is spawned
(``python -m tarsus up --data-dir <dir>``), and a client in this process calls
``Test.HelloServer.HelloObj.sayHello`` by name through the registry (``QueryObj`` on 17890)
until it answers. Then Ctrl-C (SIGINT), and a check that nothing is left running: no process
with ``--config=`` under the data directory, none of the ports still listening.

- **cold**: a fresh data directory: the store is created, examples/hello is packed, its
  virtual environment built, the server deployed and started;
- **warm**: ``tarsus up`` again on the directory the cold run before it left (the deployment
  is kept; the service is started again).

Runs alternate (cold i, then warm on its directory), ``--runs`` of each. Reported per kind:
median and max of spawn -> first answer (the issue's figure: must <= 3 s, goal <= 2 s), of the
"is up in X s" that ``tarsus up`` prints (its own clock, which starts after Python has started
and imported tarsus), of spawn -> that line, of one ``tarsus call`` CLI run once it is up (a new
process, as a user would type it) and of Ctrl-C -> exit.

The client is a fresh ``Communicator`` per attempt (no route cache on disk, 300 ms connect
timeout, 1 s call timeout), every 20 ms, all imports done before the spawn: its own startup
is not in the figure, and a refused early lookup is not remembered.

``tarsus up`` listens on upstream's fixed ports (17890, 17891, 12000, 19386, 18601). Before
every run the bench waits (``--port-wait`` seconds at most) until none of them is taken, and
fails naming the process that holds one.

Bytecode: this machine sets ``PYTHONDONTWRITEBYTECODE=1``, so ``tarsus`` (an editable
install) would be compiled from source at every start, which no installed copy does. The
children get ``PYTHONPYCACHEPREFIX`` in the bench's temporary directory instead, filled by one
unmeasured cold run first (not with ``--quick``); ``--env-bytecode`` keeps the environment as
it is.

    .venv/bin/python bench/up.py                  # 5 + 5 runs, writes docs/benchmarks.md
    .venv/bin/python bench/up.py --quick --no-write
    .venv/bin/python bench/up.py --processes --runs 3 --no-write   # tarsus up --processes
"""

from __future__ import annotations

import argparse
import asyncio
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
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from machine_load import LoadWindow, load_lines, machine_facts, pct
from report import add_output_arguments, command_lines, emit

import tarsus.idl
from tarsus.rpc.communicator import Communicator
from tarsus.testing import port_is_free

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BEGIN, END = "<!-- up:begin -->", "<!-- up:end -->"
DEFAULT_DOC = ROOT / "docs" / "benchmarks.md"
HELLO_IDL = ROOT / "examples" / "hello" / "Hello.tars"
LOCATOR = "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890"
SERVANT = "Test.HelloServer.HelloObj"
GREETING = "hello x, from Python"
#: upstream's ports, all of which ``tarsus up`` listens on
PORTS = {
    17890: "QueryObj",
    17891: "RegistryObj",
    12000: "AdminRegObj",
    19386: "node ServerObj",
    18601: "Test.HelloServer.HelloObj",
}
#: The issue's figures: spawn -> answering by name.
MUST_S, GOAL_S = 3.0, 2.0

Test = tarsus.idl.load(HELLO_IDL).Test
#: the client's "not yet" (refused, no endpoint) is expected here; keep stderr readable
logging.getLogger("tarsus").setLevel(logging.CRITICAL)


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# ports


def taken_ports() -> dict[int, str]:
    """Which of PORTS something listens on (or answers on), with who, when psutil can tell."""
    who: dict[int, str] = {}
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        conns = []
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in PORTS:
            label = "?"
            if c.pid:
                try:
                    cmd = " ".join(psutil.Process(c.pid).cmdline()).replace("\n", " ")
                    label = f"pid {c.pid}: {cmd[:120]}"
                except psutil.Error:
                    label = f"pid {c.pid}"
            who[c.laddr.port] = label
    for port in PORTS:
        if port not in who and not port_is_free(port):
            who[port] = "unknown process"
    return who


def wait_ports_free(budget: float) -> float:
    """Seconds waited until none of PORTS is taken; BenchError after ``budget``."""
    start = time.monotonic()
    told = False
    while True:
        taken = taken_ports()
        if not taken:
            return time.monotonic() - start
        if time.monotonic() - start > budget:
            desc = "; ".join(f"{p} ({PORTS[p]}) held by {w}" for p, w in sorted(taken.items()))
            raise BenchError(
                f"upstream's ports are taken, another Tars framework runs here: {desc}. "
                f"Waited {budget:.0f} s; stop it (or wait for it) and run again."
            )
        if not told:
            print(f"waiting for ports {sorted(taken)} to be free ...", file=sys.stderr)
            told = True
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# one run


def services_under(data_dir: Path) -> list[psutil.Process]:
    """Processes started with ``--config=`` from under ``data_dir`` (the services)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(a.startswith("--config=") for a in cmdline) and any(
            str(data_dir) in a for a in cmdline
        ):
            found.append(proc)
    return found


async def _call_once() -> None:
    async with Communicator(
        LOCATOR, cache_dir=None, timeout_ms=1000, connect_timeout_ms=300
    ) as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, SERVANT)
        ret, greeting = await hello.sayHello("x")
    if ret != 0 or greeting != GREETING:
        raise BenchError(f"unexpected answer: ret={ret} greeting={greeting!r}")


async def first_answer(proc: subprocess.Popen[bytes], timeout: float) -> tuple[float, int]:
    """Call by name until it answers: (monotonic time of the answer, attempts)."""
    deadline = time.monotonic() + timeout
    attempts = 0
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"tarsus up exited ({proc.returncode}) before answering")
        attempts += 1
        try:
            await _call_once()
            return time.monotonic(), attempts
        except BenchError:
            raise
        except Exception as e:  # refused, no endpoint yet, timeout: all mean "not yet"
            last = f"{type(e).__name__}: {e}"
        await asyncio.sleep(0.02)
    raise BenchError(f"no answer by name within {timeout:.0f} s (last: {last})")


def cli_call(env: dict[str, str]) -> float:
    """Wall time of one ``tarsus call`` by name, as a user types it."""
    argv = [PY, "-m", "tarsus", "call", "--locator", LOCATOR, "--idl", str(HELLO_IDL), SERVANT]
    t0 = time.monotonic()
    done = subprocess.run(
        [*argv, "sayHello", '{"name":"x"}'],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    elapsed = time.monotonic() - t0
    if done.returncode != 0 or json.loads(done.stdout or "{}").get("greeting") != GREETING:
        raise BenchError(f"tarsus call failed ({done.returncode}): {done.stdout}{done.stderr}")
    return elapsed


class UpProcess:
    """``python -m tarsus up --data-dir DIR``, its output in a log, the "is up" line timed."""

    def __init__(
        self, data_dir: Path, log_path: Path, env: dict[str, str], extra: list[str]
    ) -> None:
        self.log_path = log_path
        self.up_line_at: float | None = None
        self.reported: float | None = None
        self._log = log_path.open("w")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(
            [PY, "-m", "tarsus", "up", "--data-dir", str(data_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            now = time.monotonic()
            self._log.write(line)
            self._log.flush()
            if self.up_line_at is None and " is up in " in line:
                self.up_line_at = now
                self.reported = float(line.split(" is up in ", 1)[1].split()[0])

    def wait_up_line(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.up_line_at is None and time.monotonic() < deadline and self.p.poll() is None:
            time.sleep(0.01)
        if self.up_line_at is None:
            raise BenchError(f"tarsus up printed no 'is up' line{self.tail()}")

    def stop(self) -> tuple[float, int]:
        """Ctrl-C; (seconds until it exited, exit code)."""
        t0 = time.monotonic()
        self.p.send_signal(signal.SIGINT)
        try:
            code = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise BenchError(f"tarsus up did not exit within 60 s of Ctrl-C{self.tail()}") from None
        elapsed = time.monotonic() - t0
        self._reader.join(timeout=5)
        return elapsed, code

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return (":\n    " + "\n    ".join(lines)) if lines else ""


def one_run(
    kind: str, i: int, data_dir: Path, log_dir: Path, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    waited = wait_ports_free(args.port_wait)
    window = LoadWindow().start()
    extra = ["--processes"] if args.processes else []
    up = UpProcess(data_dir, log_dir / f"{kind}-{i}.log", env, extra)
    try:
        answered, attempts = asyncio.run(first_answer(up.p, args.timeout))
        load = window.end()
        up.wait_up_line(args.timeout)
        assert up.up_line_at is not None
        cli = cli_call(env)
        stop_s, code = up.stop()
    except BaseException as e:
        up.kill()
        for proc in services_under(data_dir):
            proc.kill()
        if isinstance(e, BenchError):
            raise BenchError(f"{kind} run {i}: {e}{up.tail()}") from None
        raise
    left = services_under(data_dir)
    for proc in left:  # ours: report them, then take them away
        proc.kill()
    ports_left = taken_ports()
    return {
        "kind": kind,
        "i": i,
        "answer_s": answered - up.t0,
        "attempts": attempts,
        "reported_s": up.reported,
        "printed_s": up.up_line_at - up.t0,
        "cli_s": cli,
        "stop_s": stop_s,
        "exit_code": code,
        "leftovers": len(left),
        "ports_left": sorted(ports_left),
        "port_wait_s": waited,
        "other_cpu": load["other"],
        "machine_busy": load["machine_busy"],
    }


# ---------------------------------------------------------------------------------------------
# the whole bench


def child_env(tmp: Path, env_bytecode: bool) -> dict[str, str]:
    env = dict(os.environ, COLUMNS="200")
    if env_bytecode:
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="tarsus-bench-up-"))
    ok = False
    try:
        env = child_env(tmp, args.env_bytecode)
        if not args.env_bytecode and not args.quick:
            # Python looks for every module's bytecode under the prefix (the standard library
            # and site-packages too): one unmeasured run compiles what the measured ones load.
            r = one_run("priming", 0, tmp / "data-0", tmp, env, args)
            print(f"priming run (not counted): answer {r['answer_s']:.2f} s", file=sys.stderr)
        whole = LoadWindow().start()
        runs: list[dict[str, Any]] = []
        for i in range(1, args.runs + 1):
            data_dir = tmp / f"data-{i}"
            for kind in ("cold", "warm"):
                r = one_run(kind, i, data_dir, tmp, env, args)
                runs.append(r)
                print(
                    f"{kind} {i}: answer {r['answer_s']:.2f} s, 'is up in' {r['reported_s']:.2f} "
                    f"s, line {r['printed_s']:.2f} s, cli {r['cli_s']:.2f} s, "
                    f"stop {r['stop_s']:.2f} s, leftovers {r['leftovers']}",
                    file=sys.stderr,
                )
        ok = True
        return {
            "date": datetime.date.today().isoformat(),
            "machine": machine_facts(),
            "bytecode": "environment" if args.env_bytecode else "prefix",
            "runs": runs,
            "load": whole.end(),
        }
    finally:
        if ok or not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} (logs of each run)", file=sys.stderr)


def stats(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    xs = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(xs), max(xs)


def results_table(data: dict[str, Any]) -> str:
    kinds = ("cold", "warm")
    by = {k: [r for r in data["runs"] if r["kind"] == k] for k in kinds}
    rows = [
        "| | cold (fresh data dir) | warm (same data dir again) |",
        "|---|---:|---:|",
        f"| runs | {len(by['cold'])} | {len(by['warm'])} |",
    ]

    def row(name: str, key: str, bold: bool = False) -> None:
        cells = []
        for k in kinds:
            med, mx = stats(by[k], key)
            cell = f"{med:.2f} / {mx:.2f} s"
            cells.append(f"**{cell}**" if bold else cell)
        rows.append(f"| {name} | " + " | ".join(cells) + " |")

    row("**spawn → first answer by name** (in-process client): median / max", "answer_s", True)
    row('"is up in X s" as `tarsus up` prints it: median / max', "reported_s")
    row("spawn → that line printed: median / max", "printed_s")
    row("one `tarsus call` CLI run once up (a new process): median / max", "cli_s")
    row("Ctrl-C → `tarsus up` exited: median / max", "stop_s")
    rows.append(
        "| exit codes | "
        + " | ".join(", ".join(sorted({str(r["exit_code"]) for r in by[k]})) for k in kinds)
        + " |"
    )
    rows.append(
        "| service processes left after Ctrl-C | "
        + " | ".join(str(sum(r["leftovers"] for r in by[k])) for k in kinds)
        + " |"
    )
    rows.append(
        "| runs with a port still listening after Ctrl-C | "
        + " | ".join(str(sum(bool(r["ports_left"]) for r in by[k])) for k in kinds)
        + " |"
    )
    return "\n".join(rows)


def targets_table(data: dict[str, Any]) -> str:
    rows = ["| target (spawn → answering by name, every run) | kind | cold | warm |",
            "|---|---|---|---|"]  # fmt: skip
    for limit, kind in ((MUST_S, "must"), (GOAL_S, "goal")):
        cells = []
        for k in ("cold", "warm"):
            _, mx = stats([r for r in data["runs"] if r["kind"] == k], "answer_s")
            cells.append(f"max {mx:.2f} s " + ("yes" if mx <= limit else "**no**"))
        rows.append(f"| ≤ {limit:.0f} s | {kind} | " + " | ".join(cells) + " |")
    clean = all(r["exit_code"] == 0 and not r["leftovers"] and not r["ports_left"]
                for r in data["runs"])  # fmt: skip
    rows.append(
        "| Ctrl-C leaves nothing running (exit 0, no service, no port) | check | "
        + ("yes | yes |" if clean else "**no** | see runs |")
    )
    return "\n".join(rows)


def runs_table(data: dict[str, Any]) -> str:
    rows = [
        "| run | spawn → answer | attempts | is up in | line | `tarsus call` | Ctrl-C → exit "
        "| other processes' CPU (spawn → answer) | both CPUs busy | waited for ports |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        rows.append(
            f"| {r['kind']} {r['i']} | {r['answer_s']:.2f} s | {r['attempts']} "
            f"| {r['reported_s']:.2f} s | {r['printed_s']:.2f} s | {r['cli_s']:.2f} s "
            f"| {r['stop_s']:.2f} s | {pct(r['other_cpu'])} | {pct(r['machine_busy'])} "
            f"| {r['port_wait_s']:.1f} s |"
        )
    return "\n".join(rows)


def section(data: dict[str, Any], cmd: str) -> str:
    n = len(data["runs"]) // 2
    bytecode = (
        "the environment's (`PYTHONDONTWRITEBYTECODE` as set: tarsus compiled at every start)"
        if data["bytecode"] == "environment"
        else "cached, as an installed copy has it: `PYTHONPYCACHEPREFIX` in the bench's "
        "temporary directory, filled by one unmeasured cold run first (this machine sets "
        "`PYTHONDONTWRITEBYTECODE=1`, which would compile tarsus, an editable install, from "
        "source at every start)"
    )
    return "\n".join(
        [
            BEGIN,
            "## `tarsus up`: time to ready",
            "",
            "What a new user waits for: `python -m tarsus up --data-dir <dir>` from the spawn "
            "of the process to the first call by name that answers "
            "(`Test.HelloServer.HelloObj.sayHello` through the registry's `QueryObj` on 17890), "
            "then Ctrl-C (SIGINT) and a check that nothing is left.",
            "",
            f"Measured {data['date']} on {data['machine']}. {n} cold and {n} warm runs, "
            "alternating (cold i on a fresh directory, then warm i on the directory it left).",
            "",
            "- **cold**: a fresh data directory: the SQLite store created, examples/hello "
            "packed, its virtual environment built, the server deployed, started and routed.",
            "- **warm**: `tarsus up` again on the same directory: the deployment is kept, the "
            "service is started again.",
            "- **spawn → first answer**: a client in the bench process (imports done before "
            "the spawn), a fresh `Communicator` per attempt (no on-disk route cache, 300 ms "
            "connect timeout, 1 s call timeout), every 20 ms; the answer is checked.",
            '- **"is up in X s"**: `tarsus up`\'s own clock, which starts in its main '
            "function, after Python has started and imported tarsus; the line is printed once "
            "the node reports the service active and the registry routes to it.",
            "- **`tarsus call`**: one run of the command `tarsus up` suggests, a new process "
            "(its own interpreter start and imports), once the service answers.",
            "- **Ctrl-C**: SIGINT to `tarsus up`; then no process with `--config=` under the "
            "data directory may remain, and none of 17890, 17891, 12000, 19386, 18601 may "
            "still listen.",
            f"- Bytecode: {bytecode}.",
            "",
            results_table(data),
            "",
            targets_table(data),
            "",
            "<details><summary>Every run</summary>",
            "",
            runs_table(data),
            "",
            "</details>",
            "",
            "How loaded the machine was over the whole bench (processes below the bench, "
            "`tarsus up` and its services, are left out of *other processes*):",
            "",
            *load_lines(data["load"]),
            "",
            *command_lines(cmd),
            END,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 cold + 1 warm")
    ap.add_argument("--runs", type=int, help="runs of each kind (default 5; 1 with --quick)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for an answer")
    ap.add_argument(
        "--port-wait",
        type=float,
        default=120.0,
        help="seconds to wait, before each run, for upstream's ports to be free (default 120)",
    )
    ap.add_argument(
        "--env-bytecode",
        action="store_true",
        help="keep the environment's bytecode setting (default: a cache prefix in the temp dir)",
    )
    ap.add_argument(
        "--processes",
        action="store_true",
        help="measure `tarsus up --processes` (each framework service its own process)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) on failure")
    add_output_arguments(ap, DEFAULT_DOC)
    args = ap.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 5)
    given = argv if argv is not None else sys.argv[1:]
    cmd = " ".join([".venv/bin/python", "bench/up.py", *(shlex.quote(a) for a in given)])
    try:
        data = run_bench(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    data["command"] = cmd
    print()
    emit(
        [
            results_table(data),
            targets_table(data),
            runs_table(data),
            "\n".join(load_lines(data["load"])),
        ],
        data,
        json_path=args.json,
        doc=None if args.no_write else Path(args.write),
        begin=BEGIN,
        end=END,
        section=section(data, cmd),
    )
    clean = all(r["exit_code"] == 0 and not r["leftovers"] and not r["ports_left"]
                for r in data["runs"])  # fmt: skip
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
