"""The framework bench/node.py runs its node agent against: what ``tarsus up --no-node`` runs
(the registry and the admin registry in one process, over SQLite in ``--data-dir``), on the
ports given instead of upstream's fixed ones, so a long measurement does not hold 17890,
17891 and 12000 while others run ``tarsus up`` or its tests on this machine.

    python bench/node_framework.py --data-dir DIR --ports QUERY,REGISTRY,ADMIN

Prints one JSON line (``{"event": "ready", ...}``) once it listens; SIGINT or SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path

from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.framework.registry import RegistrySettings
from tarsus.testing import framework_ports


async def serve(data_dir: Path, query: int, registry: int, admin: int, patch: int) -> None:
    # The registry settings ``tarsus up`` uses with its default --node-timeout.
    settings = AllInOneSettings(
        data_dir=data_dir,
        host="127.0.0.1",
        ports=framework_ports(query=query, registry=registry, admin=admin, patch=patch),
        run_node=False,
        registry=RegistrySettings(node_timeout=30.0, node_sweep_interval=15.0),
    )
    platform = AllInOne(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await platform.start()
        print(json.dumps({"event": "ready", "locator": settings.locator}), flush=True)
        await stop.wait()
    finally:
        await platform.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--ports", required=True, help="QUERY,REGISTRY,ADMIN,PATCH")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    query, registry, admin, patch = (int(p) for p in args.ports.split(","))
    asyncio.run(serve(args.data_dir, query, registry, admin, patch))


if __name__ == "__main__":
    main()
