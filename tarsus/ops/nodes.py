"""Nodes: the list with heartbeat, version, load and state; one node's detail; the command
that adds a node.

Read from ``t_node_info`` (written by the registry from each node's ``registerNode`` and
``keepAlive``), paged and searched in SQL, as upstream TarsWeb's node list reads ``db_tars``.
A node is *alive* while its last heartbeat is younger than :data:`ALIVE_SECONDS`. Nodes are the
platform's own: looking needs ``view`` on ``*``, pinging and the install command ``admin``.

**Adding a node** is one command run on the new machine, :func:`install_command`: it fetches
``/install/node.sh`` from this console (tarsus/web/install.py, docs/install.md), which installs
Tarsus from the framework host's wheels and starts ``tarsus node`` (with a secured
framework's join token, for its keys); the node then appears in the list. This function is
the one place the command is made.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from tarsus.ops import adminreg
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Invalid, NotFound
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform
from tarsus.store.rows import NodeRow, read_node
from tarsus.store.schema import t_node_info, t_server_conf

__all__ = [
    "ALIVE_SECONDS",
    "Node",
    "NodeDetail",
    "detail",
    "install_command",
    "list_nodes",
    "ping",
]

#: a heartbeat older than this and the node shows as not alive (nodes beat every 10 s;
#: the registry's own timeout, ``node_timeout``, is longer)
ALIVE_SECONDS = 60
#: where the install script is served (tarsus/web/install.py)
INSTALL_PATH = "/install/node.sh"

n = t_node_info.c


@dataclass(frozen=True)
class Node:
    name: str
    present_state: str
    alive: bool
    last_heartbeat: datetime | None
    last_reg_time: datetime | None
    version: str
    load_avg1: float
    load_avg5: float
    load_avg15: float
    template: str
    instances: int
    endpoint: str


@dataclass(frozen=True)
class NodeDetail:
    node: Node
    data_dir: str
    node_obj: str
    label: str


def _can_view(actor: Actor) -> None:
    actor.require(Perm.VIEW)  # on *: the nodes are the platform's


def _node(row: NodeRow, instances: int, now: datetime) -> Node:
    beat = row.last_heartbeat
    alive = (
        row.present_state == "active"
        and beat is not None
        and now - beat < timedelta(seconds=ALIVE_SECONDS)
    )
    return Node(
        name=row.node_name,
        present_state=row.present_state,
        alive=alive,
        last_heartbeat=beat,
        last_reg_time=row.last_reg_time,
        version=row.tars_version,
        load_avg1=float(row.load_avg1 or 0),
        load_avg5=float(row.load_avg5 or 0),
        load_avg15=float(row.load_avg15 or 0),
        template=row.template_name,
        instances=instances,
        endpoint=f"{row.endpoint_ip}:{row.endpoint_port}" if row.endpoint_ip else "",
    )


async def _counts(platform: Platform, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    q = (
        select(t_server_conf.c.node_name, func.count())
        .where(t_server_conf.c.node_name.in_(names))
        .group_by(t_server_conf.c.node_name)
    )
    async with platform.store.connect() as conn:
        return {str(name): int(count) for name, count in await conn.execute(q)}


async def list_nodes(platform: Platform, actor: Actor, query: PageQuery) -> Page[Node]:
    """By name; ``q`` matches the name or the version."""
    _can_view(actor)
    where = []
    if query.q:
        pattern = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(n.node_name.like(pattern, escape="\\"), n.tars_version.like(pattern, escape="\\"))
        )
    rows_q = (
        read_node.select()
        .where(*where)
        .order_by(n.node_name)
        .offset(query.offset)
        .limit(query.size)
    )
    async with platform.store.connect() as conn:
        rows = [read_node(r) for r in await conn.execute(rows_q)]
        total = int(await conn.scalar(select(func.count()).select_from(t_node_info).where(*where)))
    counts = await _counts(platform, [r.node_name for r in rows])
    now = platform.store.clock()
    return Page.of([_node(r, counts.get(r.node_name, 0), now) for r in rows], total, query)


async def detail(platform: Platform, actor: Actor, name: str) -> NodeDetail:
    _can_view(actor)
    row = await platform.store.nodes.get(name)
    if row is None:
        raise NotFound(f"no node {name[:128]!r} is registered")
    counts = await _counts(platform, [name])
    node = _node(row, counts.get(name, 0), platform.store.clock())
    return NodeDetail(node, row.data_dir, row.node_obj, row.label or "")


async def ping(platform: Platform, actor: Actor, name: str) -> tuple[bool, str]:
    """Whether the node answers through its push connection, and what it said."""
    actor.require(Perm.ADMIN)
    if await platform.store.nodes.get(name) is None:
        raise NotFound(f"no node {name[:128]!r} is registered")
    async with adminreg.calling(f"pinging node {name}"):
        ok, result = await adminreg.admin(platform).pingNode(name)
    return bool(ok), str(result)


def install_command(base_url: str, join_token: str = "") -> str:
    """The one line that makes a machine a node of this framework, for the console at
    ``base_url`` (``http://10.0.0.1:3000``; as the operator's browser reached it). A secured
    framework's nodes show its ``join_token`` for their keys (docs/install.md): it goes in
    the environment of ``sh``, never in the URL or the script."""
    base = base_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")) or any(c.isspace() for c in base):
        raise Invalid(f"the console's address {base[:80]!r} is not an http(s) URL")
    env = f"TARSUS_JOIN_TOKEN={shlex.quote(join_token)} " if join_token else ""
    return f"curl -fsS {shlex.quote(base + INSTALL_PATH)} | {env}sh"
