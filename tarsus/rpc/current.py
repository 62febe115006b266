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
    from tarsus.rpc.server import ServerConnection

_current: contextvars.ContextVar[Current] = contextvars.ContextVar("tarsus_current")


def current() -> Current:
    """The call being served by the running servant method (LookupError outside one)."""
    return _current.get()


class Current:
    __slots__ = (
        "_conn",
        "_deferred",
        "_responded",
        "codec",
        "context",
        "func_name",
        "message_type",
        "operation",
        "packet_type",
        "received_at",
        "request_id",
        "response_context",
        "servant_name",
        "status",
        "timeout",
        "version",
    )

    def __init__(
        self,
        conn: ServerConnection,
        *,
        version: int,
        packet_type: int,
        message_type: int,
        request_id: int,
        servant_name: str,
        func_name: str,
        timeout: int,
        context: dict[str, str],
        status: dict[str, str],
        operation: Operation | None,
    ) -> None:
        self._conn = conn
        self.version = version
        #: how this call's arguments and results are encoded (by ``version``)
        self.codec = codec_for(version)
        self.packet_type = packet_type
        self.message_type = message_type
        self.request_id = request_id
        self.servant_name = servant_name
        self.func_name = func_name
        self.timeout = timeout
        self.context = context
        self.status = status
        self.operation = operation
        self.response_context: dict[str, str] = {}
        self.received_at = time.monotonic()
        self._deferred = False
        self._responded = False

    @property
    def oneway(self) -> bool:
        return self.packet_type == 1

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
