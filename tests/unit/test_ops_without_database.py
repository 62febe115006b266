"""The service layer where there is no database (the ``tarsus`` CLI's platform)."""

from __future__ import annotations

import asyncio

import pytest

from tarsus.ops import audit
from tarsus.ops.access import Actor
from tarsus.ops.errors import Unavailable
from tarsus.ops.platform import Platform


def test_an_operation_needing_the_database_says_it_is_not_reachable() -> None:
    platform = Platform(None)
    with pytest.raises(Unavailable, match="database is not reachable from here"):
        _ = platform.store
    # the audit of a change made from the CLI is the framework service's own record
    asyncio.run(audit.record(platform, Actor.local("ops"), "template.delete", "x"))
