"""The admin registry's return codes (``tarsErrCode`` in AdminReg.tars) and the one exception
its operations raise for an expected failure."""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["AdminError", "ErrCode", "Outcome"]


class ErrCode(enum.IntEnum):
    """``tars::tarsErrCode``: what AdminReg methods return. Same names and values."""

    EM_TARS_NODE_NOT_REGISTRY_ERR = 1001  # the node has no push connection (or is unknown)
    EM_TARS_CALL_NODE_TIMEOUT_ERR = 1002  # the node did not answer in time
    EM_TARS_LOAD_SERVICE_DESC_ERR = 1003  # no such server instance in t_server_conf
    EM_TARS_SERVICE_STATE_ERR = 1004  # the instance is in the wrong state for this
    EM_TARS_REQ_ALREADY_ERR = 1005
    EM_TARS_INVALID_IP_ERR = 1006
    EM_TARS_PARAMETER_ERR = 1007  # bad input; the reason is in the result text
    EM_TARS_OTHER_ERR = 1008
    EM_TARS_GET_PATCH_FILE_ERR = 1009  # no such package (t_server_patchs id)
    EM_TARS_PREPARE_ERR = 1010
    EM_TARS_CAN_NOT_EXECUTE = 1011  # refused on purpose (stopping the admin registry itself)
    EM_TARS_NODE_NO_CONNECTION = 1012
    EM_TARS_UNKNOWN_ERR = -1
    EM_TARS_SUCCESS = 0


class AdminError(Exception):
    """An operation failed in a way the caller should hear about: ``code`` is what the RPC
    returns, ``message`` the human-readable ``result``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def __repr__(self) -> str:
        return f"AdminError({self.code}, {self.message!r})"


class Outcome(NamedTuple):
    """What an operation ends with: the return code and the text for ``result`` / the log."""

    code: int
    result: str = ""

    @property
    def ok(self) -> bool:
        return self.code == ErrCode.EM_TARS_SUCCESS
