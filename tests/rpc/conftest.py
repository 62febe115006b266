"""The core server tests run on both event loops a server can have: the stdlib asyncio loop
and uvloop (what ``Application.main`` picks when it is installed; docs/rpc-server.md).

Only the modules in :data:`BOTH_LOOPS` run twice, to keep the suite's time in check; the rest
of tests/rpc runs on the stdlib loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

import pytest

#: calls, return codes, protocols, deferred and one-way replies, bad input, backpressure,
#: graceful drain, the stats hook, AdminObj; -e 1 and ssl (TLS runs over each loop's TCP
#: transport: tarsus.rpc.tls_transport)
BOTH_LOOPS = {
    "test_rpc_calls.py",
    "test_robustness.py",
    "test_application.py",
    "test_stats.py",
    "test_auth_tls.py",
}

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:
    if os.environ.get("CI") == "true":
        raise  # CI installs the dev extra, uvloop with it: these tests must run on both loops
    print("tests/rpc: uvloop not installed, the core server tests run on asyncio only")
else:
    LOOPS["uvloop"] = uvloop.new_event_loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.path.name in BOTH_LOOPS:
        return LOOPS
    return {"asyncio": asyncio.new_event_loop}
