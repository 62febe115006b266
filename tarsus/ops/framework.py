"""Calling a framework service from an operation: its proxy by name, and its failures as the
service layer's errors (unreachable: :class:`Unavailable`, 503; refused: 502)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

from tarsus.ops.errors import Unavailable, UpstreamFailed
from tarsus.ops.platform import Platform
from tarsus.rpc.errors import TarsError
from tarsus.rpc.proxy import ServantProxy

__all__ = ["calling", "proxy", "refused"]

P = TypeVar("P", bound=ServantProxy)


def proxy(platform: Platform, cls: type[P], obj: str) -> P:
    """``obj`` (a name the registry resolves, or a proxy string) as a ``cls`` proxy."""
    if platform.comm is None:
        raise Unavailable(f"{obj} cannot be reached from here (no communicator)")
    return platform.comm.string_to_proxy(cls, obj)


@contextlib.asynccontextmanager
async def calling(what: str) -> AsyncIterator[None]:
    """Turn a failed call into :class:`Unavailable` naming ``what`` was called."""
    try:
        yield
    except TarsError as e:
        raise Unavailable(f"{what} cannot be reached: {e}") from None


def refused(what: str, ret: int, reason: str = "") -> UpstreamFailed:
    return UpstreamFailed(f"{what} refused ({ret})" + (f": {reason}" if reason else ""))
