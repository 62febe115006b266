"""A containerised Hello: from the start command to answering, beside the same Hello run
as a process, in one run (docs/node.md, "Servers in containers").

The platform of tests/framework/test_node_containers.py: the registry and admin registry in
this process, a ``tarsus node`` agent whose container engine is podman's Docker-compatible API
service (a socket of the bench's own), the runtime image from ``containers/build.py python``
(built first if it is not cached: not measured). examples/hello is deployed with
``--container IMAGE``; each run stops it, then spawns ``tarsus server start`` (a new process,
as a user types it) and calls ``sayHello`` by name through the registry (a fresh
``Communicator`` per attempt, 300 ms connect timeout) every 20 ms until it answers. Then the
same server is redeployed as a process and measured the same way.

Reported per kind: median and max of start command -> first answer (the issue's figure for
the container: must <= 5 s, goal <= 2 s), and the container's median over the process's.

    .venv/bin/python bench/container.py              # 5 runs of each, writes docs/benchmarks.md
    .venv/bin/python bench/container.py --runs 2 --no-write

Needs root, podman, runc and debootstrap (tests/framework/container_support.py).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "framework"), str(ROOT / "bench")]

import report  # noqa: E402
from cluster_support import EXAMPLE, SERVER, Cluster  # noqa: E402
from container_support import Podman  # noqa: E402

import tarsus.idl  # noqa: E402
from tarsus.rpc.communicator import Communicator  # noqa: E402

NODE = "127.0.0.1"
SERVANT = "Test.HelloServer.HelloObj"
Test = tarsus.idl.load(EXAMPLE / "Hello.tars").Test
BEGIN = "<!-- bench:container begin -->"
END = "<!-- bench:container end -->"


async def _answers(locator: str) -> bool:
    try:
        async with Communicator(
            locator, cache_dir=None, timeout_ms=1000, connect_timeout_ms=300
        ) as comm:
            hello = comm.string_to_proxy(Test.HelloProxy, SERVANT)
            ret, _ = await hello.sayHello("x")
            return bool(ret == 0)
    except Exception:
        return False


def _inactive(cluster: Cluster) -> None:
    deadline = time.monotonic() + 60
    while str(cluster.status(NODE)["present_state_in_node"]).lower() != "inactive":
        if time.monotonic() > deadline:
            raise SystemExit("the server did not stop")
        time.sleep(0.1)


def one_start(cluster: Cluster) -> float:
    """Stop the server, then spawn ``tarsus server start``: seconds to the first answer."""
    cluster.ok("server", "stop", SERVER, "--node", NODE)
    _inactive(cluster)
    t0 = time.monotonic()
    start = cluster.popen("server", "start", SERVER, "--node", NODE)
    deadline = t0 + 60
    while not asyncio.run(_answers(cluster.settings.locator)):
        if time.monotonic() > deadline:
            raise SystemExit("no answer within 60 s of the start command")
        time.sleep(0.02)
    took = time.monotonic() - t0
    start.communicate(timeout=60)
    return took


def measure(runs: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="tarsus-bench-container-") as tmp:
        podman = Podman(Path(tmp) / "podman")
        try:
            with Cluster(
                Path(tmp) / "cluster", 1, node_args=("--container-engine", podman.url)
            ) as c:
                results: dict[str, list[float]] = {}
                c.deploy(NODE, EXAMPLE, "--container", podman.image)
                c.active(NODE)
                results["container"] = [one_start(c) for _ in range(runs)]
                c.ok("server", "stop", SERVER, "--node", NODE)
                c.deploy(NODE, EXAMPLE, "--replace")  # the same server, as a process
                c.active(NODE)
                results["process"] = [one_start(c) for _ in range(runs)]
                c.ok("server", "stop", SERVER, "--node", NODE)
                return results
        finally:
            podman.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    report.add_output_arguments(ap, ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    results = measure(args.runs)
    rows = ["| run as | median (s) | max (s) | runs |", "|---|---|---|---|"]
    for kind, times in results.items():
        rows.append(
            f"| {kind} | {statistics.median(times):.2f} | {max(times):.2f} | {len(times)} |"
        )
    ratio = statistics.median(results["container"]) / statistics.median(results["process"])
    table = "\n".join(rows)
    section = "\n".join([
        BEGIN,
        "## A containerised Hello: start command to answering",
        "",
        "`tarsus server start` spawned (a new process) -> the first `sayHello` answered by name "
        "through the registry, for examples/hello run in its own container (podman's Docker API, "
        "runtime image from `containers/build.py python`) and the same server run as a process, "
        "in one run. Issue 13's figure for the container: must <= 5 s, goal <= 2 s.",
        "",
        table,
        "",
        f"Container / process (medians): {ratio:.2f}x.",
        "",
        *report.command_lines(f"sudo .venv/bin/python bench/container.py --runs {args.runs}"),
        END,
    ])  # fmt: skip
    report.emit(
        [table, f"container / process: {ratio:.2f}x"],
        {"runs": results, "ratio": ratio},
        json_path=args.json,
        doc=None if args.no_write else Path(args.write),
        begin=BEGIN,
        end=END,
        section=section,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
