"""``/nodes``: the nodes with heartbeat, version, load and state (the list refreshes itself);
one node with its instances; ``/nodes/add``: the one-line command that adds a node, and the
list, to watch it appear."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import nodes, services
from tarsus.ops.access import Perm
from tarsus.ops.paging import PageQuery
from tarsus.web.api.nodes import join_command
from tarsus.web.nav import NavItem
from tarsus.web.params import PageDep, PlatformDep
from tarsus.web.render import is_htmx, render
from tarsus.web.security import ActorDep, access

router = APIRouter(include_in_schema=False)

NAV = (NavItem("admin", 50, "nodes.nav", "/nodes", Perm.ADMIN),)


@router.get("/nodes", response_class=HTMLResponse, **access(Perm.VIEW, "global"))
async def nodes_page(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    found = await nodes.list_nodes(platform, actor, page)
    template = "nodes/rows.html" if is_htmx(request) else "nodes/list.html"
    return render(request, template, actor=actor, page=found, poll=5, command="")


@router.get("/nodes/add", response_class=HTMLResponse, **access(Perm.ADMIN, "global"))
async def add_node_page(
    request: Request, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    found = await nodes.list_nodes(platform, actor, page)
    return render(
        request,
        "nodes/add.html",
        actor=actor,
        page=found,
        poll=2,
        command=join_command(request),
        headers={"Cache-Control": "no-store"},
    )


@router.get("/nodes/{node}", response_class=HTMLResponse, **access(Perm.VIEW, "global"))
async def node_page(
    request: Request, node: str, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Response:
    found = await nodes.detail(platform, actor, node)
    here = await services.instances(
        platform, actor, PageQuery(page.page, page.size), node_name=node
    )
    return render(request, "nodes/detail.html", actor=actor, detail=found, page=here)
