"""Fixtures shared by every test directory: real databases for :mod:`tarsus.store`.

* ``store_url`` — a fresh database URL, once per engine (``sqlite``: a file in ``tmp_path``;
  ``mariadb``: a new ``tarsus_test_<hex>`` database on ``127.0.0.1:3306``, dropped afterwards
  even when the test fails). Hand it to a subprocess, or to ``open_store`` yourself.
* ``store`` — ``open_store(store_url, clock=clock)``, migrated, closed afterwards. On MariaDB
  the tables are copied from a database migrated once per session (``SHOW CREATE TABLE``, much
  quicker than migrating); ``open_store`` then seeds the built-in templates with the test's
  clock, as on a fresh database. Tests of migrating itself use ``store_url``.
* ``clock`` — the store's clock: starts at the current second and moves only when a test calls
  ``clock.advance(seconds)``, so timestamps are predictable.
* ``make_store_url(kind, tmp_path)`` — the URL alone, for a test that manages the database.

MariaDB must be running; a test needing it fails with the command that starts it, unless
``TARSUS_SKIP_MARIADB=1`` is set, which skips those tests instead. ``TARSUS_TEST_MARIADB`` may
point at another server (``mysql+asyncmy://user:pw@host:port``). Only databases these fixtures
create are ever dropped.

Markers (registered in pyproject.toml; docs/testing.md) are applied here so that new tests get
them without asking: every MariaDB variant of ``store_url`` is ``mariadb``, and every test under
a directory of ``DIRECTORY_MARKERS`` gets that directory's markers.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tarsus.store import Store

STORE_KINDS = ("sqlite", "mariadb")
#: Markers every test below ``tests/<directory>`` carries.
DIRECTORY_MARKERS: dict[str, tuple[str, ...]] = {
    "multihost": ("netns", "mariadb", "slow"),  # namespaces as hosts, MariaDB as the store
    "interop": ("interop",),  # the Node Tars SDK as the peer
    "bench": ("slow",),  # each runs a whole bench at its smallest size
}
TESTS = Path(__file__).parent
MARIADB_SERVER = os.environ.get("TARSUS_TEST_MARIADB", "mysql+asyncmy://root@127.0.0.1:3306")
MARIADB_START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
TEST_DB_PREFIX = "tarsus_test_"

_mariadb_problem: str | None = None
_mariadb_checked = False
#: The session's migrated MariaDB database that each MariaDB ``store`` copies its tables from;
#: "" when it cannot be copied that way (views, triggers or routines), so each test migrates.
_migrated_template: str | None = None
#: Tables a migration fills with the clock's time: left for ``open_store`` to fill again.
SEEDED_WITH_THE_CLOCK = ("t_profile_template",)
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")


class ManualClock:
    """A clock for ``open_store(clock=...)`` that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = (start or datetime.now()).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def make_store_url(kind: str, tmp_path: Path) -> str:
    """A URL for a new, not yet created, database of ``kind`` (``sqlite`` or ``mariadb``).

    The MariaDB database is named ``tarsus_test_<random hex>``; whoever creates it (``open_store``
    does) must drop it: :func:`drop_test_database`.
    """
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'tarsus.db'}"
    if kind == "mariadb":
        return f"{MARIADB_SERVER}/{TEST_DB_PREFIX}{secrets.token_hex(6)}"
    raise ValueError(f"unknown store kind {kind!r}; use one of {STORE_KINDS}")


async def drop_test_database(url: str) -> None:
    """Drop the MariaDB database of ``url``, which must be one :func:`make_store_url` named."""
    from sqlalchemy.engine import make_url

    from tarsus.store import drop_database

    name = make_url(url).database or ""
    if not name.startswith(TEST_DB_PREFIX) or not name[len(TEST_DB_PREFIX) :].isalnum():
        raise ValueError(f"refusing to drop {name!r}: not a database the test fixtures created")
    await drop_database(url)


async def _check_mariadb() -> str | None:
    """None if the test MariaDB answers, else what is wrong."""
    from sqlalchemy.engine import make_url

    server = make_url(MARIADB_SERVER)
    host, port = server.host or "127.0.0.1", server.port or 3306
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=3)
    except (OSError, TimeoutError) as err:
        return f"MariaDB is not reachable at {host}:{port} ({err})"
    writer.close()
    return None


async def require_mariadb() -> None:
    """Fail (or, with ``TARSUS_SKIP_MARIADB=1``, skip) the test when MariaDB is not running."""
    global _mariadb_checked, _mariadb_problem
    if not _mariadb_checked:
        _mariadb_problem = await _check_mariadb()
        _mariadb_checked = True
    if _mariadb_problem is None:
        return
    if os.environ.get("TARSUS_SKIP_MARIADB") == "1":
        pytest.skip(f"{_mariadb_problem}; skipped because TARSUS_SKIP_MARIADB=1")
    pytest.fail(
        f"{_mariadb_problem}. Start it with `{MARIADB_START}`, "
        f"or set TARSUS_SKIP_MARIADB=1 to skip the MariaDB variants.",
        pytrace=False,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            directory = item.path.relative_to(TESTS).parts[0]
        except ValueError:  # a test outside tests/
            continue
        for marker in DIRECTORY_MARKERS.get(directory, ()):
            item.add_marker(marker)


@pytest.fixture
async def mariadb_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh MariaDB database URL (not created yet), dropped afterwards: for a test that
    needs MariaDB itself (a relay in front of it, its own connections)."""
    await require_mariadb()
    url = make_store_url("mariadb", tmp_path)
    try:
        yield url
    finally:
        await drop_test_database(url)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database URL, once for SQLite and once for MariaDB (dropped afterwards)."""
    kind: str = request.param
    if kind == "mariadb":
        await require_mariadb()
    url = make_store_url(kind, tmp_path)
    try:
        yield url
    finally:
        if kind == "mariadb":
            await drop_test_database(url)


@pytest.fixture
def clock() -> ManualClock:
    """The clock of the ``store`` fixture; ``clock.advance(seconds)`` moves it."""
    return ManualClock()


async def _template() -> str:
    """The session's migrated MariaDB database (made on first use), or "" (see above)."""
    global _migrated_template
    if _migrated_template is None:
        from sqlalchemy import text

        from tarsus.store import open_store

        url = make_store_url("mariadb", Path("."))
        store = await open_store(url)
        try:
            async with store.engine.connect() as conn:
                extras = await conn.scalar(
                    text(
                        "SELECT (SELECT COUNT(*) FROM information_schema.views"
                        "        WHERE table_schema = DATABASE())"
                        " + (SELECT COUNT(*) FROM information_schema.triggers"
                        "    WHERE trigger_schema = DATABASE())"
                        " + (SELECT COUNT(*) FROM information_schema.routines"
                        "    WHERE routine_schema = DATABASE())"
                    )
                )
        finally:
            await store.close()
        _migrated_template = url if not extras else ""
        if extras:
            await drop_test_database(url)
    return _migrated_template


async def _copy_tables(template_url: str, url: str) -> None:
    """Create ``url``'s database with the tables of ``template_url``'s, and their rows but
    those of ``SEEDED_WITH_THE_CLOCK``; AUTO_INCREMENT counters start afresh."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import StaticPool

    from tarsus.store import normalize_url

    template = normalize_url(template_url).database
    target = normalize_url(url)
    server = create_async_engine(target._replace(database=None), poolclass=StaticPool)
    try:
        async with server.connect() as conn:
            await conn.exec_driver_sql(f"CREATE DATABASE `{target.database}` CHARACTER SET utf8mb4")
            await conn.exec_driver_sql(f"USE `{target.database}`")
            await conn.exec_driver_sql("SET foreign_key_checks = 0")
            tables = await conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = :db AND table_type = 'BASE TABLE'"
                ),
                {"db": template},
            )
            for table in tables.all():
                show = await conn.exec_driver_sql(f"SHOW CREATE TABLE `{template}`.`{table}`")
                await conn.exec_driver_sql(_AUTO_INCREMENT.sub("", show.one()[1]))
                if table not in SEEDED_WITH_THE_CLOCK:
                    await conn.exec_driver_sql(
                        f"INSERT INTO `{table}` SELECT * FROM `{template}`.`{table}`"
                    )
            await conn.commit()
    finally:
        await server.dispose()


def pytest_sessionfinish() -> None:
    if _migrated_template:
        asyncio.run(drop_test_database(_migrated_template))


@pytest.fixture
async def store(store_url: str, clock: ManualClock) -> AsyncIterator[Store]:
    """An open, migrated store on a fresh database, on both engines."""
    from tarsus.store import open_store

    if store_url.startswith(MARIADB_SERVER) and (template := await _template()):
        await _copy_tables(template, store_url)
    opened = await open_store(store_url, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
