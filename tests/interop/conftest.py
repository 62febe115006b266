"""Fixtures for interoperability tests against the Node Tars SDK (recipes §4).

The Node codec peer starts once per test session. Tests using it skip only when ``node``
itself is missing; a missing ``node_modules`` is installed with ``npm ci`` first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from peer import NodeCodecPeer, ensure_node_modules, node_executable


@pytest.fixture(scope="session")
def node_peer() -> Iterator[NodeCodecPeer]:
    node = node_executable()
    if node is None:
        pytest.skip("Node interop skipped: `node` is not on PATH (install Node.js 20 to run it)")
    ensure_node_modules()
    with NodeCodecPeer(node) as peer:
        yield peer
