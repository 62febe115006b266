"""The test MariaDB server: which one, whether it answers, and the databases tests make on it.

``make_store_url``, ``drop_test_database`` and ``require_mariadb`` are for tests that manage a
database themselves (a module-scoped framework, a relay in front of MariaDB); the ``store``,
``store_url`` and ``mariadb_url`` fixtures of ``tests/conftest.py`` are built on them.

``TARSUS_TEST_MARIADB`` may point at another server (``mysql+asyncmy://user:pw@host:port``).
Only databases named here (``tarsus_test_<hex>``) are ever dropped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import pytest

STORE_KINDS = ("sqlite", "mariadb")
MARIADB_SERVER = os.environ.get("TARSUS_TEST_MARIADB", "mysql+asyncmy://root@127.0.0.1:3306")
MARIADB_START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
TEST_DB_PREFIX = "tarsus_test_"

_mariadb_problem: str | None = None
_mariadb_checked = False


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
