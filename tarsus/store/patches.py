"""``t_server_patchs``: the release packages of each server (the package store's rows).

One row per uploaded package of ``App.Server``: its file's name on the package store
(``tgz``, a plain file name under ``App/Server``), md5, who uploaded it and when, the comment
(``update_text``), whether it is the server's default package (``default_version``, one per
server) and its last publish (``publish``, ``publish_user``, ``publish_time``). The row's ``id``
is the *patch id* a publish names (``PatchRequest.version``, a task item's ``patch_id``) and
that a node writes back as the instance's ``t_server_conf.patch_version`` once installed.

Upstream's web console writes these rows itself (TarsWeb ``PatchDao``), so rows read here may
have come from it: every column is read as upstream's C++ reads it (:mod:`tarsus.store.rows`).

Retention (upstream ``DbProxy``'s history pruning, ``patchHistory``): :meth:`Patches.prune`
keeps the newest N rows of a server and never deletes one that an instance runs now nor the
default; the caller removes the pruned files from the package store.
"""

from __future__ import annotations

import builtins
import re
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from tarsus.names import InvalidName, check_application, check_package_file, check_server_name
from tarsus.store.errors import Conflict, InvalidInput, NotFound
from tarsus.store.rows import PatchRow, read_patch
from tarsus.store.schema import t_server_conf, t_server_patchs

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tarsus.store.engine import Store

__all__ = [
    "PATCH_HISTORY",
    "PATCH_HISTORY_MIN",
    "Patches",
    "check_package",
    "parse_patch_id",
    "split_server",
]

#: Packages kept per server by default, and the least a setting may ask for (upstream
#: ``/tars/patch<patchHistory>``, DbProxy: 200, at least 10).
PATCH_HISTORY = 200
PATCH_HISTORY_MIN = 10

_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_SERVER_MAX = 50  # t_server_patchs.server
_COMMENT_MAX = 255  # update_text
_USER_MAX = 30  # upload_user, publish_user, lastuser
_ID_MAX = 2**31 - 1


def parse_patch_id(text: str | int) -> int | None:
    """A patch id as a number (a task item's ``patch_id`` and ``PatchRequest.version`` are
    text), or None when it is not a positive 32-bit decimal number."""
    if isinstance(text, int):
        value = text
    else:
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            return None
        value = int(text)
    return value if 0 < value <= _ID_MAX else None


def split_server(server: str) -> tuple[str, str]:
    """``App.Server`` as ``(App, Server)``, both checked (:mod:`tarsus.names`); InvalidInput
    otherwise."""
    app, dot, name = server.partition(".")
    try:
        if not dot:
            raise InvalidName(f"server {server!r} is not 'App.Server'")
        check_application(app)
        check_server_name(name)
    except InvalidName as e:
        raise InvalidInput(str(e)) from None
    if len(server) > _SERVER_MAX:
        raise InvalidInput(f"server {server!r} is {len(server)} characters; at most {_SERVER_MAX}")
    return app, name


def check_package(
    server: str, tgz: str, md5: str, *, comment: str = "", user: str = "", package_type: int = 0
) -> None:
    """What :meth:`Patches.add` accepts, checked without the database: ``App.Server`` names
    (:mod:`tarsus.names`, at most 50 characters), ``tgz`` a plain file name, ``md5`` 32 hex
    digits, a comment of at most 255 characters, a user of at most 30. InvalidInput naming
    the field otherwise."""
    split_server(server)
    try:
        check_package_file(tgz)
    except InvalidName as e:
        raise InvalidInput(str(e)) from None
    if not _MD5.fullmatch(md5):
        raise InvalidInput(f"md5 {md5[:40]!r} is not 32 hexadecimal digits")
    if len(comment) > _COMMENT_MAX:
        raise InvalidInput(
            f"comment is {len(comment)} characters; at most {_COMMENT_MAX} (update_text)"
        )
    _check_user(user, "user")
    if not 0 <= package_type <= 127:
        raise InvalidInput(f"package_type {package_type} is not within 0-127")


def _check_user(user: str, what: str) -> None:
    if len(user) > _USER_MAX:
        raise InvalidInput(f"{what} {user[:40]!r} is {len(user)} characters; at most {_USER_MAX}")


class Patches:
    """Read and write ``t_server_patchs``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(
        self,
        server: str,
        tgz: str,
        md5: str,
        *,
        comment: str = "",
        user: str = "",
        package_type: int = 0,
    ) -> int:
        """Record package ``tgz`` of ``server`` (``App.Server``) with its md5 (32 hex digits,
        stored lower case); returns its patch id. Upload time and post time are now.
        :class:`InvalidInput` for what :func:`check_package` refuses."""
        check_package(server, tgz, md5, comment=comment, user=user, package_type=package_type)
        now = self._store.clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                insert(t_server_patchs).values(
                    server=server,
                    version="",
                    tgz=tgz,
                    md5=md5.lower(),
                    update_text=comment,
                    reason_select="",
                    is_server_group=0,
                    publish=0,
                    upload_time=now,
                    upload_user=user,
                    posttime=now,
                    lastuser=user,
                    package_type=package_type,
                    group_id="",
                    default_version=0,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    async def get(self, patch_id: int) -> PatchRow | None:
        """The package with id ``patch_id`` (upstream ``getInfoByPatchId``), or None."""
        async with self._store.connect() as conn:
            return await _get(conn, patch_id)

    async def list(self, server: str) -> builtins.list[PatchRow]:
        """The packages of ``server`` (``App.Server``), newest (highest id) first."""
        async with self._store.connect() as conn:
            rows = await conn.execute(
                read_patch.select()
                .where(t_server_patchs.c.server == server)
                .order_by(t_server_patchs.c.id.desc())
            )
            return [read_patch(r) for r in rows]

    async def find(self, server: str, package_type: int, default_version: int) -> PatchRow | None:
        """The newest package of ``server`` with that ``package_type`` and
        ``default_version`` (AdminReg ``getPatchPackage``), or None."""
        p = t_server_patchs.c
        async with self._store.connect() as conn:
            row = (
                await conn.execute(
                    read_patch.select()
                    .where(
                        p.server == server,
                        p.package_type == package_type,
                        p.default_version == default_version,
                    )
                    .order_by(p.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else read_patch(row)

    async def deployed(self, server: str) -> dict[int, builtins.list[str]]:
        """Which packages of ``server`` instances run now: patch id -> node names, from
        ``t_server_conf.patch_version`` (what a node writes after installing)."""
        async with self._store.connect() as conn:
            return await _deployed(conn, server)

    async def delete(self, patch_id: int) -> PatchRow:
        """Delete package ``patch_id``'s row and return it (the caller removes its file).
        :class:`NotFound` if there is none; :class:`Conflict` while an instance runs it."""
        async with self._store.begin() as conn:
            row = await _get(conn, patch_id)
            if row is None:
                raise NotFound(f"there is no package with id {patch_id}")
            nodes = (await _deployed(conn, row.server)).get(row.id)
            if nodes:
                raise Conflict(
                    f"package {row.id} ({row.tgz}) of {row.server} is deployed on "
                    f"{', '.join(nodes)}; publish another version there first"
                )
            await conn.execute(delete(t_server_patchs).where(t_server_patchs.c.id == row.id))
        return row

    async def set_default(self, patch_id: int, user: str = "") -> PatchRow:
        """Make ``patch_id`` its server's default package and no other (``default_version``);
        :class:`NotFound` if there is no such package."""
        _check_user(user, "user")
        p = t_server_patchs.c
        async with self._store.begin() as conn:
            row = await _get(conn, patch_id)
            if row is None:
                raise NotFound(f"there is no package with id {patch_id}")
            await conn.execute(
                update(t_server_patchs)
                .where(p.server == row.server, p.default_version != 0, p.id != row.id)
                .values(default_version=0)
            )
            await conn.execute(
                update(t_server_patchs)
                .where(p.id == row.id)
                .values(default_version=1, lastuser=user)
            )
        return row

    async def record_publish(self, patch_id: int, user: str) -> bool:
        """Upstream ``updatePatchLog``: package ``patch_id`` was published by ``user`` now
        (``publish=1``; upstream writes the same whether the publish worked or not). A user
        name longer than the column is cut. False for an unknown id."""
        now = self._store.clock()
        who = user[:_USER_MAX]
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_server_patchs)
                .where(t_server_patchs.c.id == patch_id)
                .values(publish=1, publish_user=who, publish_time=now, lastuser=who)
            )
        return result.rowcount > 0

    async def prune(self, server: str, keep: int) -> builtins.list[PatchRow]:
        """Retention: delete the rows of ``server`` beyond its newest ``keep``, except one
        that an instance runs now and the default one. Returns the deleted rows (the caller
        removes their files from the package store)."""
        if keep < 1:
            raise InvalidInput(f"packages to keep per server must be at least 1, got {keep}")
        p = t_server_patchs.c
        async with self._store.begin() as conn:
            rows = [
                read_patch(r)
                for r in await conn.execute(
                    read_patch.select().where(p.server == server).order_by(p.id.desc())
                )
            ]
            if len(rows) <= keep:
                return []
            running = await _deployed(conn, server)
            doomed = [r for r in rows[keep:] if r.id not in running and not r.default_version]
            if doomed:
                await conn.execute(delete(t_server_patchs).where(p.id.in_([r.id for r in doomed])))
        return doomed


async def _get(conn: AsyncConnection, patch_id: int) -> PatchRow | None:
    row = (await conn.execute(read_patch.select().where(t_server_patchs.c.id == patch_id))).first()
    return None if row is None else read_patch(row)


async def _deployed(conn: AsyncConnection, server: str) -> dict[int, list[str]]:
    app, _, name = server.partition(".")
    c = t_server_conf.c
    rows = await conn.execute(
        select(c.node_name, c.patch_version)
        .where(c.application == app, c.server_name == name)
        .order_by(c.node_name)
    )
    out: dict[int, list[str]] = {}
    for node, version in rows:
        patch_id = parse_patch_id((version or "").strip())
        if patch_id is not None:
            out.setdefault(patch_id, []).append(node or "")
    return out
