"""The ``tarsus`` command's start-up: ``tarsus --help`` and one ``tarsus call``, as a shell runs
them.

Each run is a new process (``<venv>/bin/tarsus ...``, the console script a user types),
measured from spawn to exit: wall time, and CPU time (user + system of the child, from
``wait4``), which a loaded shared machine disturbs much less than wall time.

- ``tarsus --help``: the issue's figure (must <= 0.3 s, goal <= 0.15 s, CPU);
- ``tarsus version``: typer and nothing else, a floor for any subcommand;
- ``tarsus call --idl examples/hello/Hello.tars 'Test.HelloServer.HelloObj@tcp -h 127.0.0.1
  -p PORT' sayHello '{"name":"bench"}'``: a call to a direct endpoint, answered by
  ``examples/hello/server.py`` started by the bench on a free port (must <= 0.5 s end to end);
- ``tarsus package list --help``: a subcommand's help (the admin client, none of the ops);
- ``tarsus package list`` with no admin registry listening: the command runs the console's
  operation (``tarsus.ops.release.stored_packages``, docs/cli-operate.md "One service layer")
  up to its first call, which is refused at once (exit status 1, as expected): what a command
  on the service layer costs before the network;
- ``python -c pass``: the interpreter alone, for scale.

``--against BIN`` also runs every ``tarsus`` command with another install's console script
(``/work/main/.venv/bin/tarsus``: the code before a change), alternating with this one's in
the same run, so that the two are compared on the same load.

Runs of the kinds alternate, ``--runs`` of each (median and max reported). One unmeasured run
of each first fills the caches a user's second command finds: bytecode (this machine sets
``PYTHONDONTWRITEBYTECODE=1``, so the children get ``PYTHONPYCACHEPREFIX`` in the bench's
temporary directory instead, as ``bench/up.py`` does) and the IDL parser's tables
(``TARSUS_CACHE_DIR`` in the same directory).

    .venv/bin/python bench/cli.py                  # 5 runs of each, writes docs/benchmarks.md
    .venv/bin/python bench/cli.py --runs 1 --no-write
    .venv/bin/python bench/cli.py --no-write --against ../main/.venv/bin/tarsus
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine_load import LoadWindow, load_lines, machine_facts
from report import add_output_arguments, command_lines, emit

from tarsus.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- cli:begin -->", "<!-- cli:end -->"
HELP_MUST_S, HELP_GOAL_S, CALL_MUST_S = 0.3, 0.15, 0.5
BIN = Path(sys.executable).parent


class BenchError(Exception):
    pass


#: the kinds whose command is expected to fail (exit status 1): nothing listens there
FAILING = frozenset({"tarsus package list (no admin registry)"})


def kinds(port: int, closed: int, against: str | None) -> dict[str, list[str]]:
    proxy = f"Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p {port}"
    nobody = f"tcp -h 127.0.0.1 -p {closed} -t 1000"

    def commands(tarsus: str) -> dict[str, list[str]]:
        return {
            "tarsus --help": [tarsus, "--help"],
            "tarsus version": [tarsus, "version"],
            "tarsus call (direct endpoint)": [
                tarsus,
                "call",
                "--idl",
                str(ROOT / "examples/hello/Hello.tars"),
                proxy,
                "sayHello",
                '{"name":"bench"}',
            ],
            "tarsus package list --help": [tarsus, "package", "list", "--help"],
            "tarsus package list (no admin registry)": [
                tarsus,
                "package",
                "list",
                "Test.HelloServer",
                "--admin",
                nobody,
            ],
        }

    found = commands(str(BIN / "tarsus"))
    if against is not None:
        found |= {f"{kind} (--against)": argv for kind, argv in commands(against).items()}
    return found | {"python -c pass": [sys.executable, "-c", "pass"]}


def measure(argv: list[str], env: dict[str, str], expect: int = 0) -> dict[str, float]:
    """One run: wall and CPU seconds of the child, which must exit ``expect``."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != expect:
        raise BenchError(f"{shlex.join(argv)} exited {proc.returncode}: {(out + err).decode()}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tarsus-bench-cli-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        env["TARSUS_CACHE_DIR"] = str(Path(tmp) / "cache")
        env.pop("TARSUS_ADMIN", None)
        env.pop("TARSUS_LOCATOR", None)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "examples/hello/server.py"), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert server.stdout is not None
            if b"listening" not in server.stdout.readline():
                raise BenchError("examples/hello/server.py did not start")
            commands = kinds(port, free_port(), args.against)
            expect = {k: 1 if k.removesuffix(" (--against)") in FAILING else 0 for k in commands}
            for kind, argv in commands.items():  # fill the caches, unmeasured
                measure(argv, env, expect[kind])
            runs: dict[str, list[dict[str, float]]] = {k: [] for k in commands}
            window = LoadWindow().start()
            for _ in range(args.runs):
                for kind, argv in commands.items():
                    runs[kind].append(measure(argv, env, expect[kind]))
            load = window.end({server.pid})
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "date": datetime.date.today().isoformat(),
        "machine": machine_facts(),
        "runs": runs,
        "load": load,
    }


def stats(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


def results_table(data: dict[str, Any]) -> str:
    rows = [
        "| command (a new process each run) | CPU: median / max | wall: median / max |",
        "|---|---:|---:|",
    ]
    for kind, runs in data["runs"].items():
        cpu, wall = (stats([r[k] for r in runs]) for k in ("cpu_s", "wall_s"))
        bold = "**" if kind != "python -c pass" else ""
        rows.append(
            f"| `{kind}` | {bold}{cpu[0]:.3f} / {cpu[1]:.3f} s{bold} "
            f"| {wall[0]:.3f} / {wall[1]:.3f} s |"
        )
    return "\n".join(rows)


def targets_table(data: dict[str, Any]) -> str:
    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in data["runs"][kind])

    help_cpu = median("tarsus --help", "cpu_s")
    call_cpu = median("tarsus call (direct endpoint)", "cpu_s")
    call_wall = median("tarsus call (direct endpoint)", "wall_s")

    def verdict(value: float, limit: float) -> str:
        return f"{value:.3f} s " + ("yes" if value <= limit else "**no**")

    return "\n".join(
        [
            "| target (median of the runs) | kind | measured |",
            "|---|---|---|",
            f"| `tarsus --help` ≤ {HELP_MUST_S} s (CPU) | must "
            f"| {verdict(help_cpu, HELP_MUST_S)} |",
            f"| `tarsus --help` ≤ {HELP_GOAL_S} s (CPU) | goal "
            f"| {verdict(help_cpu, HELP_GOAL_S)} |",
            f"| `tarsus call` ≤ {CALL_MUST_S} s (CPU) | must | {verdict(call_cpu, CALL_MUST_S)} |",
            f"| `tarsus call` ≤ {CALL_MUST_S} s (wall, end to end) | must "
            f"| {verdict(call_wall, CALL_MUST_S)} |",
        ]
    )


def section(data: dict[str, Any], cmd: str) -> str:
    n = len(next(iter(data["runs"].values())))
    return "\n".join(
        [
            BEGIN,
            "## `tarsus` command start-up (`bench/cli.py`)",
            "",
            "What a user waits for when typing a command: a new process per run, the console "
            "script `tarsus` of the virtual environment, from spawn to exit. CPU is user + "
            "system of the child (from `wait4`); wall time also counts waiting for a CPU on "
            "this shared machine. `tarsus call` calls `sayHello` on `examples/hello/server.py` "
            "at a direct endpoint (`--idl` parsed at run time). `tarsus package list` with no "
            "admin registry listening runs the console's operation "
            "(`tarsus.ops.release.stored_packages`) up to its first call, refused at once (exit "
            "status 1): what a command on the service layer costs before the network "
            '(docs/cli-operate.md, "One service layer"). Each subcommand imports only what it '
            'uses (docs/cli-call.md, "Start-up time"). Rows marked `(--against)` are the same '
            "commands run with another install's `tarsus` (the code before a change), "
            "alternating with this one's in the same run.",
            "",
            f"Measured {data['date']} on {data['machine']}. {n} runs of each command, "
            "alternating, after one unmeasured run of each (bytecode and the IDL parser's "
            "tables cached, as a user's second command finds them).",
            "",
            results_table(data),
            "",
            targets_table(data),
            "",
            "How loaded the machine was over the bench:",
            "",
            *load_lines(data["load"]),
            "",
            *command_lines(cmd),
            END,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    ap.add_argument(
        "--against",
        metavar="BIN",
        help="also run each tarsus command with this console script, alternating (before/after)",
    )
    add_output_arguments(ap, DEFAULT_DOC)
    args = ap.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    cmd = " ".join([".venv/bin/python", "bench/cli.py", *(shlex.quote(a) for a in given)])
    try:
        data = run_bench(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    emit(
        [results_table(data), targets_table(data), "\n".join(load_lines(data["load"]))],
        data,
        json_path=args.json,
        doc=None if args.no_write else Path(args.write),
        begin=BEGIN,
        end=END,
        section=section(data, cmd),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
