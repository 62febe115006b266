"""``/api/v1/tree`` and ``/api/v1/instances``: the service tree and the instance list."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder

from tarsus.ops import services
from tarsus.ops.access import Perm
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["services"])


@router.get("/tree", **access(Perm.VIEW, "any"))
async def tree(
    actor: ActorDep, platform: PlatformDep, q: str = "", expand: str | None = None
) -> Any:
    """The applications you may see, with the sets and servers (upstream's tree ids) of the
    one named ``expand``; ``q`` keeps (and opens) the servers whose application, name or
    node IP contains it."""
    apps = await services.tree(platform, actor, q.strip(), expand)
    return jsonable_encoder([{**dataclasses.asdict(a), "tree_id": a.tree_id} for a in apps])


@router.get("/instances", **access(Perm.VIEW, "any"))
async def instances(
    actor: ActorDep,
    platform: PlatformDep,
    page: PageDep,
    application: str | None = None,
    server_name: str | None = None,
    node_name: str | None = None,
) -> Any:
    """Instances you may see (paged; ``q`` matches application, server or node IP)."""
    found = await services.instances(
        platform,
        actor,
        page,
        application=application,
        server_name=server_name,
        node_name=node_name,
    )
    return page_json(found)
