"""The service tree (application → set → server) and the instance list.

Read from ``t_server_conf`` directly, as upstream TarsWeb reads ``db_tars`` (``/tree``,
``/server_list``, ``/server_search``), paged and searched in SQL, and filtered to what the
actor may see (a user granted ``Test`` sees Test's servers and no others). The state shown is
the setting state (what the operator asked) and the present state the node last reported
(written by the registry); live probes are the operate pages' business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, or_, select

from tarsus.ops.access import Actor, Perm, Visibility
from tarsus.ops.errors import Denied
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform
from tarsus.store.schema import t_server_conf

__all__ = ["Instance", "TreeApp", "TreeServer", "TreeSet", "instances", "tree"]

c = t_server_conf.c


@dataclass(frozen=True)
class Instance:
    """One instance as the list shows it."""

    id: int
    application: str
    server_name: str
    node_name: str
    set_id: str
    setting_state: str
    present_state: str
    flow_state: str
    pid: int
    patch_version: str
    patch_user: str
    patch_time: datetime | None
    server_type: str
    template_name: str

    @property
    def server(self) -> str:
        return f"{self.application}.{self.server_name}"


@dataclass(frozen=True)
class TreeServer:
    name: str
    #: upstream's tree node id: ``1App.5Server`` or ``1App.2name.3area.4group.5Server``
    tree_id: str
    instances: int


@dataclass
class TreeSet:
    """``name.area.group`` (empty: the servers not in a set)."""

    name: str
    servers: list[TreeServer] = field(default_factory=list)


@dataclass
class TreeApp:
    name: str
    #: instances of the application (those the actor may see)
    instances: int = 0
    #: its sets and servers are listed (the application asked for, or a search)
    expanded: bool = False
    sets: list[TreeSet] = field(default_factory=list)

    @property
    def tree_id(self) -> str:
        return f"1{self.name}"


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _visible(vis: Visibility) -> Any:
    if vis.everything:
        return None
    parts: list[Any] = []
    if vis.apps:
        parts.append(c.application.in_(sorted(vis.apps)))
    parts += [and_(c.application == a, c.server_name == s) for a, s in sorted(vis.servers)]
    return or_(*parts) if parts else false()


def _search(q: str) -> Any:
    pattern = _like(q)
    return or_(
        c.application.like(pattern, escape="\\"),
        c.server_name.like(pattern, escape="\\"),
        c.node_name.like(pattern, escape="\\"),
    )


def _set_id(enable_set: str | None, name: str | None, area: str | None, group: str | None) -> str:
    if (enable_set or "").upper() != "Y" or not name:
        return ""
    return f"{name}.{area or ''}.{group or ''}"


def _conditions(actor: Actor, **exact: str | None) -> list[Any]:
    if not actor.can_somewhere(Perm.VIEW):
        raise Denied(f"{actor.uid} may not view any server")
    where: list[Any] = []
    visible = _visible(actor.visible(Perm.VIEW))
    if visible is not None:
        where.append(visible)
    for column, value in exact.items():
        if value:
            where.append(getattr(c, column) == value)
    return where


_LIST_COLUMNS = (
    c.id,
    c.application,
    c.server_name,
    c.node_name,
    c.enable_set,
    c.set_name,
    c.set_area,
    c.set_group,
    c.setting_state,
    c.present_state,
    c.flow_state,
    c.process_id,
    c.patch_version,
    c.patch_user,
    c.patch_time,
    c.server_type,
    c.template_name,
)


async def instances(
    platform: Platform,
    actor: Actor,
    query: PageQuery,
    *,
    application: str | None = None,
    server_name: str | None = None,
    node_name: str | None = None,
) -> Page[Instance]:
    """Instances the actor may see, by application, server and node; ``query.q`` matches
    the application, server or node (IP) as a substring."""
    where = _conditions(
        actor, application=application, server_name=server_name, node_name=node_name
    )
    if query.q:
        where.append(_search(query.q))
    rows_q = (
        select(*_LIST_COLUMNS)
        .where(*where)
        .order_by(c.application, c.server_name, c.node_name)
        .offset(query.offset)
        .limit(query.size)
    )
    count_q = select(func.count()).select_from(t_server_conf).where(*where)
    async with platform.store.connect() as conn:
        rows = (await conn.execute(rows_q)).all()
        total = int(await conn.scalar(count_q) or 0)
    items = [
        Instance(
            id=r.id,
            application=r.application or "",
            server_name=r.server_name or "",
            node_name=r.node_name,
            set_id=_set_id(r.enable_set, r.set_name, r.set_area, r.set_group),
            setting_state=r.setting_state,
            present_state=r.present_state,
            flow_state=r.flow_state,
            pid=int(r.process_id or 0),
            patch_version=r.patch_version or "",
            patch_user=r.patch_user or "",
            patch_time=r.patch_time,
            server_type=r.server_type,
            template_name=r.template_name,
        )
        for r in rows
    ]
    return Page.of(items, total, query)


async def tree(
    platform: Platform, actor: Actor, q: str = "", expand: str | None = None
) -> list[TreeApp]:
    """The applications the actor may see, with sets and servers under the one named
    ``expand`` (a fleet's tree is too big to send whole: upstream's console opens a level at a
    time too); with a search ``q``, every server whose application, name or one of whose
    nodes (IP) contains it, expanded."""
    PageQuery(q=q)  # the same limits on the search
    where = _conditions(actor)
    if q:
        where.append(_search(q))
    apps_q = (
        select(c.application, func.count().label("n"))
        .where(*where)
        .group_by(c.application)
        .order_by(c.application)
    )
    async with platform.store.connect() as conn:
        apps = {
            (r.application or ""): TreeApp(r.application or "", int(r.n))
            for r in await conn.execute(apps_q)
        }
        if not q and (expand is None or expand not in apps):
            return list(apps.values())
        detail = [*where] if q else [*where, c.application == expand]
        servers_q = (
            select(
                c.application,
                c.enable_set,
                c.set_name,
                c.set_area,
                c.set_group,
                c.server_name,
                func.count().label("n"),
            )
            .where(*detail)
            .group_by(
                c.application, c.enable_set, c.set_name, c.set_area, c.set_group, c.server_name
            )
            .order_by(c.application, c.set_name, c.set_area, c.set_group, c.server_name)
        )
        rows = (await conn.execute(servers_q)).all()
    sets: dict[tuple[str, str], TreeSet] = {}
    for r in rows:
        app_name = r.application or ""
        app = apps[app_name]
        app.expanded = True
        set_id = _set_id(r.enable_set, r.set_name, r.set_area, r.set_group)
        tree_set = sets.get((app_name, set_id))
        if tree_set is None:
            tree_set = sets[(app_name, set_id)] = TreeSet(set_id)
            app.sets.append(tree_set)
        if set_id:
            name, area, group = set_id.split(".")
            tree_id = f"1{app_name}.2{name}.3{area}.4{group}.5{r.server_name}"
        else:
            tree_id = f"1{app_name}.5{r.server_name}"
        tree_set.servers.append(TreeServer(r.server_name or "", tree_id, int(r.n)))
    for app in apps.values():
        app.sets.sort(key=lambda s: (s.name != "", s.name))
    return list(apps.values())


def count_servers(apps: Sequence[TreeApp]) -> int:
    return sum(len(s.servers) for a in apps for s in a.sets)
