"""Tars' access-key authentication (endpoint option ``-e 1``), byte-compatible with TarsCpp.

On an endpoint with ``-e 1`` the first packet a client sends is a handshake, not a call
(TarsCpp ``AdapterProxy::onSendAuthCallback``): a ``RequestPacket`` for the servant with
``sFuncName = "InnerAuthServer"``, request id 1, ``iMessageType = 0x40``, whose body is a
``tars.BasicAuthPackage`` (``tarsus/protocol/AuthF.tars``):

- ``sObjName``, ``sAccessKey``, ``iTime`` (the client's clock, seconds), ``sHashMethod = sha1``;
- ``sSignature``: with ``secret1 = sha1hex(secretkey)`` and ``secret2 = sha1hex(secret1)``
  (lowercase hex text), the 8 little-endian bytes of ``iTime`` are OR-ed into the first 8
  characters of ``secret2``; the first 24 characters of the MD5 hex of that are a 3DES key
  (ECB, PKCS#5 padding) that encrypts ``secret1`` (TarsCpp ``defaultCreateAuthReq``).

The server (``serverVerifyAuthCallback``, ``processAuthReqHelper``) checks the object name,
looks the access key up among its adapter's keys, refuses a time more than an hour away from
its own clock and any hash method but sha1, decrypts ``secret1`` and compares ``sha1hex`` of it
with its own ``secret2``. On success it answers one ``ResponsePacket`` (iVersion 1, the
request's id, packet and message type, ``iRet`` 0) whose body is the text ``AUTH_SUCC``, and
the connection carries calls from then on; on anything else it closes the connection without
a word. Nothing the client sent before or instead of a valid handshake is executed.

Here the server side is :class:`AuthGate`, a protocol that owns a new connection until the
handshake passes and then hands the transport to the adapter's own connection
(``transport.set_protocol``): calls on an authenticated connection cost nothing more than on a
plain one. The client side is :func:`authenticate`, awaited once per new connection before
the connection is handed out.

What the handshake does not do (as upstream): it is not bound to the connection, so someone
who can read the traffic can replay it within the hour; use TLS (``ssl`` endpoints,
``tarsus.rpc.tls``) on networks you do not trust (docs/security.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from cryptography.hazmat.primitives.ciphers import Cipher, modes

from tarsus.codec import DecodeError, RequestPacket, ResponsePacket, decode, encode
from tarsus.codec.constants import TARSNORMAL, TARSVERSION
from tarsus.protocol.gen.AuthF import AUTH_STATE, BasicAuthPackage
from tarsus.rpc.errors import ConnectError
from tarsus.rpc.framing import frame

try:  # cryptography >= 43 keeps 3DES among its "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

if TYPE_CHECKING:
    from tarsus.rpc.client import ClientConnection

__all__ = [
    "AUTH_FUNC",
    "AUTH_MESSAGE_TYPE",
    "AUTH_STATE",
    "AUTH_WINDOW_S",
    "AuthGate",
    "Credentials",
    "ServerAuth",
    "authenticate",
    "check_package",
    "make_package",
    "missing_credentials",
]

log = logging.getLogger("tarsus.rpc.auth")

#: ``sFuncName`` and ``iMessageType`` of the handshake request (TarsCpp ``AdapterProxy``).
AUTH_FUNC: Final = "InnerAuthServer"
AUTH_MESSAGE_TYPE: Final = 0x40
#: The answer's body on success (``etos(AUTH_SUCC)``).
AUTH_OK: Final = b"AUTH_SUCC"
#: How far the client's clock may be from the server's, seconds (``processAuthReqHelper``).
AUTH_WINDOW_S: Final = 3600
#: A handshake packet is a few hundred bytes; more is not a handshake.
MAX_AUTH_PACKET: Final = 64 * 1024
#: Seconds a new connection may take to authenticate before it is closed.
AUTH_TIMEOUT_S: Final = 10.0

_pack_time = struct.Struct("<q").pack  # iTime's bytes as TarsCpp reads them on x86-64/arm64
_unpack_len = struct.Struct(">I").unpack_from


@dataclass(frozen=True, slots=True)
class Credentials:
    """One access key and its secret (``accesskey``/``secretkey`` in a config)."""

    access_key: str
    secret_key: str

    def __post_init__(self) -> None:
        if not self.access_key or not self.secret_key:
            raise ValueError("accesskey and secretkey must both be set (and not empty)")

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials({self.access_key!r}, secret_key=<hidden>)"


# -- the signature ----------------------------------------------------------------------------


def _sha1hex(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


def _temp_key(secret2: bytes, itime: int) -> bytes:
    tmp = bytearray(secret2)
    for i, byte in enumerate(_pack_time(itime)):
        tmp[i] |= byte
    return hashlib.md5(tmp).hexdigest().encode()[:24]  # TC_Des uses the first 24 bytes


def _cipher(key: bytes) -> Cipher[Any]:
    return Cipher(TripleDES(key), modes.ECB())


def _encrypt(key: bytes, plain: bytes) -> bytes:
    pad = 8 - len(plain) % 8  # always pads, 8 bytes of 8 when already aligned (TC_Des)
    encryptor = _cipher(key).encryptor()
    return encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()


def _decrypt(key: bytes, data: bytes) -> bytes | None:
    if not data or len(data) % 8:
        return None
    decryptor = _cipher(key).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 8:
        return None
    return plain[:-pad]


def make_package(obj_name: str, credentials: Credentials, now: float | None = None) -> bytes:
    """The encoded ``BasicAuthPackage`` a client sends for *obj_name* (``defaultCreateAuthReq``)."""
    itime = int(time.time() if now is None else now)
    secret1 = _sha1hex(credentials.secret_key.encode())
    secret2 = _sha1hex(secret1)
    signature = _encrypt(_temp_key(secret2, itime), secret1)
    package = BasicAuthPackage(
        sObjName=obj_name,
        sAccessKey=credentials.access_key,
        iTime=itime,
        sHashMethod="sha1",
        sSignature=signature.decode("utf-8", "surrogateescape"),
    )
    return encode(package)


def check_package(
    body: bytes | bytearray,
    obj_name: str,
    keys: Mapping[str, str],
    now: float | None = None,
    window_s: int = AUTH_WINDOW_S,
) -> tuple[AUTH_STATE, str]:
    """Verify a handshake body for *obj_name* against *keys* (access key → secret key);
    returns the state and the access key it named (``defaultProcessAuthReq``)."""
    if len(body) <= 20:  # as upstream: too short to hold a package
        return AUTH_STATE.AUTH_PROTO_ERR, ""
    try:
        package = decode(body, BasicAuthPackage)
    except DecodeError:
        return AUTH_STATE.AUTH_PROTO_ERR, ""
    access_key = package.sAccessKey
    if package.sObjName != obj_name:
        return AUTH_STATE.AUTH_WRONG_OBJ, access_key
    secret = keys.get(access_key)
    if not secret:
        return AUTH_STATE.AUTH_WRONG_AK, access_key
    clock = int(time.time() if now is None else now)
    if not clock - window_s < package.iTime < clock + window_s:
        return AUTH_STATE.AUTH_WRONG_TIME, access_key
    if package.sHashMethod != "sha1":
        return AUTH_STATE.AUTH_NOT_SUPPORT_ENC, access_key
    secret2 = _sha1hex(_sha1hex(secret.encode()))
    secret1 = _decrypt(
        _temp_key(secret2, package.iTime),
        package.sSignature.encode("utf-8", "surrogateescape"),
    )
    if secret1 is None:
        return AUTH_STATE.AUTH_DEC_FAIL, access_key
    if not hmac.compare_digest(_sha1hex(secret1), secret2):
        return AUTH_STATE.AUTH_ERROR, access_key
    return AUTH_STATE.AUTH_SUCC, access_key


# -- the server side --------------------------------------------------------------------------


class ServerAuth:
    """The keys one adapter accepts, and the gates of its connections not yet authenticated."""

    def __init__(self, servant_name: str, keys: Mapping[str, str], adapter_name: str = "") -> None:
        if not keys or not all(keys.values()):
            raise ValueError(
                f"{adapter_name or servant_name}: an endpoint with -e 1 needs accesskey and "
                "secretkey"
            )
        self.servant_name = servant_name
        self.adapter_name = adapter_name or servant_name
        self.keys = dict(keys)
        self.gates: set[AuthGate] = set()
        #: connections refused, by state name (what an operator sees in ``tars.viewstatus``)
        self.refused: dict[str, int] = {}

    @classmethod
    def for_credentials(
        cls, servant_name: str, credentials: Credentials, adapter_name: str = ""
    ) -> ServerAuth:
        return cls(servant_name, {credentials.access_key: credentials.secret_key}, adapter_name)

    def factory(self, make_connection: Callable[[], asyncio.Protocol]) -> Callable[[], AuthGate]:
        """Wrap an adapter's protocol factory: each connection starts behind a gate."""
        return lambda: AuthGate(self, make_connection)

    def close(self) -> None:
        """Drop every connection still in its handshake (the adapter is closing)."""
        for gate in list(self.gates):
            gate.abort()

    def _refuse(self, state: AUTH_STATE | str, peer: object, access_key: str) -> None:
        name = state.name if isinstance(state, AUTH_STATE) else state
        self.refused[name] = self.refused.get(name, 0) + 1
        log.warning(
            "%s: refused connection from %s: %s (accesskey %r); nothing executed",
            self.adapter_name,
            peer,
            name,
            access_key,
        )


class AuthGate(asyncio.Protocol):
    """A connection until its handshake passes: reads one packet, answers, hands over."""

    def __init__(self, auth: ServerAuth, make_connection: Callable[[], asyncio.Protocol]) -> None:
        self.auth = auth
        self.make_connection = make_connection
        self.transport: asyncio.Transport | None = None
        self.peer: object = None
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        self.auth.gates.add(self)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(AUTH_TIMEOUT_S, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.buffer += data
        if len(self.buffer) < 4:
            return
        length = _unpack_len(self.buffer)[0]
        if not 5 <= length <= MAX_AUTH_PACKET:
            self._reject("AUTH_PROTO_ERR", "")
            return
        if len(self.buffer) < length:
            return
        body, rest = bytes(self.buffer[4:length]), bytes(self.buffer[length:])
        try:
            request = decode(body, RequestPacket)
        except DecodeError:
            self._reject("AUTH_PROTO_ERR", "")
            return
        state, access_key = check_package(request.sBuffer, self.auth.servant_name, self.auth.keys)
        if state != AUTH_STATE.AUTH_SUCC:
            self._reject(state, access_key)
            return
        log.info(
            "%s: %s authenticated with accesskey %r", self.auth.adapter_name, self.peer, access_key
        )
        answer = ResponsePacket(
            TARSVERSION,
            request.cPacketType,
            request.iRequestId,
            request.iMessageType,
            0,
            AUTH_OK,
            {},
            "",
            {},
        )
        transport = self.transport
        transport.write(frame(encode(answer)))
        self._done()
        connection = self.make_connection()
        transport.set_protocol(connection)
        connection.connection_made(transport)
        if rest and not transport.is_closing():
            connection.data_received(rest)

    def abort(self) -> None:
        self._done()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def _reject(self, state: AUTH_STATE | str, access_key: str) -> None:
        self.auth._refuse(state, self.peer, access_key)
        self.abort()

    def _timed_out(self) -> None:
        self.timer = None
        self._reject("no handshake in time", "")

    def _done(self) -> None:
        self.auth.gates.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


# -- the client side --------------------------------------------------------------------------


def missing_credentials(obj_name: str, where: object) -> ConnectError:
    """The error for an ``-e 1`` endpoint when the client has no keys for *obj_name*."""
    return ConnectError(
        message=f"{where} requires authentication (-e 1) and no accesskey/secretkey is "
        f"configured for {obj_name}"
    )


async def authenticate(
    conn: ClientConnection,
    obj_name: str,
    credentials: Credentials,
    timeout: float,
    *,
    where: object = "",
) -> None:
    """Send the handshake on a new connection and wait for ``AUTH_SUCC``; on anything else
    the connection is closed and :class:`ConnectError` says why. Nothing else may be sent on
    *conn* until this returns."""
    request = RequestPacket(
        TARSVERSION,
        TARSNORMAL,
        AUTH_MESSAGE_TYPE,
        1,
        obj_name,
        AUTH_FUNC,
        make_package(obj_name, credentials),
        int(timeout * 1000),
        {},
        {},
    )
    future = conn.expect(1)  # nothing else is in flight on a connection not yet handed out
    conn.send(frame(encode(request)))
    try:
        answer = await asyncio.wait_for(future, timeout)
    except ConnectError:
        raise ConnectError(
            message=f"{where} refused the credentials of {obj_name} (accesskey "
            f"{credentials.access_key!r}): it closed the connection"
        ) from None
    except TimeoutError:
        conn.abort()
        raise ConnectError(message=f"{where}: no answer to the auth handshake") from None
    finally:
        conn.pending.pop(1, None)
    body = bytes(getattr(answer, "sBuffer", b""))
    if body.upper() != AUTH_OK:
        conn.abort()
        raise ConnectError(message=f"{where} answered the auth handshake with {body[:64]!r}")
