"""What a node command answers when it cannot do what it was asked.

The codes are upstream's (``AdminReg.tars`` ``tarsErrCode``), because they travel back to the
admin registry in ``reportResult`` and from there to the web console.
"""

from __future__ import annotations

import enum

__all__ = ["NodeError", "NodeErrorCode"]


class NodeErrorCode(enum.IntEnum):
    UNKNOWN = -1
    LOAD_SERVICE_DESC = 1003
    SERVICE_STATE = 1004
    REQ_ALREADY = 1005
    PARAMETER = 1007


class NodeError(Exception):
    """A refused or failed node operation. ``code`` is upstream's return code, ``str()`` the
    text that goes back as the command's result."""

    def __init__(self, message: str, code: int = NodeErrorCode.UNKNOWN) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
