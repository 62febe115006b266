"""Tars return codes (``BaseF.tars``) and the exceptions a call can end with."""

from __future__ import annotations

import enum


class Ret(enum.IntEnum):
    """Framework return codes (iRet). Negative codes are the framework's; a servant's own
    return value travels in the body, not here."""

    SUCCESS = 0
    SERVER_DECODE_ERR = -1
    SERVER_ENCODE_ERR = -2
    SERVER_NO_FUNC = -3
    SERVER_NO_SERVANT = -4
    SERVER_RESET_GRID = -5
    SERVER_QUEUE_TIMEOUT = -6
    INVOKE_TIMEOUT = -7
    PROXY_CONNECT_ERR = -8
    SERVER_OVERLOAD = -9
    ADAPTER_NULL = -10
    INVOKE_BY_INVALID_SET = -11
    CLIENT_DECODE_ERR = -12
    SEND_REQUEST_ERR = -13
    SERVER_UNKNOWN_ERR = -99


_DESCRIPTIONS = {
    Ret.SERVER_DECODE_ERR: "the server could not decode the request",
    Ret.SERVER_ENCODE_ERR: "the server could not encode the result",
    Ret.SERVER_NO_FUNC: "no such function",
    Ret.SERVER_NO_SERVANT: "no such servant",
    Ret.SERVER_RESET_GRID: "grid state mismatch",
    Ret.SERVER_QUEUE_TIMEOUT: "the request waited too long in the server queue",
    Ret.INVOKE_TIMEOUT: "the call timed out",
    Ret.PROXY_CONNECT_ERR: "connection failed",
    Ret.SERVER_OVERLOAD: "the server is overloaded",
    Ret.ADAPTER_NULL: "no endpoint available",
    Ret.INVOKE_BY_INVALID_SET: "the call breaks the set rules",
    Ret.CLIENT_DECODE_ERR: "the client could not decode the response",
    Ret.SEND_REQUEST_ERR: "the request could not be sent",
    Ret.SERVER_UNKNOWN_ERR: "the server failed",
}


def describe(code: int) -> str:
    try:
        return f"{Ret(code).name} ({code}): {_DESCRIPTIONS.get(Ret(code), 'ok')}"
    except ValueError:
        return f"return code {code}"


class TarsError(Exception):
    """A call that did not succeed. ``code`` is the Tars return code (``Ret``) or a code a
    servant chose; ``message`` is the server's ``sResultDesc`` or our own explanation."""

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        self.message = message
        text = describe(code)
        super().__init__(f"{text}: {message}" if message else text)

    def __reduce__(self) -> tuple[type[TarsError], tuple[int, str]]:
        return (type(self), (self.code, self.message))


class ServerError(TarsError):
    """The server answered with a non-zero iRet."""


class InvokeTimeout(TarsError):
    def __init__(self, code: int = Ret.INVOKE_TIMEOUT, message: str = "") -> None:
        super().__init__(code, message)


class ConnectError(TarsError):
    def __init__(self, code: int = Ret.PROXY_CONNECT_ERR, message: str = "") -> None:
        super().__init__(code, message)


class NoEndpointError(TarsError):
    def __init__(self, code: int = Ret.ADAPTER_NULL, message: str = "") -> None:
        super().__init__(code, message)


class ClientDecodeError(TarsError):
    def __init__(self, code: int = Ret.CLIENT_DECODE_ERR, message: str = "") -> None:
        super().__init__(code, message)
