"""Calling the admin registry from an operation: its proxies, and its answers as op errors.

The admin registry (``tars.tarsAdminRegistry.AdminRegObj``: upstream's ``AdminReg`` and our
``AdminExt`` on the same object) answers ``tarsErrCode`` (AdminReg.tars) with the reason in a
text. An operation turns a non-zero code into the error a user understands, with the status a
web face answers: bad input 400, not deployed 404, wrong state or already in progress 409, the
rest 502; a service that cannot be reached is 503. The ``tarsus`` CLI words the same codes
the same way (:data:`ERROR_MEANINGS`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tarsus.ops import upstream
from tarsus.ops.errors import Conflict, Invalid, NotFound, OpError, Unavailable, UpstreamFailed
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import AdminReg

if TYPE_CHECKING:
    from tarsus.protocol.gen import TarsusAdmin

__all__ = ["ERROR_MEANINGS", "admin", "calling", "explain_code", "ext", "refusal"]

#: ``tarsErrCode`` (AdminReg.tars) in words.
ERROR_MEANINGS: dict[int, str] = {
    1001: "the node is not registered, or its heartbeat timed out",
    1002: "the node did not answer in time",
    1003: "the server's descriptor could not be loaded (is it deployed on that node?)",
    1004: "the server is in the wrong state for this (stopped, or being patched)",
    1005: "the same request is already in progress",
    1006: "invalid IP address",
    1007: "bad parameter",
    1008: "other error",
    1009: "the patch package could not be found",
    1010: "the patch service could not stage the package",
    1011: "the command cannot be executed",
    1012: "the node is not connected to any admin registry",
    -1: "unknown error",
}

_STATUS: dict[int, type[OpError]] = {
    1003: NotFound,
    1004: Conflict,
    1005: Conflict,
    1006: Invalid,
    1007: Invalid,
}


def explain_code(code: int) -> tuple[str, str]:
    """``(EM_TARS_... name, meaning)`` of a tarsErrCode; names are empty for other codes."""
    try:
        name = AdminReg.tarsErrCode(code).name
    except ValueError:
        name = ""
    return name, ERROR_MEANINGS.get(code, f"error code {code}")


def refusal(
    doing: str, code: int, result: str = "", meanings: Mapping[int, str] | None = None
) -> OpError:
    """The admin registry's non-zero ``code`` for ``doing`` as an op error, its reason kept."""
    name, meaning = explain_code(code)
    if meanings is not None and code in meanings:
        meaning = meanings[code]
    return upstream.refused(_STATUS.get(code, UpstreamFailed), doing, code, name, meaning, result)


def admin(platform: Platform) -> AdminReg.AdminRegProxy:
    if platform.admin is None:
        raise Unavailable("no admin registry is configured for this console")
    return platform.admin


def ext(platform: Platform) -> TarsusAdmin.AdminExtProxy:
    if platform.ext is None:
        raise Unavailable("no admin registry is configured for this console")
    return platform.ext


def calling(doing: str) -> contextlib.AbstractAsyncContextManager[None]:
    """A Tars failure reaching the admin registry (no answer, refused connection) is 503."""
    return upstream.calling(f"{doing}: the admin registry")
