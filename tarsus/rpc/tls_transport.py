"""TLS between a TCP transport and a connection, at the cost of one encryption per batch.

``ssl`` endpoints (``tarsus.rpc.tls``) run their connections over :class:`TlsProtocol`, which
speaks TLS through ``ssl.SSLObject`` and two memory BIOs on the event loop's plain TCP
transport, and hands the connection a :class:`TlsTransport` that takes and gives plaintext.
OpenSSL does the handshake, the certificate checks (whatever the ``SSLContext`` asks for) and
the record layer; this module only moves bytes, as the loops' own TLS layers do
(``asyncio/sslproto.py``, uvloop's ``sslproto.pyx``), with less work per batch than asyncio's:

- a read decrypts until the bytes received are used up (``MemoryBIO.pending`` and
  ``SSLObject.pending()`` both 0) and stops there; asyncio's tries ``SSL_read`` once more to
  learn that nothing is left, and the ``SSLWantReadError`` that answers costs about as much as
  decrypting a batch of small calls (uvloop's stops, as here);
- a read asks OpenSSL for at most one record's plaintext (16 KiB), not a 256 KiB buffer;
- a write encrypts and hands the record to the socket in the same call (the connection already
  writes once per turn of the loop: ``tarsus.rpc.framing.BatchingProtocol``).

Per batch that is half of what asyncio's layer costs and on par with uvloop's, on both loops
(docs/benchmarks.md, "TLS through Tarsus' own layer"). On the wire it is TLS either way: the
peer cannot tell this layer from asyncio's (tests/rpc/test_auth_tls.py talks to both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["HANDSHAKE_TIMEOUT", "TlsProtocol", "TlsTransport", "open_tls_connection"]

log = logging.getLogger("tarsus.rpc.tls")

#: Seconds a connection may take to finish its TLS handshake (asyncio's default).
HANDSHAKE_TIMEOUT = 60.0
#: Most plaintext one TLS record carries (RFC 8446 section 5.1): one ``SSL_read``'s worth.
RECORD_SIZE = 16384


class TlsTransport(asyncio.Transport):
    """The transport a connection over TLS writes plaintext to."""

    __slots__ = ("_tls",)

    def __init__(self, tls: TlsProtocol) -> None:
        super().__init__()
        self._tls = tls

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tls.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self._tls.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False  # TLS has close_notify, not half-closed streams

    def is_closing(self) -> bool:
        return self._tls.closing

    def close(self) -> None:
        self._tls.close()

    def abort(self) -> None:
        self._tls.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._tls.extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._tls.app = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._tls.app

    def is_reading(self) -> bool:
        return self._tls.lower.is_reading()

    def pause_reading(self) -> None:
        self._tls.lower.pause_reading()

    def resume_reading(self) -> None:
        self._tls.lower.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._tls.lower.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._tls.lower.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._tls.lower.get_write_buffer_limits()


class TlsProtocol(asyncio.Protocol):
    """TLS on one TCP connection: handshakes, then carries *app*'s bytes both ways.

    *app* sees ``connection_made`` once the handshake has passed (never if it fails: the TCP
    connection is then closed), then plaintext in ``data_received``, and ``connection_lost``
    with the TLS error that ended the connection, if one did. *waiter*, if given, is resolved
    when the handshake passes or fails (what a client awaits).
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        app: asyncio.BaseProtocol,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        waiter: asyncio.Future[None] | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        self.app = app
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname if context.check_hostname else None,
        )
        self._waiter = waiter
        self._handshake_timeout = (
            HANDSHAKE_TIMEOUT if handshake_timeout is None else handshake_timeout
        )
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._upper = TlsTransport(self)
        #: plaintext written while OpenSSL waits for the peer (TLS 1.2 renegotiation)
        self._backlog: list[bytes] = []
        self._error: BaseException | None = None
        self.handshaking = True
        self.closing = False

    @property
    def lower(self) -> asyncio.Transport:
        """The TCP transport underneath."""
        assert self._transport is not None, "not connected"
        return self._transport

    # ------------------------------------------------------------------ from the TCP transport
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._handshake_timeout, self._handshake_timed_out)
        self._handshake()

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if self.handshaking:
            self._handshake()
        else:
            self._read()

    def eof_received(self) -> bool | None:
        if not self.handshaking:
            self.app.eof_received()  # type: ignore[attr-defined]
        return None  # close: TLS has no half-closed state

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.handshaking:
            self._settle(self._error or exc or ConnectionResetError("closed during TLS handshake"))
            return
        self.app.connection_lost(self._error or exc)  # type: ignore[arg-type]

    def pause_writing(self) -> None:
        if not self.handshaking:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if not self.handshaking:
            self.app.resume_writing()

    # ------------------------------------------------------------------ handshake
    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ssl.CertificateError) as e:
            self._flush()  # the alert that tells the peer why
            log.debug("TLS handshake with %s failed: %s", self._peer(), e)
            self._fail(e)
            return
        self._flush()
        self.handshaking = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.app.connection_made(self._upper)
        self._settle(None)
        if self._incoming.pending and not self.closing:
            self._read()  # what came with the peer's last handshake message

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self.handshaking:
            log.debug("TLS handshake with %s timed out", self._peer())
            self._fail(TimeoutError(f"TLS handshake not done in {self._handshake_timeout:g}s"))

    def _settle(self, exc: BaseException | None) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)

    # ------------------------------------------------------------------ data
    def _read(self) -> None:
        tls = self._ssl
        incoming = self._incoming
        chunks: list[bytes] = []
        eof = False
        try:
            while True:
                chunk = tls.read(RECORD_SIZE)
                if not chunk:  # close_notify
                    eof = True
                    break
                chunks.append(chunk)
                if not incoming.pending and not tls.pending():
                    break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as e:
            self._deliver(chunks)
            self._flush()
            log.debug("TLS error from %s: %s", self._peer(), e)
            self._fail(e)
            return
        if self._backlog:
            self._write_backlog()
        elif self._outgoing.pending:  # e.g. a key update's answer
            self._flush()
        self._deliver(chunks)
        if eof and not self.closing:
            self.close()

    def _deliver(self, chunks: list[bytes]) -> None:
        if not chunks or self.closing:
            return
        self.app.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))  # type: ignore[attr-defined]

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing or not data:
            return
        if self._backlog:
            self._backlog.append(bytes(data))
            return
        try:
            self._ssl.write(data)
        except ssl.SSLWantReadError:
            self._backlog.append(bytes(data))
        except ssl.SSLError as e:
            self._fail(e)
            return
        self._flush()

    def _write_backlog(self) -> None:
        backlog = self._backlog
        try:
            while backlog:
                self._ssl.write(backlog[0])
                del backlog[0]
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as e:
            self._fail(e)
            return
        self._flush()

    def _flush(self) -> None:
        if self._outgoing.pending and self._transport is not None:
            self._transport.write(self._outgoing.read())

    # ------------------------------------------------------------------ ending
    def close(self) -> None:
        """Send close_notify after what is queued, then close the TCP connection."""
        if self.closing:
            return
        self.closing = True
        if not self.handshaking:
            # SSLWantReadError: the peer's close_notify is not waited for
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()
            self._flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self.closing = True
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._settle(exc)
        self.abort()

    # ------------------------------------------------------------------ extra info
    def extra_info(self, name: str, default: Any = None) -> Any:
        tls = self._ssl
        if name == "ssl_object":
            return tls
        if name == "peercert":
            return tls.getpeercert()
        if name == "cipher":
            return tls.cipher()
        if name == "compression":
            return tls.compression()
        if name == "sslcontext":
            return tls.context
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    def _peer(self) -> Any:
        return self._transport.get_extra_info("peername") if self._transport else None


async def open_tls_connection(
    app_factory: Callable[[], asyncio.BaseProtocol],
    host: str,
    port: int,
    context: ssl.SSLContext,
) -> tuple[TlsTransport, asyncio.BaseProtocol]:
    """``loop.create_connection(app_factory, host, port, ssl=context)`` over
    :class:`TlsProtocol`: returns once the handshake has passed; raises its ``ssl.SSLError``
    (an ``OSError``) if it fails."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    app = app_factory()
    transport, tls = await loop.create_connection(
        lambda: TlsProtocol(context, app, server_side=False, server_hostname=host, waiter=waiter),
        host,
        port,
    )
    try:
        await waiter
    except BaseException:
        transport.abort()
        raise
    return tls._upper, app
