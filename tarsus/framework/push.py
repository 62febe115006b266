"""The push channel's wire description, shared by both of its ends.

The admin registry writes ``NodePush`` server pushes on a node's connection
(:mod:`tarsus.framework.admin.channel`); the node decodes and runs them
(:mod:`tarsus.framework.node.channel`). Both need the same description of how each push's
arguments travel, and neither end may import the other's package (a node machine runs no
admin registry), so it lives here. Upstream: ``NodePush.tars`` in TarsFramework's protocol
directory; see docs/node.md and docs/admin.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tarsus.protocol.gen import NodePush

if TYPE_CHECKING:
    from tarsus.codec.operation import Operation

__all__ = ["push_operations"]


def push_operations() -> dict[str, Operation]:
    """The ``NodePush`` functions by name: how each push's arguments travel."""
    ops: dict[str, Operation] = NodePush.NodePushServant._tars_ops_
    return ops
