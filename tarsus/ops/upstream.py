"""Calls to the framework services, and their failures in the service layer's terms.

A service that cannot be reached (or answers nothing in time) is
:class:`~tarsus.ops.errors.Unavailable` (503); one that refuses, with a non-zero code, is
:class:`~tarsus.ops.errors.UpstreamFailed` (502) with its reason, unless the operation maps
that code to what it means for the caller (a 404, a 409).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TypeVar

from tarsus.ops.errors import OpError, Unavailable, UpstreamFailed
from tarsus.rpc.errors import TarsError

__all__ = ["calling", "check", "need", "refused"]

T = TypeVar("T")


def need(proxy: T | None, what: str) -> T:
    """The proxy, or :class:`Unavailable` where this face has no such service."""
    if proxy is None:
        raise Unavailable(f"{what} is not reachable from here")
    return proxy


@contextlib.asynccontextmanager
async def calling(service: str) -> AsyncIterator[None]:
    """Around a call to ``service``: its RPC failure as :class:`Unavailable`."""
    try:
        yield
    except TarsError as e:
        raise Unavailable(f"{service} cannot be reached: {e}") from None


def check(
    code: int,
    doing: str,
    result: str = "",
    mapped: Mapping[int, type[OpError]] | None = None,
) -> None:
    """A service's answer code: 0 is done; else ``mapped[code]`` or :class:`UpstreamFailed`,
    saying what failed and the service's reason."""
    if code == 0:
        return
    detail = f": {result.strip()}" if result.strip() else f" (code {code})"
    error = (mapped or {}).get(code, UpstreamFailed)
    raise error(f"{doing} failed{detail}")


def refused(
    error: type[OpError], doing: str, code: int, name: str, meaning: str, result: str = ""
) -> OpError:
    """A service's non-zero ``code`` (its enum ``name``) for ``doing``, in words: what failed,
    what the code means, the code, and the service's reason; ``code`` and ``result`` kept on
    the error (the CLI prints them). :func:`tarsus.ops.adminreg.refusal` and
    :func:`tarsus.ops.configs.refusal` word their services' codes with it."""
    message = f"{doing} failed: {meaning} ({f'{code} {name}'.rstrip()})"
    if result.strip():
        message += f": {result.strip()}"
    failure = error(message)
    failure.code, failure.result = code, result
    return failure
