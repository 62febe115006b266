"""``t_profile_template``: config templates with single inheritance (docs/config.md).

Resolution follows upstream: a template's parent is merged *under* it (the child wins), and a
visited-set ends the chain, so ``tars.default`` (installed as its own parent) and any loop an
outside writer creates stop instead of looping. Writes made here refuse to create a loop or to
name a missing parent.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select, update

from tarsus.conf import ConfigError, TemplateError, merge_profile, parse, resolve_template
from tarsus.conf.templates import BUILTIN_PARENTS
from tarsus.store.errors import Conflict, InvalidInput, NotFound
from tarsus.store.rows import ServerRow, TemplateRow, read_template
from tarsus.store.schema import t_node_info, t_profile_template, t_server_conf

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tarsus.store.engine import Store

__all__ = ["Templates", "parent_map"]

log = logging.getLogger("tarsus.store")

_NAME_MAX = 128
_USER_MAX = 30


class Templates:
    """Read, write and resolve profile templates."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, name: str) -> TemplateRow | None:
        """The template ``name``, or None."""
        async with self._store.connect() as conn:
            row = (
                await conn.execute(
                    read_template.select().where(t_profile_template.c.template_name == name)
                )
            ).first()
        return None if row is None else read_template(row)

    async def list(self) -> list[TemplateRow]:
        """Every template, by name."""
        async with self._store.connect() as conn:
            rows = await conn.execute(
                read_template.select().order_by(t_profile_template.c.template_name)
            )
            return [read_template(r) for r in rows]

    async def upsert(
        self, name: str, parents_name: str, profile: str, user: str = "", *, force: bool = False
    ) -> None:
        """Create or replace template ``name``.

        ``profile`` must parse as TC_Config; ``parents_name`` must be empty, ``name`` itself, or
        an existing template that does not (through its ancestors) inherit ``name``. Changing
        the text or the parent of a built-in template (``tars.default``,
        ``tars.tarspython.default``...: every server inherits from one) needs ``force``.
        """
        if not name or len(name) > _NAME_MAX:
            raise InvalidInput(f"template_name must be 1 to {_NAME_MAX} characters, got {name!r}")
        if len(parents_name) > _NAME_MAX:
            raise InvalidInput(f"parents_name of template {name!r} is over {_NAME_MAX} characters")
        if len(user) > _USER_MAX:
            raise InvalidInput(f"user (lastuser) is over {_USER_MAX} characters: {user!r}")
        try:
            parse(profile, source=f"template {name!r}")
        except ConfigError as err:
            raise InvalidInput(
                f"profile of template {name!r} is not valid TC_Config: {err}"
            ) from None
        now = self._store.clock()
        async with self._store.begin() as conn:
            if name in BUILTIN_PARENTS and not force:
                stored = (
                    await conn.execute(
                        select(
                            t_profile_template.c.parents_name, t_profile_template.c.profile
                        ).where(t_profile_template.c.template_name == name)
                    )
                ).first()
                if stored is not None and tuple(stored) != (parents_name, profile):
                    what = "re-parent" if (stored[0] or "") != parents_name else "overwrite"
                    raise InvalidInput(
                        f"template {name!r} is built in and every server inheriting it would "
                        f"change: to {what} it, say so (force; tarsus template set --force)"
                    )
            if parents_name and parents_name != name:
                parents = await parent_map(conn)
                if parents_name not in parents:
                    raise InvalidInput(
                        f"parents_name of template {name!r}: "
                        f"template {parents_name!r} does not exist"
                    )
                seen = [name]
                current = parents_name
                while current and current not in seen:
                    seen.append(current)
                    up = parents.get(current, "")
                    current = "" if up == current else up
                if current == name:
                    raise InvalidInput(
                        f"parents_name of template {name!r}: {parents_name!r} would make "
                        f"templates inherit in a loop: {' -> '.join([*seen, name])}"
                    )
            values = {
                "parents_name": parents_name,
                "profile": profile,
                "posttime": now,
                "lastuser": user,
            }
            changed = await conn.execute(
                update(t_profile_template)
                .where(t_profile_template.c.template_name == name)
                .values(values)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(t_profile_template).values(template_name=name, **values))

    async def delete(self, name: str) -> None:
        """Delete template ``name``; :class:`Conflict` while a server, node or template uses it."""
        async with self._store.begin() as conn:
            found = await conn.scalar(
                select(func.count()).where(t_profile_template.c.template_name == name)
            )
            if not found:
                raise NotFound(f"template {name!r} does not exist")
            users = await _template_users(conn, name)
            if users:
                raise Conflict(f"template {name!r} is still used by {users}; change them first")
            await conn.execute(
                delete(t_profile_template).where(t_profile_template.c.template_name == name)
            )

    async def resolve(self, name: str) -> str:
        """The text of template ``name`` merged with its ancestors (the child wins each key)."""
        async with self._store.connect() as conn:
            templates = await _all_templates(conn)
        return _resolve(name, templates)

    async def server_profile(self, row: ServerRow) -> str:
        """A server's effective profile: its resolved template with its private profile
        (``t_server_conf.profile``) merged on top, private values winning (upstream
        ``getServers``). ``${macros}`` are left for the node to expand."""
        (profile,) = await self.server_profiles([row])
        return profile

    async def server_profiles(self, rows: Sequence[ServerRow]) -> builtins.list[str]:
        """:meth:`server_profile` of each row, reading the templates once (for a whole node)."""
        templates: dict[str, tuple[str, str]] = {}
        if any(row.template_name for row in rows):
            async with self._store.connect() as conn:
                templates = await _all_templates(conn)
        resolved: dict[str, str] = {}
        profiles: list[str] = []
        for row in rows:
            where = f"server {row.application}.{row.server_name} on node {row.node_name!r}"
            name = row.template_name
            if name not in resolved:
                try:
                    resolved[name] = _resolve(name, templates) if name else ""
                except NotFound:
                    raise NotFound(
                        f"{where} uses template {name!r}, which does not exist"
                    ) from None
            try:
                base = parse(resolved[name], source=f"template {name!r}")
                merged = merge_profile(base, row.profile)
            except ConfigError as err:
                raise InvalidInput(
                    f"private profile of {where} is not valid TC_Config: {err}"
                ) from None
            profiles.append(merged.tostr())
        return profiles


async def parent_map(conn: AsyncConnection) -> dict[str, str]:
    """Every template's name and its parent's name."""
    rows = await conn.execute(
        select(t_profile_template.c.template_name, t_profile_template.c.parents_name)
    )
    return {name: parent or "" for name, parent in rows}


async def _all_templates(conn: AsyncConnection) -> dict[str, tuple[str, str]]:
    rows = await conn.execute(
        select(
            t_profile_template.c.template_name,
            t_profile_template.c.profile,
            t_profile_template.c.parents_name,
        )
    )
    return {name: (profile or "", parent or "") for name, profile, parent in rows}


def _resolve(name: str, templates: dict[str, tuple[str, str]]) -> str:
    """Upstream's resolution over ``{name: (profile, parent)}``: a parent already visited, or
    missing, ends the chain (logged), rather than failing the whole lookup."""
    if name not in templates:
        raise NotFound(f"template {name!r} does not exist")
    visited: set[str] = set()

    def lookup(current: str) -> tuple[str, str | None] | None:
        found = templates.get(current)
        if found is None:
            return None
        visited.add(current)
        profile, parent = found
        if parent and parent != current:
            if parent in visited:
                log.warning("templates inherit in a loop at %r -> %r; chain cut", current, parent)
                parent = ""
            elif parent not in templates:
                log.warning("template %r names missing parent %r; chain cut", current, parent)
                parent = ""
        return profile, parent

    try:
        return resolve_template(name, lookup).tostr()
    except TemplateError as err:
        raise InvalidInput(f"template {name!r} cannot be resolved: {err}") from None


async def _template_users(conn: AsyncConnection, name: str) -> str:
    """Who uses template ``name``, in words; "" if nobody."""
    parts: list[str] = []
    servers = (
        await conn.execute(
            select(t_server_conf.c.application, t_server_conf.c.server_name)
            .where(t_server_conf.c.template_name == name)
            .distinct()
            .limit(5)
        )
    ).all()
    if servers:
        parts.append("servers " + ", ".join(f"{a}.{s}" for a, s in servers))
    nodes = list(
        await conn.scalars(
            select(t_node_info.c.node_name).where(t_node_info.c.template_name == name).limit(5)
        )
    )
    if nodes:
        parts.append("nodes " + ", ".join(nodes))
    children = list(
        await conn.scalars(
            select(t_profile_template.c.template_name)
            .where(
                t_profile_template.c.parents_name == name,
                t_profile_template.c.template_name != name,
            )
            .limit(5)
        )
    )
    if children:
        parts.append("templates " + ", ".join(children))
    return "; ".join(parts)
