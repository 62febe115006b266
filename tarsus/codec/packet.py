"""The request and response packets every Tars call travels in (``RequestF.tars``)."""

from __future__ import annotations

import struct as _struct
from collections.abc import Callable
from typing import ClassVar

from tarsus.codec import api
from tarsus.codec import types as T
from tarsus.codec.constants import TARSNORMAL, TARSVERSION
from tarsus.codec.struct import Struct
from tarsus.codec.types import Field


class RequestPacket(Struct):
    """A call. Every field is ``require``: C++ and Node servers drop packets missing one."""

    __slots__ = (
        "cPacketType",
        "context",
        "iMessageType",
        "iRequestId",
        "iTimeout",
        "iVersion",
        "sBuffer",
        "sFuncName",
        "sServantName",
        "status",
    )
    _tars_name_: ClassVar[str] = "tars.RequestPacket"

    def __init__(
        self,
        iVersion: int = TARSVERSION,
        cPacketType: int = TARSNORMAL,
        iMessageType: int = 0,
        iRequestId: int = 0,
        sServantName: str = "",
        sFuncName: str = "",
        sBuffer: bytes = b"",
        iTimeout: int = 0,
        context: dict[str, str] | None = None,
        status: dict[str, str] | None = None,
    ) -> None:
        self.iVersion = iVersion
        self.cPacketType = cPacketType
        self.iMessageType = iMessageType
        self.iRequestId = iRequestId
        self.sServantName = sServantName
        self.sFuncName = sFuncName
        self.sBuffer = sBuffer
        self.iTimeout = iTimeout
        self.context = {} if context is None else context
        self.status = {} if status is None else status


RequestPacket._tars_fields_ = (
    Field(1, "iVersion", T.SHORT, True),
    Field(2, "cPacketType", T.BYTE, True),
    Field(3, "iMessageType", T.INT, True),
    Field(4, "iRequestId", T.INT, True),
    Field(5, "sServantName", T.STRING, True),
    Field(6, "sFuncName", T.STRING, True),
    Field(7, "sBuffer", T.BYTES, True),
    Field(8, "iTimeout", T.INT, True),
    Field(9, "context", T.map(T.STRING, T.STRING), True),
    Field(10, "status", T.map(T.STRING, T.STRING), True),
)


class ResponsePacket(Struct):
    """A reply. Tags 1-7 are ``require`` (C++ and Node clients need them); 8-9 optional."""

    __slots__ = (
        "cPacketType",
        "context",
        "iMessageType",
        "iRequestId",
        "iRet",
        "iVersion",
        "sBuffer",
        "sResultDesc",
        "status",
    )
    _tars_name_: ClassVar[str] = "tars.ResponsePacket"

    def __init__(
        self,
        iVersion: int = TARSVERSION,
        cPacketType: int = TARSNORMAL,
        iRequestId: int = 0,
        iMessageType: int = 0,
        iRet: int = 0,
        sBuffer: bytes = b"",
        status: dict[str, str] | None = None,
        sResultDesc: str = "",
        context: dict[str, str] | None = None,
    ) -> None:
        self.iVersion = iVersion
        self.cPacketType = cPacketType
        self.iRequestId = iRequestId
        self.iMessageType = iMessageType
        self.iRet = iRet
        self.sBuffer = sBuffer
        self.status = {} if status is None else status
        self.sResultDesc = sResultDesc
        self.context = {} if context is None else context


ResponsePacket._tars_fields_ = (
    Field(1, "iVersion", T.SHORT, True),
    Field(2, "cPacketType", T.BYTE, True),
    Field(3, "iRequestId", T.INT, True),
    Field(4, "iMessageType", T.INT, True),
    Field(5, "iRet", T.INT, True),
    Field(6, "sBuffer", T.BYTES, True),
    Field(7, "status", T.map(T.STRING, T.STRING), True),
    Field(8, "sResultDesc", T.STRING, False),
    Field(9, "context", T.map(T.STRING, T.STRING), False),
)


def py_frame_response(
    iVersion: int,
    cPacketType: int,
    iRequestId: int,
    iMessageType: int,
    iRet: int,
    sBuffer: bytes,
    sResultDesc: str,
    /,
) -> bytes:
    """A reply as it goes on the wire: its 4-byte length, then a ``ResponsePacket`` with
    empty status and context (what a server sends for almost every call)."""
    body = api.encode(
        ResponsePacket(
            iVersion, cPacketType, iRequestId, iMessageType, iRet, sBuffer, {}, sResultDesc, {}
        )
    )
    return _pack_len(len(body) + 4) + body


_pack_len = _struct.Struct(">I").pack

#: :func:`py_frame_response`, in C when the codec's speedups run (the server's hot path).
frame_response: Callable[[int, int, int, int, int, bytes, str], bytes] = py_frame_response
if api.SPEEDUPS:
    from tarsus.codec import _speedups

    frame_response = _speedups.frame_response
