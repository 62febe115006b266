"""Fixtures for interoperability tests against the Node Tars SDK (docs/testing.md).

The Node codec peer starts once per test session. Tests using it skip only when ``node``
itself is missing; a missing ``node_modules`` is installed with ``npm ci`` first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from peer import NodeCodecPeer, require_node


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, for the tests that run Node scripts."""
    return require_node()


@pytest.fixture(scope="session")
def node_peer(node: str) -> Iterator[NodeCodecPeer]:
    with NodeCodecPeer(node) as peer:
        yield peer
