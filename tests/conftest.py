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
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import parallel_support as parallel
import pytest
from store_support import (
    MARIADB_SERVER,
    drop_test_database,
    make_store_url,
    require_mariadb,
)

if TYPE_CHECKING:
    from tarsus.store import Store

#: Markers every test below ``tests/<directory>`` carries.
DIRECTORY_MARKERS: dict[str, tuple[str, ...]] = {
    "multihost": ("netns", "mariadb", "slow"),  # namespaces as hosts, MariaDB as the store
    "interop": ("interop",),  # the Node Tars SDK as the peer
    "bench": ("slow",),  # each runs a whole bench at its smallest size
}
TESTS = Path(__file__).parent
#: The session's migrated MariaDB database that each MariaDB ``store`` copies its tables from;
#: "" when it cannot be copied that way (views, triggers or routines), so each test migrates.
_migrated_template: str | None = None
#: Tables a migration fills with the clock's time: left for ``open_store`` to fill again.
SEEDED_WITH_THE_CLOCK = ("t_profile_template",)
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")
#: Where this process runs the ``fixed_ports`` tests; None without root (then one worker runs
#: them all, one after another).
_loopback: parallel.PrivateLoopback | None = None


class ManualClock:
    """A clock for ``open_store(clock=...)`` that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = (start or datetime.now()).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """The run's own temporary directory and endpoint/IDL cache (tests/parallel.py); an xdist
    worker inherits both from the run that started it."""
    global _loopback
    if parallel.PrivateLoopback.unavailable_reason() is None:
        _loopback = parallel.PrivateLoopback(f"tsloop{os.getpid()}", _mariadb_address())
    if hasattr(config, "workerinput"):
        return
    run, cache = parallel.run_directory()
    if config.option.basetemp is None:
        config.option.basetemp = str(run)
    os.environ.setdefault("TARSUS_CACHE_DIR", str(cache))


def pytest_unconfigure() -> None:
    if _loopback is not None:
        _loopback.close()


def _mariadb_address() -> tuple[str, int] | None:
    """The test MariaDB's address when it is on the machine's loopback (relayed into the
    private loopback), else None."""
    from sqlalchemy.engine import make_url

    server = make_url(MARIADB_SERVER)
    if server.host not in ("127.0.0.1", "localhost"):
        return None
    return "127.0.0.1", server.port or 3306


def pytest_make_parametrize_id(val: object, argname: str) -> str | None:
    """Binary parameters are named by their length: a test's id must be the same in every
    worker process (xdist refuses to run otherwise), and binary test data often is not (a
    gzip header holds the time it was made)."""
    if isinstance(val, bytes) and not val.isascii():
        return f"{argname}-{len(val)}-bytes"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``fixed_ports`` test runs on the process's private loopback, any other on the
    machine's (tests/parallel_support.py)."""
    if _loopback is None:
        return
    if item.get_closest_marker("fixed_ports") is not None:
        _loopback.enter()
    else:
        _loopback.leave()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            directory = item.path.relative_to(TESTS).parts[0]
        except ValueError:  # a test outside tests/
            continue
        for marker in DIRECTORY_MARKERS.get(directory, ()):
            item.add_marker(marker)
    parallel.mark_fixed_ports(items)
    if hasattr(config, "workerinput"):  # an xdist worker: the run's order is the collected one
        parallel.heaviest_first(items, own_loopback=_loopback is not None)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whole modules to a worker (tests/parallel_support.py)."""
    return parallel.ModuleScheduling(config, log, own_loopback=_loopback is not None)


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
