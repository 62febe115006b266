"""``/api/v1/nodes``: nodes with heartbeat, version, load and state; the command that adds one."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from tarsus.ops import nodes
from tarsus.ops.access import Perm
from tarsus.ops.errors import Unavailable
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access
from tarsus.web.token import TokenError, TokenFile

router = APIRouter(prefix="/api/v1", tags=["nodes"])


def join_command(request: Request) -> str:
    """The add-a-node command for this console as the caller reached it (the new node fetches
    the script from there), with the join token of a secured install."""
    tokens: TokenFile | None = request.app.state.join_token
    token = ""
    if tokens is not None:
        try:
            token = tokens.current().decode("ascii")
        except TokenError as e:
            raise Unavailable(f"the join token cannot be read here: {e}") from None
    return nodes.install_command(str(request.base_url).rstrip("/"), token)


@router.get("/nodes", **access(Perm.VIEW, "global"))
async def list_nodes(actor: ActorDep, platform: PlatformDep, page: PageDep) -> Any:
    """Nodes by name (``q``: name or version), with ``alive`` from the last heartbeat."""
    return page_json(await nodes.list_nodes(platform, actor, page))


@router.get("/nodes/{node}", **access(Perm.VIEW, "global"))
async def get_node(node: str, actor: ActorDep, platform: PlatformDep) -> Any:
    return jsonable_encoder(dataclasses.asdict(await nodes.detail(platform, actor, node)))


@router.post("/nodes/{node}/ping", **access(Perm.ADMIN, "global"))
async def ping_node(node: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """Whether the node answers through its push connection."""
    ok, result = await nodes.ping(platform, actor, node)
    return {"node": node, "ok": ok, "result": result}


@router.get("/install-command", **access(Perm.ADMIN, "global"))
async def install_command(request: Request, actor: ActorDep) -> Any:
    """The one line to run on a new machine to make it a node (docs/install.md); a secured
    framework's carries its join token."""
    return JSONResponse({"command": join_command(request)}, headers={"Cache-Control": "no-store"})
