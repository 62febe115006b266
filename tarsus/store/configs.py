"""``t_config_files``, ``t_config_history_files``, ``t_config_references``: business config
files of the config center (upstream ``tarsconfig``, TarsFramework ``ConfigServer/ConfigImp``).

A file lives at one of upstream's levels (:class:`Level`): 1 an application file
(``server_name`` = ``App``; a *set* file when its set columns are filled), 2 a server file
(``App.Server``), 3 a node file (``App.Server`` on one ``host``). Level-2 and level-3 files may
reference level-1 files of their application. Every saved content is also a history row.

What an instance gets (:meth:`Configs.merged`) is upstream's text concatenation, in this order,
empty parts skipped, joined by ``"\\r\\n\\r\\n"``: the files the level-2 file references (each
followed, for a caller in a set, by its set variant), the level-2 file, the files the level-3
file references, the level-3 file. Precedence is therefore by position: node > server > set >
application; nothing parses the text here.

Upstream's web console writes these tables itself (TarsWeb ``ConfigService``), so rows read
here may come from it; its ``config_flag`` and ``reason_select`` columns are kept as it writes
them.
"""

from __future__ import annotations

import builtins
import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tarsus.names import (
    InvalidName,
    check_application,
    check_config_file,
    check_node_name,
    check_server_name,
)
from tarsus.store.errors import Conflict, InvalidInput, NotFound, is_duplicate_key
from tarsus.store.rows import RowReader
from tarsus.store.schema import (
    t_config_files,
    t_config_history_files,
    t_config_references,
    t_server_conf,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tarsus.store.engine import Store

__all__ = [
    "MAX_CONFIG_SIZE",
    "MERGE_SEPARATOR",
    "ConfigFileRow",
    "ConfigVersionRow",
    "Configs",
    "Level",
    "SetDivision",
    "parse_set",
]

#: Bytes a config file may hold by default: a node's ``loadConfig`` answer carries the merged
#: text in one packet (at most 10 MiB on a server's adapter), so the parts must stay well below.
MAX_CONFIG_SIZE = 2 * 1024 * 1024
#: What separates the parts of a merged file (upstream ``ConfigImp``).
MERGE_SEPARATOR = "\r\n\r\n"

_SET_PART = re.compile(r"[A-Za-z0-9_*]{1,16}")
_REASON_MAX = 128  # t_config_history_files.reason
_USER_MAX = 50  # lastuser
_HOST_MAX = 50  # t_config_files.host


class Level(enum.IntEnum):
    """``t_config_files.level``."""

    APP = 1
    SERVER = 2
    NODE = 3


@dataclass(frozen=True, slots=True)
class SetDivision:
    """A set, ``name.area.group``; the empty one (no set) is ``SetDivision()``."""

    name: str = ""
    area: str = ""
    group: str = ""

    def __bool__(self) -> bool:
        return bool(self.name)

    def __str__(self) -> str:
        return f"{self.name}.{self.area}.{self.group}" if self.name else ""


def parse_set(text: str) -> SetDivision:
    """``"name.area.group"`` (each part letters, digits, ``_`` or ``*``, at most 16), or ""
    for no set; :class:`InvalidInput` otherwise (upstream answers -1 to a malformed one)."""
    if not text:
        return SetDivision()
    parts = text.split(".")
    if len(parts) != 3 or not all(_SET_PART.fullmatch(p) for p in parts):
        raise InvalidInput(f"set {text[:60]!r} is not 'name.area.group'")
    return SetDivision(*parts)


@dataclass(frozen=True, slots=True)
class ConfigFileRow:
    """One ``t_config_files`` row."""

    id: int
    server_name: str
    set_name: str
    set_area: str
    set_group: str
    host: str
    filename: str
    config: str
    posttime: datetime | None
    lastuser: str
    level: int
    config_flag: int

    @property
    def set(self) -> SetDivision:
        return SetDivision(self.set_name, self.set_area, self.set_group)

    @property
    def application(self) -> str:
        return self.server_name.partition(".")[0]


@dataclass(frozen=True, slots=True)
class ConfigVersionRow:
    """One ``t_config_history_files`` row."""

    id: int
    configid: int
    reason: str
    reason_select: str
    content: str
    posttime: datetime | None
    lastuser: str


read_file = RowReader(t_config_files, ConfigFileRow)
read_version = RowReader(t_config_history_files, ConfigVersionRow)

_F = t_config_files.c


def _invalid(e: InvalidName) -> InvalidInput:
    return InvalidInput(str(e))


def check_owner(level: int, server_name: str) -> None:
    """``App`` for level 1, ``App.Server`` for levels 2 and 3; InvalidInput otherwise."""
    try:
        if level == Level.APP:
            check_application(server_name)
        elif level in (Level.SERVER, Level.NODE):
            app, dot, name = server_name.partition(".")
            if not dot:
                raise InvalidName(f"server {server_name[:60]!r} is not 'App.Server'")
            check_application(app)
            check_server_name(name)
        else:
            raise InvalidName(f"level {level} is not 1 (application), 2 (server) or 3 (node)")
    except InvalidName as e:
        raise _invalid(e) from None


def _check_text(value: str, what: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInput(f"{what} {value[:40]!r}... is {len(value)} characters; at most {limit}")


def _set_match(division: SetDivision) -> Any:
    return and_(
        _F.set_name == division.name, _F.set_area == division.area, _F.set_group == division.group
    )


class Configs:
    """Read and write the config center's tables."""

    def __init__(self, store: Store, *, max_size: int = MAX_CONFIG_SIZE) -> None:
        self._store = store
        self.max_size = max_size

    def _check_content(self, content: str) -> None:
        size = len(content.encode("utf-8", errors="surrogatepass"))
        if size > self.max_size:
            raise InvalidInput(f"the content is {size} bytes; at most {self.max_size}")

    # ------------------------------------------------------------------ writes

    async def add(
        self,
        level: int,
        server_name: str,
        filename: str,
        content: str,
        *,
        division: SetDivision = SetDivision(),
        host: str = "",
        reason: str = "",
        user: str = "",
    ) -> int:
        """Store a new file and its first version; returns its id. A level-2 file also gets
        an empty level-3 file of that name for every instance of the server in that set, as
        upstream's console does (``ListConfig`` lists level 3 only). :class:`Conflict` when
        the file exists; :class:`InvalidInput` for a bad name, level, host or size."""
        check_owner(level, server_name)
        try:
            check_config_file(filename)
            if level == Level.NODE:
                check_node_name(host)
        except InvalidName as e:
            raise _invalid(e) from None
        if level != Level.NODE and host:
            raise InvalidInput("only a node file (level 3) has a host")
        _check_text(host, "host", _HOST_MAX)
        _check_text(reason, "reason", _REASON_MAX)
        _check_text(user, "user", _USER_MAX)
        self._check_content(content)
        now = self._store.clock()
        async with self._store.begin() as conn:
            try:
                new_id = await _insert_file(
                    conn, level, server_name, filename, content, division, host, user, now
                )
            except IntegrityError as e:
                if is_duplicate_key(e):
                    raise Conflict(
                        f"{filename} already exists at level {level} for {server_name}"
                        + (f" on {host}" if host else "")
                        + (f" in set {division}" if division else "")
                    ) from None
                raise
            await _insert_version(conn, new_id, content, reason, user, now)
            if level == Level.SERVER:
                for node in await _instances(conn, server_name, division):
                    await _insert_file(
                        conn, Level.NODE, server_name, filename, "", division, node, user, now,
                        if_missing=True,
                    )  # fmt: skip
            return new_id

    async def update(
        self, config_id: int, content: str, *, reason: str = "", user: str = ""
    ) -> None:
        """Replace the content of file ``config_id``; the new content is a history version."""
        _check_text(reason, "reason", _REASON_MAX)
        _check_text(user, "user", _USER_MAX)
        self._check_content(content)
        now = self._store.clock()
        async with self._store.begin() as conn:
            await _require(conn, config_id)
            await conn.execute(
                update(t_config_files)
                .where(_F.id == config_id)
                .values(config=content, posttime=now, lastuser=user)
            )
            await _insert_version(conn, config_id, content, reason, user, now)

    async def delete(self, config_id: int) -> builtins.list[int]:
        """Delete file ``config_id`` with its history and references (and, for a level-2
        file, its level-3 files); returns the ids deleted. :class:`Conflict` while another
        file references it."""
        async with self._store.begin() as conn:
            row = await _require(conn, config_id)
            users = (
                await conn.execute(
                    select(t_config_references.c.config_id).where(
                        t_config_references.c.reference_id == config_id
                    )
                )
            ).all()
            if users:
                names = ", ".join(str(r[0]) for r in users)
                raise Conflict(f"{row.filename} ({config_id}) is referenced by file(s) {names}")
            ids = [config_id]
            if row.level == Level.SERVER:
                nodes = await conn.execute(
                    select(_F.id).where(
                        _F.server_name == row.server_name,
                        _F.filename == row.filename,
                        _F.level == Level.NODE,
                        _set_match(row.set),
                    )
                )
                ids += [int(r[0]) for r in nodes]
            await conn.execute(delete(t_config_files).where(_F.id.in_(ids)))
            await conn.execute(
                delete(t_config_history_files).where(t_config_history_files.c.configid.in_(ids))
            )
            await conn.execute(
                delete(t_config_references).where(t_config_references.c.config_id.in_(ids))
            )
            return ids

    async def add_reference(self, config_id: int, reference_id: int) -> None:
        """Let level-2/3 file ``config_id`` include level-1 file ``reference_id`` (no set, same
        application). :class:`NotFound`, :class:`InvalidInput`, or :class:`Conflict` when it
        does already."""
        async with self._store.begin() as conn:
            row = await _require(conn, config_id)
            ref = await _require(conn, reference_id)
            if row.level not in (Level.SERVER, Level.NODE):
                raise InvalidInput(
                    f"only a server or node file references: {config_id} is level {row.level}"
                )
            if ref.level != Level.APP or ref.set:
                raise InvalidInput(
                    f"only an application file (level 1, no set) can be referenced: "
                    f"{reference_id} is level {ref.level}"
                    + (f" in set {ref.set}" if ref.set else "")
                )
            if ref.server_name != row.application:
                raise InvalidInput(
                    f"{reference_id} belongs to application {ref.server_name}, "
                    f"{config_id} to {row.application}"
                )
            try:
                await conn.execute(
                    insert(t_config_references).values(
                        config_id=config_id, reference_id=reference_id
                    )
                )
            except IntegrityError as e:
                if is_duplicate_key(e):
                    raise Conflict(f"{config_id} references {reference_id} already") from None
                raise

    async def remove_reference(self, config_id: int, reference_id: int) -> None:
        """:class:`NotFound` when ``config_id`` does not reference ``reference_id``."""
        r = t_config_references.c
        async with self._store.begin() as conn:
            result = await conn.execute(
                delete(t_config_references).where(
                    r.config_id == config_id, r.reference_id == reference_id
                )
            )
            if not result.rowcount:
                raise NotFound(f"file {config_id} does not reference {reference_id}")

    async def restore(self, version_id: int, *, reason: str = "", user: str = "") -> int:
        """Make version ``version_id`` its file's content again (a new version); returns the
        file's id. :class:`NotFound` when the version or its file is gone."""
        version = await self.version(version_id)
        if version is None:
            raise NotFound(f"no config version {version_id}")
        await self.update(
            version.configid, version.content, reason=reason or f"restore {version_id}", user=user
        )
        return version.configid

    # ------------------------------------------------------------------ reads for operators

    async def get(self, config_id: int) -> ConfigFileRow | None:
        async with self._store.connect() as conn:
            return await _get(conn, config_id)

    async def references(self, config_id: int) -> builtins.list[int]:
        """Ids of the files ``config_id`` references, in the order they were added."""
        async with self._store.connect() as conn:
            return [r.id for r in await _referenced(conn, config_id)]

    async def list(
        self,
        application: str,
        *,
        server: str = "",
        level: int = 0,
        filename: str = "",
        division: SetDivision | None = None,
        host: str = "",
    ) -> builtins.list[ConfigFileRow]:
        """The files of ``application`` (``server``: one server's; ``level`` 0: every level),
        by level, server, file name, set and host."""
        try:
            check_application(application)
            if server:
                check_server_name(server)
        except InvalidName as e:
            raise _invalid(e) from None
        owner = (
            _F.server_name == f"{application}.{server}"
            if server
            else (_F.server_name == application) | _F.server_name.like(f"{application}.%")
        )
        where = [owner]
        if level:
            where.append(_F.level == level)
        if filename:
            where.append(_F.filename == filename)
        if division is not None:
            where.append(_set_match(division))
        if host:
            where.append(_F.host == host)
        async with self._store.connect() as conn:
            rows = await conn.execute(
                read_file.select()
                .where(*where)
                .order_by(_F.level, _F.server_name, _F.filename, _F.host, _F.id)
            )
            return [read_file(r) for r in rows]

    async def history(self, config_id: int) -> builtins.list[ConfigVersionRow]:
        """The versions of file ``config_id``, newest first."""
        h = t_config_history_files.c
        async with self._store.connect() as conn:
            rows = await conn.execute(
                read_version.select().where(h.configid == config_id).order_by(h.id.desc())
            )
            return [read_version(r) for r in rows]

    async def version(self, version_id: int) -> ConfigVersionRow | None:
        async with self._store.connect() as conn:
            row = (
                await conn.execute(
                    read_version.select().where(t_config_history_files.c.id == version_id)
                )
            ).first()
        return None if row is None else read_version(row)

    # ------------------------------------------------------------------ reads for ConfigF

    async def node_files(self, server: str, host: str, division: SetDivision) -> builtins.list[str]:
        """``ListConfig``: the names of the level-3 files of ``server`` on ``host``."""
        async with self._store.connect() as conn:
            rows = await conn.execute(
                select(_F.filename)
                .where(
                    _F.server_name == server,
                    _F.level == Level.NODE,
                    _F.host == host,
                    _set_match(division),
                )
                .order_by(_F.filename)
            )
            return [str(r[0]) for r in rows]

    async def all_files(
        self, application: str, server: str, *, app_only: bool, host: str, division: SetDivision
    ) -> builtins.list[str]:
        """``ListAllConfigByInfo``: distinct names of the application's level-1 files
        (``app_only``), else of ``App.Server``'s files (level 3 on ``host`` when given),
        in ``division`` (or no set)."""
        if app_only:
            where = [_F.server_name == application, _F.level == Level.APP]
        else:
            where = [_F.server_name == f"{application}.{server}", _set_match(division)]
            if host:
                where += [_F.host == host, _F.level == Level.NODE]
        async with self._store.connect() as conn:
            rows = await conn.execute(
                select(_F.filename).where(*where).distinct().order_by(_F.filename)
            )
            return [str(r[0]) for r in rows]

    async def app_file(self, application: str, filename: str, division: SetDivision) -> str:
        """An application's file: its level-1 content, followed by its set variant for a
        caller in a set (upstream ``loadConfigByInfo`` with ``bAppOnly``)."""
        async with self._store.connect() as conn:
            parts = [await _content(conn, application, filename, Level.APP, "", SetDivision())]
            if division:
                parts.append(await _content(conn, application, filename, Level.APP, "", division))
        return _join(parts)

    async def merged(self, server: str, filename: str, host: str, division: SetDivision) -> str:
        """What instance ``server`` (``App.Server``) on ``host`` in ``division`` gets for
        ``filename``: see the module's docstring. "" when there is no such file."""
        parts: builtins.list[str] = []
        async with self._store.connect() as conn:
            for level, where_host in ((Level.SERVER, ""), (Level.NODE, host)):
                row = await _find(conn, server, filename, level, where_host, division)
                if row is None:
                    continue
                for ref in await _referenced(conn, row.id):
                    parts.append(ref.config)
                    if division:
                        parts.append(
                            await _content(
                                conn, ref.server_name, ref.filename, Level.APP, "", division
                            )
                        )
                parts.append(row.config)
        return _join(parts)


def _join(parts: builtins.list[str]) -> str:
    return MERGE_SEPARATOR.join(p for p in parts if p)


async def _get(conn: AsyncConnection, config_id: int) -> ConfigFileRow | None:
    row = (await conn.execute(read_file.select().where(_F.id == config_id))).first()
    return None if row is None else read_file(row)


async def _require(conn: AsyncConnection, config_id: int) -> ConfigFileRow:
    row = await _get(conn, config_id)
    if row is None:
        raise NotFound(f"no config file {config_id}")
    return row


async def _find(
    conn: AsyncConnection,
    server_name: str,
    filename: str,
    level: int,
    host: str,
    division: SetDivision,
) -> ConfigFileRow | None:
    row = (
        await conn.execute(
            read_file.select()
            .where(
                _F.server_name == server_name,
                _F.filename == filename,
                _F.level == level,
                _F.host == host,
                _set_match(division),
            )
            .order_by(_F.id)
            .limit(1)
        )
    ).first()
    return None if row is None else read_file(row)


async def _content(
    conn: AsyncConnection,
    server_name: str,
    filename: str,
    level: int,
    host: str,
    division: SetDivision,
) -> str:
    row = await _find(conn, server_name, filename, level, host, division)
    return "" if row is None else row.config


async def _referenced(conn: AsyncConnection, config_id: int) -> builtins.list[ConfigFileRow]:
    r = t_config_references.c
    rows = await conn.execute(
        read_file.select()
        .join(t_config_references, r.reference_id == _F.id)
        .where(r.config_id == config_id)
        .order_by(r.id)
    )
    return [read_file(row) for row in rows]


async def _instances(
    conn: AsyncConnection, server_name: str, division: SetDivision
) -> builtins.list[str]:
    """The nodes of ``App.Server``'s instances in ``division`` (no set: those not in a set)."""
    app, _, name = server_name.partition(".")
    s = t_server_conf.c
    where = [s.application == app, s.server_name == name]
    if division:
        where += [
            s.enable_set == "Y",
            s.set_name == division.name,
            s.set_area == division.area,
            s.set_group == division.group,
        ]
    else:
        where.append(s.enable_set != "Y")
    rows = await conn.execute(select(s.node_name).where(*where).distinct())
    return [str(r[0]) for r in rows]


async def _insert_file(
    conn: AsyncConnection,
    level: int,
    server_name: str,
    filename: str,
    content: str,
    division: SetDivision,
    host: str,
    user: str,
    now: datetime,
    *,
    if_missing: bool = False,
) -> int:
    if if_missing and await _find(conn, server_name, filename, level, host, division):
        return 0
    result = await conn.execute(
        insert(t_config_files).values(
            server_name=server_name,
            set_name=division.name,
            set_area=division.area,
            set_group=division.group,
            host=host,
            filename=filename,
            config=content,
            posttime=now,
            lastuser=user,
            level=level,
            config_flag=0,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def _insert_version(
    conn: AsyncConnection, config_id: int, content: str, reason: str, user: str, now: datetime
) -> None:
    await conn.execute(
        insert(t_config_history_files).values(
            configid=config_id,
            reason=reason,
            reason_select="",
            content=content,
            posttime=now,
            lastuser=user,
        )
    )
