"""The client side: connections, adapter proxies, object proxies.

Vocabulary as upstream (TarsCpp/TarsGo): an ``ObjectProxy`` stands for one servant name
(``App.Server.Obj``) and owns an ``AdapterProxy`` per endpoint of it; each adapter proxy keeps
one multiplexed connection (calls are matched by request id, replies may come in any order)
and its health (dead-node shielding, ``tarsus.rpc.health``). A selector picks the adapter for
each call (``tarsus.rpc.balance``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from tarsus.codec import DecodeError, RequestPacket, ResponsePacket, decode, encode
from tarsus.codec.constants import (
    STATUS_GRID_KEY,
    STATUS_RESULT_CODE,
    STATUS_RESULT_DESC,
    TARSVERSION,
    request_ids,
)
from tarsus.codec.operation import Operation
from tarsus.codec.versions import codec_for
from tarsus.codec.wire import unpack_i16
from tarsus.rpc.balance import EndpointSelector, tars_string_hash
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import (
    ClientDecodeError,
    ConnectError,
    InvokeTimeout,
    NoEndpointError,
    Ret,
    ServerError,
    TarsError,
)
from tarsus.rpc.framing import BatchingProtocol, FrameAssembler, FramingError, frame
from tarsus.rpc.health import AdapterHealth, ShieldPolicy
from tarsus.rpc.proxy import CallOptions

log = logging.getLogger("tarsus.rpc.client")


@dataclass(slots=True)  # not frozen: frozen dataclasses cost 3x more to build per call
class CallRecord:
    """What an observer learns about one finished call. ``code`` is the Tars return code
    (0 success, -7 timeout, ...); ``elapsed`` is seconds from send to answer."""

    obj_name: str
    func: str
    endpoint: Endpoint
    code: int
    elapsed: float


class ClientConnection(BatchingProtocol):
    """One TCP connection to one endpoint, carrying many calls at once."""

    def __init__(
        self,
        on_lost: Callable[[ClientConnection, Exception | None], None],
        on_push: Callable[[ResponsePacket], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_lost = on_lost
        self._on_push = on_push
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = request_ids()
        self._frames = FrameAssembler()
        self._paused: asyncio.Future[None] | None = None
        self.closed = False

    def next_id(self) -> int:
        return next(self._ids)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop transports are not subclasses
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        err = ConnectError(message=f"connection lost: {exc}" if exc else "connection closed")
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._on_lost(self, exc)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._frames.feed(data)
        except FramingError as e:
            log.warning("bad frame from server: %s", e)
            self.abort()
            return
        pending = self.pending
        for body in frames:
            try:
                version = _peek_version(body)
                if version != TARSVERSION and codec_for(version).tup:  # TUP: a RequestPacket
                    rsp: Any = decode(body, RequestPacket)
                    rid = rsp.iRequestId
                else:
                    rsp = decode(body, ResponsePacket)
                    rid = rsp.iRequestId
            except DecodeError as e:
                log.warning("undecodable response: %s", e)
                self.abort()
                return
            if rid == 0:
                self._push(rsp)
                continue
            fut = pending.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(rsp)

    def _push(self, rsp: Any) -> None:
        """A server push (request id 0): to the push handler, if the proxy set one."""
        if self._on_push is None or not isinstance(rsp, ResponsePacket):
            log.debug("ignoring server push %s", getattr(rsp, "sResultDesc", ""))
            return
        try:
            self._on_push(rsp)
        except Exception:
            log.exception("push handler failed")

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _peek_version(body: bytes | bytearray) -> int:
    """iVersion is tag 1 in both packet layouts; read it without decoding the rest."""
    if len(body) >= 1 and body[0] == 0x10 and len(body) >= 2:
        return body[1]
    if len(body) >= 3 and body[0] == 0x11:
        return int(unpack_i16(body, 1)[0])
    return TARSVERSION


class AdapterProxy:
    """One endpoint of a servant: its connection (made on first use) and its health."""

    def __init__(
        self,
        endpoint: Endpoint,
        policy: ShieldPolicy,
        connect_timeout: float,
        on_push: Callable[[ResponsePacket], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.on_push = on_push
        self.health = AdapterHealth(policy, label=str(endpoint))
        self.connect_timeout = connect_timeout
        self._conn: ClientConnection | None = None
        self._connecting: asyncio.Future[ClientConnection] | None = None

    async def connection(self) -> ClientConnection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: ClientConnection(self._lost, self.on_push), ep.host, ep.port
                ),
                self.connect_timeout,
            )
        except (TimeoutError, OSError) as e:
            self.health.connect_failed(time.monotonic())
            raise ConnectError(message=f"cannot connect to {ep}: {e or 'timeout'}") from None
        self.health.connect_ok(time.monotonic())
        self._conn = conn
        return conn

    def _lost(self, conn: ClientConnection, exc: Exception | None) -> None:
        if self._conn is conn:
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.abort()
            self._conn = None

    def __repr__(self) -> str:
        return f"AdapterProxy({self.endpoint}, {self.health!r})"


class ObjectProxy:
    """Everything calls to one servant name share: endpoints, selection, defaults.

    *endpoints* are the adapters calls go to; *inactive* (registry answers only) are endpoints
    the registry lists as inactive: never called, but they keep their place in modulo hashing.
    ``direct=False`` marks a list that came from the registry (the selector then drops
    zero-weight endpoints under static weighting, as C++ does).
    """

    def __init__(
        self,
        name: str,
        endpoints: Sequence[Endpoint],
        *,
        inactive: Sequence[Endpoint] = (),
        direct: bool = True,
        timeout_ms: int = 3000,
        connect_timeout_ms: int = 1500,
        version: int = TARSVERSION,
        policy: ShieldPolicy | None = None,
        resolver: Callable[[], Any] | None = None,
        observers: list[Callable[[CallRecord], None]] | None = None,
    ) -> None:
        self.name = name
        self.timeout_ms = timeout_ms
        self.connect_timeout = connect_timeout_ms / 1000.0
        self.version = version
        self.codec = codec_for(version)
        self.policy = policy or ShieldPolicy()
        self.resolver = resolver
        self.direct = direct
        #: receives server pushes (request id 0) arriving on this proxy's connections
        self.push_handler: Callable[[ResponsePacket], None] | None = None
        #: called after every answered or failed two-way call (stats, tracing); shared list
        self.observers = observers if observers is not None else []
        self.adapters: dict[Endpoint, AdapterProxy] = {}
        #: registry-inactive endpoints: hashing placeholders, never connected
        self.inactive_adapters: dict[Endpoint, AdapterProxy] = {}
        self.selector: EndpointSelector[AdapterProxy] = EndpointSelector([], direct=direct)
        self.set_endpoints(endpoints, inactive)

    def set_endpoints(
        self, endpoints: Sequence[Endpoint], inactive: Sequence[Endpoint] = ()
    ) -> None:
        """Replace the endpoint lists (from the registry).

        Connections to endpoints that stay survive. An endpoint that leaves the active list
        takes no new calls; its connection closes once the calls in flight on it are over
        (after at most the default call timeout), so a registry refresh never aborts calls.
        """
        old = self.adapters
        new: dict[Endpoint, AdapterProxy] = {}
        for ep in endpoints:
            if ep not in new:
                new[ep] = (
                    old.get(ep)
                    or self.inactive_adapters.get(ep)
                    or AdapterProxy(ep, self.policy, self.connect_timeout, self._on_push)
                )
        old_inactive = self.inactive_adapters
        new_inactive: dict[Endpoint, AdapterProxy] = {}
        for ep in inactive:
            if ep not in new and ep not in new_inactive:
                new_inactive[ep] = old_inactive.get(ep) or AdapterProxy(
                    ep, self.policy, self.connect_timeout, self._on_push
                )
        for ep, adapter in old.items():
            if ep not in new:
                _retire(adapter, self.timeout_ms / 1000.0)
        self.adapters = new
        self.inactive_adapters = new_inactive
        self.selector.update(list(new.values()), list(new_inactive.values()))

    def _on_push(self, rsp: ResponsePacket) -> None:
        handler = self.push_handler
        if handler is None:
            log.debug("%s: no push handler, ignoring a push", self.name)
        else:
            handler(rsp)

    async def __call__(self, op: Operation, args: tuple[Any, ...], options: CallOptions) -> Any:
        return await self.invoke(op, args, options)

    async def invoke(self, op: Operation, args: tuple[Any, ...], options: CallOptions) -> Any:
        codec = self.codec
        body = codec.encode_args(op, args)
        if op.routekey is not None and options.hash_code is None and options.consistent_key is None:
            options = _route_by_key(op, args, options)
        rsp = await self.invoke_raw(op.name, body, options)
        if rsp is None:
            return None
        try:
            return codec.decode_results(op, rsp.sBuffer)
        except DecodeError as e:
            raise ClientDecodeError(message=f"{self.name}.{op.name}: {e}") from None

    async def invoke_raw(
        self,
        func: str,
        body: bytes,
        options: CallOptions,
    ) -> Any:
        """Send one request; return the reply packet (None for one-way); raise TarsError."""
        loop = asyncio.get_running_loop()
        timeout_ms = options.timeout_ms or self.timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000.0
        tried: set[int] = set()
        asked_again = False
        while True:
            adapter = self._pick(options, tried)
            try:
                conn = await adapter.connection()
                break
            except ConnectError:
                # Nothing was sent: another endpoint may take the call.
                tried.add(id(adapter))
                if time.monotonic() < deadline and any(
                    id(a) not in tried for a in self.adapters.values()
                ):
                    continue
                if asked_again or not await self.every_endpoint_refused(deadline):
                    raise
                asked_again = True  # new endpoints from the registry: try those, once
                tried.clear()
        rid = conn.next_id()
        status = options.status or {}
        packet = RequestPacket(
            self.version,
            1 if options.oneway else 0,
            0,
            rid,
            self.name,
            func,
            body,
            timeout_ms,
            options.context or {},
            status,
        )
        data = frame(encode(packet))
        if options.oneway:
            conn.send(data)
            return None
        fut: asyncio.Future[Any] = loop.create_future()
        conn.pending[rid] = fut
        conn.send(data)
        started = time.monotonic()
        timer = loop.call_later(max(0.0, deadline - started), _expire, conn, rid, fut)
        try:
            rsp = await fut
        except TarsError as e:
            now = time.monotonic()
            adapter.health.finish_invoke(True, now)
            if self.observers:
                self._observe(func, adapter, e.code, now - started)
            if isinstance(e, InvokeTimeout):
                raise InvokeTimeout(
                    message=f"{self.name}.{func} got no answer from {adapter.endpoint} "
                    f"within {timeout_ms} ms"
                ) from None
            raise
        finally:
            timer.cancel()
        code, desc = _result_code(rsp)
        now = time.monotonic()
        adapter.health.finish_invoke(code != 0, now)
        if self.observers:
            self._observe(func, adapter, code, now - started)
        if code != 0:
            raise ServerError(code, desc)
        return rsp

    async def every_endpoint_refused(self, deadline: float) -> bool:
        """Called when no endpoint of this object accepted a connection for a call (nothing
        was sent). True means the endpoint list has changed since and the call should try the
        new one; a direct proxy's list never changes (a registry-resolved proxy asks the
        registry, ``tarsus.rpc.locator``). *deadline* is the call's, on ``time.monotonic()``."""
        return False

    def _observe(self, func: str, adapter: AdapterProxy, code: int, elapsed: float) -> None:
        record = CallRecord(self.name, func, adapter.endpoint, code, elapsed)
        for observer in self.observers:
            try:
                observer(record)
            except Exception:
                log.exception("call observer %r failed", observer)

    def _pick(self, options: CallOptions, tried: set[int]) -> AdapterProxy:
        now = time.monotonic()
        adapter = self.selector.select(
            now, hash_code=options.hash_code, consistent_key=options.consistent_key
        )
        if adapter is None:
            raise NoEndpointError(message=f"no endpoint for {self.name}")
        if id(adapter) not in tried:
            return adapter
        # The selector's choice refused the connection already: any other, healthy first.
        others = [a for a in self.adapters.values() if id(a) not in tried]
        for a in others:
            if a.health.available(now):
                return a
        if others:
            return others[0]
        raise NoEndpointError(message=f"every endpoint of {self.name} refused the connection")

    def close(self) -> None:
        for adapter in self.adapters.values():
            adapter.close()


def _retire(adapter: AdapterProxy, grace: float) -> None:
    """Close a dropped adapter now if it is idle, else once its calls in flight had their time."""
    conn = adapter._conn
    if conn is None or not conn.pending:
        adapter.close()
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        adapter.close()
        return
    loop.call_later(grace, adapter.close)


def _route_by_key(op: Operation, args: tuple[Any, ...], options: CallOptions) -> CallOptions:
    """A ``routekey`` parameter picks the endpoint by hash, and travels as the grid key."""
    assert op.routekey is not None
    value = args[[p.name for p in op.inputs].index(op.routekey.name)]
    code = value if isinstance(value, int) else tars_string_hash(str(value))
    status = {**(options.status or {}), STATUS_GRID_KEY: str(value)}
    return replace(options, hash_code=code, status=status)


def _expire(conn: ClientConnection, rid: int, fut: asyncio.Future[Any]) -> None:
    conn.pending.pop(rid, None)
    if not fut.done():
        fut.set_exception(InvokeTimeout())


def _result_code(rsp: Any) -> tuple[int, str]:
    if isinstance(rsp, ResponsePacket):
        return rsp.iRet, rsp.sResultDesc
    status = rsp.status  # TUP reply: a RequestPacket with the result in status
    try:
        code = int(status.get(STATUS_RESULT_CODE, "0"))
    except ValueError:
        code = Ret.SERVER_UNKNOWN_ERR
    return code, status.get(STATUS_RESULT_DESC, "")
