"""Opening the Tarsus database: URLs, drivers, connection settings, migration on open.

``await open_store()`` gives a :class:`Store` on ``./.tarsus/tarsus.db`` (SQLite);
``await open_store("mysql://user:pw@host:3306/db_tars")`` one on MySQL or MariaDB, creating the
database if it is missing. Either way the schema is migrated to head and the built-in templates
are installed before the store is returned.

Transactions: :meth:`Store.begin` is a write transaction (on SQLite it takes the write lock up
front, ``BEGIN IMMEDIATE``, so a transaction that reads then writes cannot fail half-way on a
lock upgrade, and writers of this process queue on an ``asyncio.Lock`` instead of polling);
:meth:`Store.connect` is a read transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from tarsus.store import migrate
from tarsus.store.alerts import Alerts
from tarsus.store.audit import Audit
from tarsus.store.configs import Configs
from tarsus.store.errors import (
    InvalidInput,
    StoreDamaged,
    StoreError,
    StoreUnavailable,
    driver_reason,
    mysql_code,
)
from tarsus.store.images import BaseImages
from tarsus.store.nodes import Nodes
from tarsus.store.notifys import Notifys
from tarsus.store.patches import Patches
from tarsus.store.servers import Servers
from tarsus.store.templates import Templates
from tarsus.store.users import Users

__all__ = [
    "DB_FILENAME",
    "DEFAULT_DATA_DIR",
    "Store",
    "drop_database",
    "normalize_url",
    "open_store",
]

log = logging.getLogger("tarsus.store")

#: Where the SQLite database goes when no URL and no ``data_dir`` are given.
DEFAULT_DATA_DIR = Path(".tarsus")
DB_FILENAME = "tarsus.db"

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}
_MYSQL_DRIVERS = {
    "mysql",
    "mysql+asyncmy",
    "mysql+pymysql",
    "mysql+mysqldb",
    "mysql+aiomysql",
    "mariadb",
    "mariadb+asyncmy",
    "mariadb+pymysql",
    "mariadb+mysqldb",
    "mariadb+aiomysql",
}
_DB_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")
#: Execution option read by the SQLite ``begin`` hook: ``DEFERRED`` (read) or ``IMMEDIATE``.
_SQLITE_BEGIN = "tarsus_sqlite_begin"
#: MySQL server error: unknown database.
_ER_BAD_DB = 1049
#: Stores this task is inside a write transaction of (nesting is refused, not deadlocked).
_WRITING: ContextVar[tuple[Store, ...]] = ContextVar("tarsus_store_writing", default=())
#: Seconds another process may hold the migration lock before we give up.
_MIGRATE_LOCK_S = 120


def normalize_url(url: str | URL | None, data_dir: Path | None = None) -> URL:
    """The async SQLAlchemy URL for a Tarsus database URL (see the module docstring).

    ``None`` is ``sqlite+aiosqlite:///<data_dir or ./.tarsus>/tarsus.db``; ``sqlite:``,
    ``mysql:`` and ``mariadb:`` URLs (with or without a driver) map to aiosqlite and asyncmy.
    """
    if url is None:
        path = (data_dir if data_dir is not None else DEFAULT_DATA_DIR) / DB_FILENAME
        return URL.create("sqlite+aiosqlite", database=str(path))
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise InvalidInput(f"database URL {_hide(url)!r} cannot be parsed: {err}") from None
    driver = parsed.drivername
    if driver in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite+aiosqlite")
    if driver in _MYSQL_DRIVERS:
        if not parsed.database:
            raise InvalidInput(
                f"database URL {_hide(parsed)!r} names no database; add one, e.g. "
                f"mysql://user:password@host:3306/db_tars"
            )
        if not _DB_NAME.fullmatch(parsed.database):
            raise InvalidInput(
                f"database name {parsed.database!r} in {_hide(parsed)!r} may only use "
                f"letters, digits, '_' and '$' (at most 64)"
            )
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        return parsed.set(drivername="mysql+asyncmy", query=query)
    raise InvalidInput(
        f"database URL {_hide(parsed)!r}: unsupported scheme {driver!r}; use sqlite:///path, "
        f"mysql://user:password@host:port/db or mariadb://..."
    )


def _hide(url: str | URL) -> str:
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class Store:
    """An open Tarsus database: the engine, a clock and the repositories.

    Use as ``async with await open_store(url) as store:`` or call :meth:`close` yourself.
    """

    engine: AsyncEngine
    #: The URL, password hidden.
    url: str
    dialect: Literal["sqlite", "mysql"]
    templates: Templates
    nodes: Nodes
    servers: Servers
    patches: Patches
    configs: Configs
    notifys: Notifys
    alerts: Alerts
    users: Users
    audit: Audit

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.url = _hide(engine.url)
        self.dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
        self._clock = clock or datetime.now
        # Writers of this process queue here rather than in SQLite's sleeping busy handler.
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self.templates = Templates(self)
        self.nodes = Nodes(self)
        self.servers = Servers(self)
        self.patches = Patches(self)
        self.configs = Configs(self)
        self.notifys = Notifys(self)
        self.alerts = Alerts(self)
        self.users = Users(self)
        self.audit = Audit(self)
        self.images = BaseImages(self)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def clock(self) -> datetime:
        """Now, as stored: naive local time with whole seconds (what MySQL DATETIME keeps)."""
        return self._clock().replace(microsecond=0, tzinfo=None)

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction, committed when the block ends without error.

        Do not call repository methods (which open their own) inside it: a nested write
        transaction raises :class:`StoreError` rather than deadlock.
        """
        return self._transaction(write=True)

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read transaction (rolled back at the end; a consistent snapshot on both engines)."""
        return self._transaction(write=False)

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        if write and self in _WRITING.get():
            # On SQLite the inner one would wait forever for the outer one's lock.
            raise StoreError(
                "a write transaction was opened inside another one (a repository method "
                "called inside `async with store.begin()`?); finish the first, or use its "
                "connection"
            )
        lock = self._write_lock if write else None
        if lock is not None:
            await lock.acquire()
        token = _WRITING.set((*_WRITING.get(), self)) if write else None
        try:
            try:
                conn = await self.engine.connect()
            except DBAPIError as err:
                raise StoreUnavailable(
                    f"cannot connect to database {self.url}: {driver_reason(err)}"
                ) from err
            try:
                if self.dialect == "sqlite":
                    await conn.execution_options(
                        **{_SQLITE_BEGIN: "IMMEDIATE" if write else "DEFERRED"}
                    )
                if write:
                    async with conn.begin():
                        yield conn
                else:
                    yield conn  # begins on first use; close() rolls back
            except DBAPIError as err:
                if err.connection_invalidated:
                    raise StoreUnavailable(
                        f"lost the connection to database {self.url}: {driver_reason(err)}"
                    ) from err
                raise
            finally:
                await conn.close()
        finally:
            if token is not None:
                _WRITING.reset(token)
            if lock is not None:
                lock.release()

    async def revision(self) -> str | None:
        """The migration revision the database is at."""
        async with self.connect() as conn:
            return await conn.run_sync(migrate.current_revision)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_store(
    url: str | None = None,
    *,
    data_dir: Path | None = None,
    clock: Callable[[], datetime] | None = None,
    create: bool = False,
) -> Store:
    """Open (and create, and migrate to head) the Tarsus database at ``url``.

    ``url``: ``None`` for SQLite in ``<data_dir or ./.tarsus>/tarsus.db``; ``sqlite:///path``;
    ``mysql://user:password@host:port/db`` (``mariadb://`` alike; the database is created with
    ``utf8mb4`` if missing). ``clock`` replaces ``datetime.now`` for every time the store writes.

    A SQLite file that does not exist is created. One that exists but is empty (0 bytes, or no
    tables) is refused unless ``create`` — it is what a truncated store looks like, and filling
    it would hide that every deployment is gone — and one that is damaged (``PRAGMA
    quick_check`` fails) is refused always.

    Raises :class:`StoreUnavailable` if the database cannot be reached, :class:`StoreDamaged`
    for a damaged or unexpectedly empty file, :class:`InvalidInput` for a URL it does not
    understand.
    """
    target = normalize_url(url, data_dir)
    if target.get_backend_name() == "sqlite":
        path = _sqlite_path(target)
        if path is not None and not path.exists():
            await _create_sqlite_store(target, path, clock)
        existing = path if path is not None and path.exists() else None
        if existing is not None:
            _check_sqlite_header(existing, create=create)  # before SQLite writes to it
        engine = _sqlite_engine(target)
    else:
        existing = None
        engine = await _mysql_engine(target)
    store = Store(engine, clock=clock)
    try:
        if existing is not None:
            await _check_sqlite_file(store, existing, create=create)
        await _migrate(store)
    except BaseException:
        await engine.dispose()
        raise
    return store


def _sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL (None for memory and ``file:`` URIs)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


async def _create_sqlite_store(url: URL, path: Path, clock: Callable[[], datetime] | None) -> None:
    """Make a new store at ``path`` whole or not at all: built in a file beside it, then
    linked into place. So an existing store file is always a complete one (an empty or
    table-less file is then a damaged store, not a half-made new one), and processes creating
    the same new store together end with one of theirs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreUnavailable(f"cannot create the directory of {path}: {err}") from err
    building = path.with_name(f".{path.name}.new-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        engine = _sqlite_engine(url.set(database=str(building)))
        store = Store(engine, clock=clock)
        try:
            await _migrate(store)
            async with store.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await engine.dispose()
        try:
            os.link(building, path)
        except FileExistsError:
            pass  # another process made it first: open theirs
        except OSError as err:
            raise StoreUnavailable(f"cannot create the store {path}: {err}") from err
    finally:
        for leftover in (building, *(building.with_name(building.name + s) for s in _SIDE)):
            leftover.unlink(missing_ok=True)


#: SQLite's side files of a database in WAL mode.
_SIDE = ("-wal", "-shm", "-journal")


_SQLITE_MAGIC = b"SQLite format 3\x00"
_RESTORE = "restore it from a backup, or move it away to start with an empty store"


def _check_sqlite_header(path: Path, *, create: bool) -> None:
    """:class:`StoreDamaged` for a 0-byte file (unless ``create``) or one that is not SQLite,
    read without opening it as a database (which would write to it)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as err:
        raise StoreDamaged(f"the store {path} cannot be read: {err}") from err
    if not head:
        if create:
            return
        raise StoreDamaged(
            f"the store {path} exists but is empty (0 bytes): its deployments and templates "
            f"are gone, or it was never made. Restore it from a backup, or ask for a new store "
            f"there explicitly (tarsus up --create)"
        )
    if head != _SQLITE_MAGIC:
        raise StoreDamaged(f"the store {path} is not a SQLite database file; {_RESTORE}")


async def _check_sqlite_file(store: Store, path: Path, *, create: bool) -> None:
    """:class:`StoreDamaged` unless the existing file ``path`` is a sound Tarsus store (or,
    with ``create``, an empty file to make one in)."""
    try:
        async with store.connect() as conn:
            tables = await conn.scalar(
                text("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
            )
            problems = [] if not tables else list(await conn.scalars(text("PRAGMA quick_check")))
    except (StoreUnavailable, DBAPIError) as err:
        raise StoreDamaged(
            f"the store {path} is damaged ({driver_reason(err)}); {_RESTORE}"
        ) from err
    if problems != [] and problems != ["ok"]:
        shown = "; ".join(str(p) for p in problems[:5])
        raise StoreDamaged(f"the store {path} is damaged (SQLite quick_check: {shown}); {_RESTORE}")
    if not tables and not create:
        size = path.stat().st_size
        raise StoreDamaged(
            f"the store {path} exists but has no tables ({size} bytes): its deployments and "
            f"templates are gone, or it was never made. Restore it from a backup, or ask for "
            f"a new store there explicitly (tarsus up --create)"
        )


def _sqlite_engine(url: URL) -> AsyncEngine:
    database = url.database or ""
    kwargs: dict[str, Any] = {}
    if database in ("", ":memory:"):
        kwargs["poolclass"] = StaticPool  # one connection, or each would see its own database
    elif not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreUnavailable(f"cannot create the directory of {database}: {err}") from err
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so pysqlite must not: then DDL is transactional too.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=5000", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


async def _mysql_engine(url: URL) -> AsyncEngine:
    """An asyncmy engine on ``url``, its database created first if the server lacks it."""
    engine = create_async_engine(url, pool_pre_ping=True, pool_recycle=3600)
    try:
        async with engine.connect():
            return engine
    except DBAPIError as err:
        await engine.dispose()
        if mysql_code(err) != _ER_BAD_DB:
            raise StoreUnavailable(
                f"cannot connect to database {_hide(url)}: {driver_reason(err)}"
            ) from err
    except OSError as err:
        await engine.dispose()
        raise StoreUnavailable(f"cannot connect to database {_hide(url)}: {err}") from err
    await _create_mysql_database(url)
    return create_async_engine(url, pool_pre_ping=True, pool_recycle=3600)


async def _create_mysql_database(url: URL) -> None:
    name = url.database or ""
    server = create_async_engine(url._replace(database=None), poolclass=StaticPool)
    try:
        async with server.connect() as conn:
            await conn.execute(
                text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
            )
            await conn.commit()
        log.info("created database %s", name)
    except DBAPIError as err:
        raise StoreUnavailable(
            f"database {name!r} does not exist on {_hide(url)} and could not be created: "
            f"{driver_reason(err)}"
        ) from err
    finally:
        await server.dispose()


async def drop_database(url: str | URL) -> None:
    """Drop the MySQL/MariaDB database ``url`` names (the counterpart of :func:`open_store`
    creating a missing one; for tests and tools that made a database of their own). Callers
    check that the name is theirs: this drops whatever it is given."""
    parsed = normalize_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() != "mysql" or not name:
        raise InvalidInput(f"drop_database needs a MySQL/MariaDB URL naming a database: {url!r}")
    server = create_async_engine(parsed._replace(database=None), poolclass=StaticPool)
    try:
        async with server.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            await conn.commit()
    finally:
        await server.dispose()


#: One migration at a time per event loop: Alembic keeps its running context in a global.
_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def _migrate(store: Store) -> None:
    """Upgrade to head and seed the built-in templates, once across processes."""
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.setdefault(loop, asyncio.Lock())
    async with lock:
        await _migrate_locked(store)


async def _migrate_locked(store: Store) -> None:
    now = store.clock()
    if store.dialect == "sqlite":
        # BEGIN IMMEDIATE (see Store.begin) serialises processes; SQLite DDL is transactional.
        async with store.begin() as conn:
            await conn.run_sync(_upgrade_and_seed, now)
        return
    # MySQL DDL commits on its own: a named lock keeps two starting processes apart.
    lock = f"tarsus_migrate.{(store.engine.url.database or '')[:48]}"
    async with store.begin() as conn:
        got = await conn.scalar(text("SELECT GET_LOCK(:n, :t)"), {"n": lock, "t": _MIGRATE_LOCK_S})
        if got != 1:
            raise StoreError(
                f"another process has been migrating {store.url} for over {_MIGRATE_LOCK_S} s"
            )
        try:
            await conn.run_sync(_upgrade_and_seed, now)
        finally:
            await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": lock})


def _upgrade_and_seed(connection: Connection, now: datetime) -> None:
    migrate.upgrade(connection)
    migrate.seed_templates(connection, now)
