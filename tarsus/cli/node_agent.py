"""``tarsus node --locator ...``: run this machine's node agent (upstream ``tarsnode``).

    tarsus node --locator 'tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890'

The node registers with the registry, runs the servers deployed on it (from the registry, or
from its local cache when the registry is out of reach), takes commands from the admin
registries and keeps its services running whatever the framework's state. It stops on
SIGTERM/Ctrl-C or an admin registry's ``shutdown``; its services keep running (as upstream)
unless ``--stop-services``, and a node started again adopts them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from tarsus.framework.node.agent import NodeAgent, NodeAgentSettings
from tarsus.framework.node.servant import SERVER_OBJ_PORT
from tarsus.rpc.auth import Credentials
from tarsus.rpc.endpoint import EndpointError
from tarsus.rpc.security import ServantSecurity
from tarsus.rpc.tls import TlsConfigError

log = logging.getLogger("tarsus.cli.node_agent")


def run_agent(
    locator: str,
    *,
    data_dir: Path,
    node_name: str = "",
    host: str = "",
    port: int = SERVER_OBJ_PORT,
    stop_services: bool = False,
    supervision: Mapping[str, Any] | None = None,
    verbose: bool = False,
    security: Mapping[str, ServantSecurity] | None = None,
    server_credentials: Credentials | None = None,
) -> int:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = NodeAgentSettings(
        locator=locator,
        data_dir=data_dir,
        node_name=node_name,
        host=host,
        port=port,
        stop_services_on_exit=stop_services,
        supervision=dict(supervision or {}),
        security=dict(security or {}),
        server_credentials=server_credentials,
    )

    async def main() -> int:
        agent = NodeAgent(settings)
        try:
            await agent.start()
        except TlsConfigError as e:  # the framework's CA or a key file (node.toml)
            typer.echo(f"tarsus node: TLS: {e}", err=True)
            await agent.stop()
            return 2
        except (EndpointError, ValueError) as e:
            typer.echo(f"tarsus node: bad --locator {locator!r}: {e}", err=True)
            await agent.stop()
            return 2
        except (RuntimeError, OSError) as e:
            typer.echo(f"tarsus node: {e}", err=True)
            await agent.stop()
            return 1
        typer.echo(f"node {agent.node_name} running (registry {locator})", err=True)
        await agent.run_forever()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
