"""Admin registries for the operator CLI's tests, served over real sockets:

* ``standin``: a fresh stand-in (``adminreg_standin``), until the lead's end-to-end test drives
  the real one through the lifecycle commands; it also plays an upstream admin registry, which
  has no ``tarsus.AdminExt``;
* ``real_admin``: the real ``tarsus.framework.admin`` (``admin_thread``) over a fresh database,
  once on SQLite and once on MariaDB (``store_url``), with the ``clock`` fixture as its clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from admin_thread import AdminRegistryThread
from adminreg_standin import ADMIN_OBJ, StandInAdmin

from tarsus.testing import ServerThread


@pytest.fixture
def standin() -> Iterator[tuple[StandInAdmin, str]]:
    """A fresh stand-in admin registry and its proxy string."""
    admin = StandInAdmin()
    with ServerThread(admin, ADMIN_OBJ) as server:
        yield admin, server.proxy_string


@pytest.fixture
def real_admin(store_url: str, clock: Any) -> Iterator[AdminRegistryThread]:
    """The real admin registry over a fresh database; ``.proxy`` is what ``--admin`` takes."""
    with AdminRegistryThread(store_url, clock) as admin:
        yield admin
