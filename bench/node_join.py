"""How long a fresh host takes to join: ``curl http://FW/install/node.sh | sh`` on a network
namespace host until the node is connected in ``tarsus node list`` (issue 13: must <= 60 s,
goal <= 20 s; docs/benchmarks.md, docs/install.md).

    sudo .venv/bin/python bench/node_join.py [--hosts 2] [--json]

Installs a framework (``tarsus install framework --prefix``) over a fresh MariaDB database on
the bridge address of a throw-away network, then joins ``--hosts`` hosts one after another:
each time is split into node.sh (download, venv, pip from the wheels, the service started) and
the wait until the admin registry lists the node as connected. Everything is torn down after.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "multihost"))

from netns import Network, unavailable_reason  # noqa: E402

from tarsus.cli.admin_client import AdminAddress, AdminClient, CommandFailed  # noqa: E402
from tarsus.install.layout import Layout  # noqa: E402
from tarsus.install.units import Service  # noqa: E402
from tarsus.testing import framework_ports, free_port  # noqa: E402

TARSUS = [sys.executable, "-m", "tarsus"]


def _connected(client: AdminClient, address: str) -> bool:
    """What ``tarsus node list`` shows as connected (asked in this process: a poll costs a
    call, not a Python start-up)."""
    try:
        _ret, heartbeats = client.call("getNodeList", [address])
    except CommandFailed:
        return False
    return bool(heartbeats.get(address))


async def _drop(database: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("mysql+asyncmy://root@127.0.0.1:3306")
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        await conn.execute(text(f"DROP USER IF EXISTS '{f'tarsus_{database}'[:32]}'@'%'"))
    await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"bench/node_join.py: {reason}", file=sys.stderr)
        return 2
    database = f"tarsus_test_{secrets.token_hex(6)}"
    results: dict[str, object] = {"hosts": []}
    with tempfile.TemporaryDirectory(prefix="tarsus-join-") as tmp, Network() as net:
        root = Path(tmp)
        layout = Layout(root / "fw")
        ports = framework_ports()
        web = free_port()
        try:
            started = time.monotonic()
            done = subprocess.run(
                [*TARSUS, "install", "framework", "--db", f"mysql://root@127.0.0.1:3306/{database}",
                 "--prefix", str(layout.prefix), "--host", net.gateway,
                 *(f"--port={k}={v}" for k, v in dataclasses.asdict(ports).items()),
                 f"--port=web={web}"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            results["framework_install_s"] = round(time.monotonic() - started, 2)
            locator = f"tars.tarsregistry.QueryObj@tcp -h {net.gateway} -p {ports.query}"
            # a secured framework (beyond loopback): its join token, and the CLI's keys
            token = (layout.data_dir / "web" / "join-token").read_text().strip()
            os.environ["TARSUS_CLIENT_KEYS"] = str(layout.client_keys_file)
            client = AdminClient(AdminAddress("tars.tarsAdminRegistry.AdminRegObj", locator), 3000)
            for i in range(args.hosts):
                host = net.add_host(f"j{i}")
                script = (
                    f"curl -fsS http://{net.gateway}:{web}/install/node.sh "
                    f"| TARSUS_JOIN_TOKEN={token} TARSUS_PREFIX={root / host.name} sh"
                )
                t0 = time.monotonic()
                ran = host.run(["bash", "-o", "pipefail", "-c", script], timeout=300)
                if ran.returncode != 0:
                    print(ran.stderr, file=sys.stderr)
                    return 1
                t1 = time.monotonic()
                while not _connected(client, host.address):
                    if time.monotonic() - t1 > 120:
                        print(f"{host.address} never connected", file=sys.stderr)
                        return 1
                    time.sleep(0.05)
                t2 = time.monotonic()
                row = {"node_sh_s": round(t1 - t0, 2), "to_connected_s": round(t2 - t1, 2),
                       "join_s": round(t2 - t0, 2)}  # fmt: skip
                results["hosts"].append(row)  # type: ignore[attr-defined]
        finally:
            service = Service("framework", layout)
            pid = service.running_pid()
            if pid is not None:
                service.stop_detached(pid)
            asyncio.run(_drop(database))
    if args.json:
        print(json.dumps(results))
    else:
        print(f"framework install: {results['framework_install_s']} s")
        for i, row in enumerate(results["hosts"]):  # type: ignore[arg-type]
            print(f"host {i}: joined in {row['join_s']} s (node.sh {row['node_sh_s']} s, "
                  f"then connected after {row['to_connected_s']} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
