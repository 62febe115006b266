"""The ``standin`` fixture: a fresh stand-in admin registry (``adminreg_standin``) served over
a real socket, until the lead's end-to-end test drives the real one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from adminreg_standin import ADMIN_OBJ, ServerThread, StandInAdmin


@pytest.fixture
def standin() -> Iterator[tuple[StandInAdmin, str]]:
    """A fresh stand-in admin registry and its proxy string."""
    admin = StandInAdmin()
    server = ServerThread(admin, ADMIN_OBJ)
    try:
        yield admin, server.served.proxy_string
    finally:
        server.stop()
