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
from collections.abc import Awaitable, Callable, Sequence
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
from tarsus.rpc.auth import authenticate, missing_credentials
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
from tarsus.rpc.framing import BatchingProtocol, FrameAssembler, FramingError, pack_len
from tarsus.rpc.health import AdapterHealth, ShieldPolicy
from tarsus.rpc.proxy import CallOptions
from tarsus.rpc.security import ServantSecurity, client_ssl
from tarsus.rpc.tls_transport import open_tls_connection

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
    """One TCP connection to one endpoint, carrying many calls at once.

    Calls in flight wait in :attr:`pending` under their request id. Their timeouts share one
    timer per connection (:meth:`_sweep`), armed at the earliest deadline, rather than one
    timer per call: with every call answered in time it fires about once per timeout period.
    """

    def __init__(
        self,
        on_lost: Callable[[ClientConnection, Exception | None], None],
        on_push: Callable[[ResponsePacket], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_lost = on_lost
        self._on_push = on_push
        self.pending: dict[int, PendingCall | _Reply] = {}
        self._ids = request_ids()
        self._frames = FrameAssembler()
        self._paused: asyncio.Future[None] | None = None
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0
        self.closed = False

    def next_id(self) -> int:
        return next(self._ids)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop transports are not subclasses
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        err = ConnectError(message=f"connection lost: {exc}" if exc else "connection closed")
        pending, self.pending = self.pending, {}
        for call in pending.values():
            call.failed(err)
        self._on_lost(self, exc)

    def expect(self, rid: int) -> asyncio.Future[Any]:
        """A future for the reply with request id *rid*, outside the call machinery (no
        timeout, health or observers: the caller bounds the wait), e.g. a handshake sent
        before the connection carries calls (``tarsus.rpc.auth``). It fails with
        ``ConnectError`` if the connection is lost first."""
        reply = _Reply(self._loop.create_future())
        self.pending[rid] = reply
        return reply.fut

    def send_packet(self, packet: bytes) -> None:
        """Queue one encoded packet: its length and its bytes go out in this turn's write
        (joined there once, not framed by a copy of their own first)."""
        self.send(pack_len(len(packet) + 4))
        self.send(packet)

    def start(self, call: PendingCall, packet: bytes) -> None:
        """Send a two-way call's request; its answer, timeout or loss resolves ``call``."""
        self.pending[call.rid] = call
        self.send_packet(packet)
        if self._sweep_timer is None or call.deadline < self._sweep_at:
            self._arm(call.deadline, time.monotonic())

    def _arm(self, at: float, now: float) -> None:
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        self._sweep_at = at
        self._sweep_timer = self._loop.call_later(max(0.0, at - now), self._sweep)

    def _sweep(self) -> None:
        """Fail the calls whose deadline passed; wait for the next deadline (at least
        :data:`SWEEP_GAP` on, so that calls timing out one after another cost one look at the
        table per gap, not one each)."""
        self._sweep_timer = None
        now = time.monotonic()
        pending = self.pending
        expired = [rid for rid, call in pending.items() if call.deadline <= now]
        for rid in expired:
            pending.pop(rid).timed_out()
        if pending:
            soonest = min(call.deadline for call in pending.values())
            self._arm(max(soonest, now + SWEEP_GAP), now)

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
            call = pending.pop(rid, None)
            if call is not None:
                call.answered(rsp)

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


#: Least time between two timeout sweeps of one connection (seconds): a call times out at most
#: this late when others timed out just before it.
SWEEP_GAP = 0.005


class PendingCall:
    """One two-way call in flight: what its answer, timeout or lost connection needs to
    resolve ``fut`` (the result, or the ``TarsError``), count the endpoint's health and tell
    the observers. Resolving it here, in the read callback, leaves the caller one future to
    await: no coroutine of the runtime sits between the caller and its answer."""

    __slots__ = (
        "adapter",
        "deadline",
        "func",
        "fut",
        "obj",
        "op",
        "rid",
        "started",
        "timeout_ms",
    )

    def __init__(
        self,
        fut: asyncio.Future[Any],
        obj: ObjectProxy,
        op: Operation | None,
        func: str,
        adapter: AdapterProxy,
        rid: int,
        started: float,
        timeout_ms: int,
    ) -> None:
        self.fut = fut
        self.obj = obj
        self.op = op  # None: the caller wants the reply packet (invoke_raw)
        self.func = func
        self.adapter = adapter
        self.rid = rid
        self.started = started
        self.timeout_ms = timeout_ms
        self.deadline = started + timeout_ms / 1000.0

    def answered(self, rsp: Any) -> None:
        fut = self.fut
        if fut.done():  # the caller was cancelled
            return
        code, desc = _result_code(rsp)
        now = time.monotonic()
        self.adapter.health.finish_invoke(code != 0, now)
        obj = self.obj
        if obj.observers:
            obj._observe(self.func, self.adapter, code, now - self.started)
        if code != 0:
            fut.set_exception(ServerError(code, desc))
            return
        op = self.op
        if op is None:
            fut.set_result(rsp)
            return
        try:
            result = obj.codec.decode_results(op, rsp.sBuffer)
        except DecodeError as e:
            fut.set_exception(ClientDecodeError(message=f"{obj.name}.{op.name}: {e}"))
            return
        fut.set_result(result)

    def timed_out(self) -> None:
        self.failed(
            InvokeTimeout(
                message=f"{self.obj.name}.{self.func} got no answer from "
                f"{self.adapter.endpoint} within {self.timeout_ms} ms"
            )
        )

    def failed(self, err: TarsError) -> None:
        fut = self.fut
        if fut.done():
            return
        now = time.monotonic()
        self.adapter.health.finish_invoke(True, now)
        if self.obj.observers:
            self.obj._observe(self.func, self.adapter, err.code, now - self.started)
        fut.set_exception(err)


class _Reply:
    """A bare wait for one reply (:meth:`ClientConnection.expect`): no deadline of its own."""

    __slots__ = ("fut",)
    deadline = float("inf")

    def __init__(self, fut: asyncio.Future[Any]) -> None:
        self.fut = fut

    def answered(self, rsp: Any) -> None:
        if not self.fut.done():
            self.fut.set_result(rsp)

    def failed(self, err: TarsError) -> None:
        if not self.fut.done():
            self.fut.set_exception(err)

    def timed_out(self) -> None:  # never: its deadline is infinite
        self.failed(InvokeTimeout())


def _peek_version(body: bytes | bytearray) -> int:
    """iVersion is tag 1 in both packet layouts; read it without decoding the rest."""
    if len(body) >= 1 and body[0] == 0x10 and len(body) >= 2:
        return body[1]
    if len(body) >= 3 and body[0] == 0x11:
        return int(unpack_i16(body, 1)[0])
    return TARSVERSION


def _read_outcome(fut: asyncio.Future[Any]) -> None:
    """Mark a finished future's error as read (those who await it still get it)."""
    if not fut.cancelled():
        fut.exception()


class AdapterProxy:
    """One endpoint of a servant: its connection (made on first use) and its health."""

    def __init__(
        self,
        endpoint: Endpoint,
        policy: ShieldPolicy,
        connect_timeout: float,
        on_push: Callable[[ResponsePacket], None] | None = None,
        obj_name: str = "",
        security: ServantSecurity | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.on_push = on_push
        self.obj_name = obj_name
        self.security = security
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
            # awaited through a shield: a caller that gave up (its own timeout) leaves the
            # attempt's error unread, which asyncio would log as never retrieved
            self._connecting.add_done_callback(_read_outcome)
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        security = self.security
        credentials = security.credentials if security is not None else None
        if ep.auth_type and credentials is None:  # -e 1 and nothing to sign with: don't connect
            raise missing_credentials(self.obj_name, ep)
        tls = client_ssl(security, self.obj_name) if ep.protocol == "ssl" else None
        try:

            def factory() -> ClientConnection:
                return ClientConnection(self._lost, self.on_push)

            connecting = (
                loop.create_connection(factory, ep.host, ep.port)
                if tls is None
                else open_tls_connection(factory, ep.host, ep.port, tls)
            )
            _, made = await asyncio.wait_for(connecting, self.connect_timeout)
            conn = cast(ClientConnection, made)
            if credentials is not None and ep.auth_type:  # -e 1: the handshake goes first
                await authenticate(conn, self.obj_name, credentials, self.connect_timeout, where=ep)
        except (TimeoutError, OSError) as e:
            self.health.connect_failed(time.monotonic())
            raise ConnectError(message=f"cannot connect to {ep}: {e or 'timeout'}") from None
        except ConnectError:
            self.health.connect_failed(time.monotonic())
            raise
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
        security: ServantSecurity | None = None,
    ) -> None:
        self.name = name
        #: keys and TLS files for this servant's endpoints (``-e 1``, ``ssl``)
        self.security = security
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
                new[ep] = old.get(ep) or self.inactive_adapters.get(ep) or self._adapter_proxy(ep)
        old_inactive = self.inactive_adapters
        new_inactive: dict[Endpoint, AdapterProxy] = {}
        for ep in inactive:
            if ep not in new and ep not in new_inactive:
                new_inactive[ep] = old_inactive.get(ep) or self._adapter_proxy(ep)
        for ep, adapter in old.items():
            if ep not in new:
                _retire(adapter, self.timeout_ms / 1000.0)
        self.adapters = new
        self.inactive_adapters = new_inactive
        self.selector.update(list(new.values()), list(new_inactive.values()))

    def _adapter_proxy(self, ep: Endpoint) -> AdapterProxy:
        return AdapterProxy(
            ep, self.policy, self.connect_timeout, self._on_push, self.name, self.security
        )

    def _on_push(self, rsp: ResponsePacket) -> None:
        handler = self.push_handler
        if handler is None:
            log.debug("%s: no push handler, ignoring a push", self.name)
        else:
            handler(rsp)

    def invoke(self, op: Operation, args: tuple[Any, ...], options: CallOptions) -> Awaitable[Any]:
        """Encode one call and send it; await the result for its result (``None`` for a
        one-way call) or its ``TarsError``.

        The common case, a connected endpoint, sends at once and returns the call's future;
        anything else (connecting, the registry's first answer, retrying another endpoint)
        goes through a coroutine (:meth:`_invoke_slow`)."""
        body = self.codec.encode_args(op, args)
        if op.routekey is not None and options.hash_code is None and options.consistent_key is None:
            options = _route_by_key(op, args, options)
        return self._start(op, op.name, body, options)

    __call__ = invoke  # what ServantProxy calls (an Invoker)

    async def invoke_raw(
        self,
        func: str,
        body: bytes,
        options: CallOptions,
    ) -> Any:
        """Send one request; return the reply packet (None for one-way); raise TarsError."""
        return await self._start(None, func, body, options)

    def _start(
        self, op: Operation | None, func: str, body: bytes, options: CallOptions
    ) -> Awaitable[Any]:
        if self.ready():
            now = time.monotonic()
            adapter = self.selector.select(
                now, hash_code=options.hash_code, consistent_key=options.consistent_key
            )
            if adapter is not None:
                conn = adapter._conn
                if conn is not None and not conn.closed:
                    return self._send(conn, adapter, op, func, body, options, now)
                return self._invoke_slow(op, func, body, options, adapter)
        return self._invoke_slow(op, func, body, options, None)

    def ready(self) -> bool:
        """Whether calls may go out without waiting for anything first (a registry-resolved
        proxy waits for the registry's first answer: ``tarsus.rpc.locator``)."""
        return True

    async def wait_ready(self, options: CallOptions) -> CallOptions:
        """Wait (within the call's timeout) until :meth:`ready`; the options with the time
        left. A direct proxy has nothing to wait for."""
        return options

    async def _invoke_slow(
        self,
        op: Operation | None,
        func: str,
        body: bytes,
        options: CallOptions,
        first: AdapterProxy | None,
    ) -> Any:
        """A call that must first connect (or wait for the registry): find an endpoint that
        accepts a connection, trying the others (and a fresh registry answer, once) when one
        refuses; then send as usual."""
        if first is None and not self.ready():
            options = await self.wait_ready(options)
        timeout_ms = options.timeout_ms or self.timeout_ms
        started = time.monotonic()
        deadline = started + timeout_ms / 1000.0
        tried: set[int] = set()
        asked_again = False
        while True:
            adapter = first if first is not None else self._pick(options, tried)
            first = None
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
        # The call's time counts from here: connecting took part of it.
        return await self._send(conn, adapter, op, func, body, options, started)

    def _send(
        self,
        conn: ClientConnection,
        adapter: AdapterProxy,
        op: Operation | None,
        func: str,
        body: bytes,
        options: CallOptions,
        now: float,
    ) -> asyncio.Future[Any]:
        timeout_ms = options.timeout_ms or self.timeout_ms
        rid = next(conn._ids)
        packet = encode(
            RequestPacket(
                self.version,
                1 if options.oneway else 0,
                0,
                rid,
                self.name,
                func,
                body,
                timeout_ms,
                options.context,
                options.status,
            )
        )
        fut: asyncio.Future[Any] = conn._loop.create_future()
        if options.oneway:
            conn.send_packet(packet)
            fut.set_result(None)
            return fut
        conn.start(PendingCall(fut, self, op, func, adapter, rid, now, timeout_ms), packet)
        return fut

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


def _result_code(rsp: Any) -> tuple[int, str]:
    if isinstance(rsp, ResponsePacket):
        return rsp.iRet, rsp.sResultDesc
    status = rsp.status  # TUP reply: a RequestPacket with the result in status
    try:
        code = int(status.get(STATUS_RESULT_CODE, "0"))
    except ValueError:
        code = Ret.SERVER_UNKNOWN_ERR
    return code, status.get(STATUS_RESULT_DESC, "")
