"""``Current``: what a servant method knows about the call it is serving.

Inside a servant method, ``tarsus.rpc.current()`` returns it: the caller's context and status
maps, request id, peer address, the adapter, and a way to answer later (``defer()`` then
``respond(...)``) when the answer is not ready when the method returns.
"""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any

from tarsus.codec.versions import codec_for

if TYPE_CHECKING:
    from tarsus.codec.operation import Operation
    from tarsus.codec.packet import RequestPacket
    from tarsus.codec.versions import BodyCodec
    from tarsus.rpc.server import ServerConnection

_current: contextvars.ContextVar[Current] = contextvars.ContextVar("tarsus_current")


def current() -> Current:
    """The call being served by the running servant method (LookupError outside one)."""
    return _current.get()


class Current:
    """Built for every call, so it is kept small: the decoded request packet is held as it
    came, and the request's fields are read through it."""

    __slots__ = (
        "_conn",
        "_deferred",
        "_req",
        "_responded",
        "codec",
        "operation",
        "received_at",
        "response_context",
    )

    def __init__(
        self,
        conn: ServerConnection,
        req: RequestPacket,
        operation: Operation | None,
        received_at: float | None = None,
        codec: BodyCodec | None = None,
    ) -> None:
        self._conn = conn
        self._req = req
        self.operation = operation
        #: how this call's arguments and results are encoded (by ``version``)
        self.codec = codec_for(req.iVersion) if codec is None else codec
        self.received_at = time.monotonic() if received_at is None else received_at
        self.response_context: dict[str, str] = {}
        self._deferred = False
        self._responded = False

    @property
    def version(self) -> int:
        return self._req.iVersion

    @property
    def packet_type(self) -> int:
        return self._req.cPacketType

    @property
    def message_type(self) -> int:
        return self._req.iMessageType

    @property
    def request_id(self) -> int:
        return self._req.iRequestId

    @property
    def servant_name(self) -> str:
        return self._req.sServantName

    @property
    def func_name(self) -> str:
        return self._req.sFuncName

    @property
    def timeout(self) -> int:
        """The caller's timeout in ms (0: none given)."""
        return self._req.iTimeout

    @property
    def context(self) -> dict[str, str]:
        return self._req.context

    @property
    def status(self) -> dict[str, str]:
        return self._req.status

    @property
    def oneway(self) -> bool:
        return self._req.cPacketType == 1

    @property
    def peer(self) -> tuple[str, int] | None:
        """The caller's (host, port)."""
        return self._conn.peer

    @property
    def connection(self) -> ServerConnection:
        """The connection the call came on; ``send_push`` on it sends server pushes later."""
        return self._conn

    @property
    def adapter_name(self) -> str:
        return self._conn.adapter.name

    def defer(self) -> None:
        """Answer later: the method's return value is ignored; call ``respond`` when ready."""
        self._deferred = True

    def respond(self, result: Any = None) -> None:
        """Send the result (in the operation's result shape) for a deferred call."""
        self._conn.send_result(self, result)

    def respond_error(self, code: int, message: str = "") -> None:
        """Send a failure with a Tars return code for a deferred call."""
        self._conn.send_error(self, code, message)

    def __repr__(self) -> str:
        return (
            f"Current({self.servant_name}.{self.func_name} id={self.request_id} "
            f"v={self.version} peer={self.peer})"
        )
