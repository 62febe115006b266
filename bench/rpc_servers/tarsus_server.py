"""The Tarsus echo server of bench/rpc.py: one ``Application``, one ``Adapter``, an
``async def echo`` servant.

    python bench/rpc_servers/tarsus_server.py --port 18700 [--loop asyncio|uvloop] [--stats]
        [--gc-report out.json] [--cprofile out.prof]

The server is set up as ``Application.main`` sets one up (the GC tuned once serving), on the
loop ``--loop`` names. ``--stats`` attaches ``tarsus.rpc.stats.StatReporter`` to the adapter
(exit code 3 if that module does not exist yet). ``--gc-report`` times every collection once
the server serves (``tarsus.rpc.runtime.GcPauses``) and writes the counts and the worst pauses as
JSON at SIGTERM. ``--cprofile`` profiles the whole process until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import tarsus.idl
from tarsus.rpc import runtime
from tarsus.rpc.application import Application

SERVANT = "Bench.RpcServer.EchoObj"
Bench: Any = tarsus.idl.load(str(Path(__file__).with_name("Echo.tars"))).Bench


class EchoImpl(Bench.EchoServant):  # type: ignore[misc]
    async def echo(self, s: str) -> tuple[int, str]:
        return 0, s


def attach_stats(app: Application, adapter: Any) -> Any:
    """Count every answered call as a server under a node does (``StatReporter``). A report
    goes out every 60 s to an address where nothing listens: one refused connection."""
    from tarsus.rpc.stats import StatReporter

    stats = StatReporter(
        app.communicator, "tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 9", "Bench.RpcServer"
    )
    stats.attach_server(adapter)
    return stats


async def main(args: argparse.Namespace) -> None:
    app = Application()
    app.tune_gc = True  # as Application.main does
    adapter = app.add_servant(EchoImpl(), SERVANT, f"tcp -h 127.0.0.1 -p {args.port} -t 60000")
    stats = attach_stats(app, adapter) if args.stats else None
    await app.start()
    if args.gc_report:
        PAUSES.__enter__()  # once serving: start-up's own collection is not a call's wait
    if stats is not None:
        await stats.start()
    print(f"tarsus echo on 127.0.0.1:{args.port}", flush=True)
    await app.serve_forever()


PAUSES = runtime.GcPauses()


def run(args: argparse.Namespace) -> None:
    try:
        runtime.run(main(args), args.loop)
    finally:
        if args.gc_report:
            Path(args.gc_report).write_text(json.dumps(PAUSES.report()))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--gc-report", metavar="PATH")
    ap.add_argument("--cprofile", metavar="PATH")
    a = ap.parse_args()
    if a.stats:
        try:
            import tarsus.rpc.stats
        except ImportError as e:
            print(f"no stats: {e}", file=sys.stderr)
            sys.exit(3)
    if a.cprofile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        try:
            run(a)
        finally:
            prof.disable()
            prof.dump_stats(a.cprofile)
    else:
        run(a)
