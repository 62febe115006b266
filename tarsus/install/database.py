"""The framework's database: created, migrated, and reached through a user of its own.

Upstream's installer creates one well-known account for every install (``tarsAdmin`` /
``Tars@2019``, TarsFramework ``deploy/tars-install.sh``) with global rights including CREATE
USER. Here the account given with ``--db`` (root or any user with CREATE USER and GRANT) is
used only while installing and never stored: the framework gets its own user with a generated
password and rights on its database alone — no GRANT OPTION, nothing on other databases.

Run again, the same user keeps the password the settings file holds (so a running framework
keeps working); lost, a new one is generated and set.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tarsus.install.errors import DatabaseUnreachable, InstallError
from tarsus.store import StoreError, open_store
from tarsus.store.engine import normalize_url

__all__ = ["FRAMEWORK_PRIVILEGES", "DatabaseGrant", "provision"]

#: what the framework does with its database: rows, and the tables of migrations and of the
#: hourly stat/property tables it creates and drops itself
FRAMEWORK_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, "
    "CREATE TEMPORARY TABLES, LOCK TABLES"
)
_USER_HOST = re.compile(r"[A-Za-z0-9.%_:-]{1,255}")


@dataclass(frozen=True)
class DatabaseGrant:
    """The framework's own account; ``url`` is what its services connect with."""

    user: str
    password: str
    url: str
    created: bool


def _framework_user(database: str) -> str:
    # MySQL 5.7+/8 allow 32 characters in a user name, MariaDB 80
    return f"tarsus_{database}"[:32]


def _explain(e: DBAPIError, where: str, user: str) -> InstallError:
    orig = getattr(e, "orig", None)
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    code = args[0] if args and isinstance(args[0], int) else None
    detail = args[1] if len(args) > 1 else str(orig or e)
    if code in (1045, 1698):
        return InstallError(
            f"the database at {where} refused user {user!r}: wrong user or password "
            f"({detail}); check --db"
        )
    if code in (2003, 2002, 2005, 2013):
        return DatabaseUnreachable(
            f"no database answers at {where} ({detail}); is MySQL/MariaDB running?"
        )
    if code in (1044, 1227, 1410):
        return InstallError(
            f"user {user!r} at {where} may not create databases or users ({detail}); give --db "
            f"an account with CREATE, CREATE USER and GRANT OPTION (root, or upstream's admin)"
        )
    return InstallError(f"the database at {where}: {detail}")


async def _create(engine: AsyncEngine, database: str, account: str, password: str) -> bool:
    """The database, the account, its rights; True if the database is new."""
    async with engine.begin() as conn:
        exists = await conn.scalar(
            text("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = :d"),
            {"d": database},
        )
        await conn.execute(
            text(
                f"CREATE DATABASE IF NOT EXISTS `{database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        )
        await conn.execute(text(f"CREATE USER IF NOT EXISTS {account}"))
        await conn.execute(text(f"ALTER USER {account} IDENTIFIED BY :pw"), {"pw": password})
        await conn.execute(text(f"GRANT {FRAMEWORK_PRIVILEGES} ON `{database}`.* TO {account}"))
    return not exists


async def provision(
    admin_url: str, *, password: str | None = None, user_host: str = "%"
) -> DatabaseGrant:
    """Create ``admin_url``'s database (utf8mb4) if missing, the framework's user with
    ``password`` (generated when ``None``) and its rights, then migrate the tables to head
    connected as that user — which also proves the rights are enough."""
    try:
        parsed = make_url(admin_url)
    except ArgumentError as e:
        raise InstallError(f"--db {admin_url!r} cannot be parsed: {e}") from None
    if parsed.get_backend_name() not in ("mysql", "mariadb"):
        raise InstallError(
            "--db must be a MySQL/MariaDB URL (mysql://root:PASSWORD@HOST:3306/db_tars): the "
            "framework hosts and nodes share it"
        )
    try:
        target = normalize_url(admin_url)  # checks the database name
    except StoreError as e:
        raise InstallError(str(e)) from None
    if not _USER_HOST.fullmatch(user_host):
        raise InstallError(f"--db-user-host {user_host!r}: a host name, address or pattern (%)")
    database = target.database or ""
    admin_user = target.username or ""
    where = f"{target.host or 'localhost'}:{target.port or 3306}"
    user = _framework_user(database)
    password = password or secrets.token_urlsafe(24)
    server = URL.create(  # the server, no database (URL.set cannot clear one)
        target.drivername,
        username=target.username,
        password=target.password,
        host=target.host,
        port=target.port,
        query=target.query,
    )
    engine = create_async_engine(server)
    try:
        created = await _create(engine, database, f"'{user}'@'{user_host}'", password)
    except DBAPIError as e:
        raise _explain(e, where, admin_user) from None
    except OSError as e:
        raise DatabaseUnreachable(f"no database answers at {where} ({e})") from None
    finally:
        await engine.dispose()
    url = URL.create(
        "mysql",
        username=user,
        password=password,
        host=target.host,
        port=target.port,
        database=database,
    ).render_as_string(hide_password=False)
    try:
        store = await open_store(url)  # creates or migrates the tables, seeds the templates
    except StoreError as e:
        raise InstallError(f"the framework's user {user!r} cannot use {database}: {e}") from None
    await store.close()
    return DatabaseGrant(user=user, password=password, url=url, created=created)
