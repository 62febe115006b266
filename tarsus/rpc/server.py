"""The server side: adapters listening on endpoints, dispatching calls to servants.

One ``Adapter`` serves one servant on one endpoint (as upstream: ``<App.Server.ObjAdapter>``
with ``endpoint``, ``servant``, ``maxconns``, ``queuecap``, ``queuetimeout``). Each connection
splits the byte stream into packets, decodes them, and runs each ``async def`` method eagerly:
its first step runs in the read callback, and only a call that suspends becomes a task, so
slow calls never hold up fast ones and fast ones cost no task. Replies produced in the same
turn of the event loop leave in one write. Bad input closes that connection (a packet that is
not Tars) or is answered with a Tars return code (an argument that does not decode), and never
reaches other connections.

Dispatch follows TarsCpp's ``ServantHandle::handleTarsProtocol``: overload (-9), queue timeout (-6)
checks, servant name (-4), ``tars_ping``, unknown function (-3), argument decoding by iVersion
(1 Tars, 3 TUP, 5 JSON; -1 on failure), the call, result encoding (-2 on failure); a servant
exception is answered with -99 and its text; one-way calls get no reply.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import logging
import ssl
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, cast

from tarsus.codec import DecodeError, RequestPacket, ResponsePacket, decode, encode, tup
from tarsus.codec.constants import (
    PUSH_FUNC,
    STATUS_RESULT_CODE,
    STATUS_RESULT_DESC,
    TARS_PING,
    TARSONEWAY,
    TARSVERSION,
)
from tarsus.codec.operation import Operation
from tarsus.codec.packet import frame_response
from tarsus.codec.versions import codec_for
from tarsus.idl.codegen import py_name
from tarsus.rpc.current import Current, _current
from tarsus.rpc.endpoint import Endpoint
from tarsus.rpc.errors import Ret, TarsError
from tarsus.rpc.framing import BatchingProtocol, FrameAssembler, FramingError, frame
from tarsus.rpc.periodic import Periodic
from tarsus.rpc.security import ServantSecurity, server_security
from tarsus.rpc.servant import Servant
from tarsus.rpc.tls_transport import TlsProtocol

log = logging.getLogger("tarsus.rpc.server")

_SUCCESS = int(Ret.SUCCESS)  # plain ints: an enum member lookup costs on the hot path
_UNKNOWN_ERR = int(Ret.SERVER_UNKNOWN_ERR)

#: Our default packet cap: Go's 10 MiB (C++ allows 100 MiB). Bounds what one connection buffers.
DEFAULT_MAX_PACKET = 10 * 1024 * 1024


#: names whose use in a method's own code means it needs ``asyncio.current_task()`` from its
#: first line (``asyncio.timeout``, ``TaskGroup``...): such a method is dispatched in a task
_NEEDS_TASK = frozenset({"timeout", "timeout_at", "Timeout", "TaskGroup", "current_task"})


def _names_used(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


class _Method:
    __slots__ = ("call", "eager", "is_coroutine", "op")

    def __init__(self, op: Operation, call: Callable[..., Any]) -> None:
        self.op = op
        self.call = call
        self.is_coroutine = inspect.iscoroutinefunction(call)
        code = getattr(getattr(call, "__func__", call), "__code__", None)
        #: whether its first step may run before a task exists (docs/rpc-server.md
        #: "Eager dispatch"); cleared for good when it turns out to need one
        self.eager = code is None or not (_names_used(code) & _NEEDS_TASK)


class _Resumed:
    """A coroutine that already ran up to its first suspension, awaitable again: a task
    awaiting it hands on what the coroutine waits for, then drives it to its end (what
    ``Task(eager_start=True)`` does in Python 3.12, by hand, and without the task when the
    coroutine never suspends)."""

    __slots__ = ("_coro", "_waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self._coro = coro
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting = self._coro, self._waiting
        self._waiting = None
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:  # what the task throws in goes on to the coroutine
                try:
                    waiting = coro.throw(e)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting = coro.send(sent)
                except StopIteration as done:
                    return done.value


def bind_methods(servant: Servant) -> dict[str, _Method]:
    """The servant's methods by IDL function name (the generated ``_tars_ops_`` table)."""
    ops = type(servant)._tars_ops_
    if not ops:
        raise TypeError(
            f"{type(servant).__name__} is not a generated servant (subclass a generated "
            "<Interface>Servant and override its methods)"
        )
    return {name: _Method(op, getattr(servant, py_name(name))) for name, op in ops.items()}


class Adapter:
    """One servant served on one endpoint."""

    def __init__(
        self,
        servant: Servant,
        servant_name: str,
        endpoint: str | Endpoint,
        *,
        name: str | None = None,
        max_conns: int = 10240,
        queue_cap: int = 100000,
        queue_timeout_ms: int = 60000,
        max_packet: int = DEFAULT_MAX_PACKET,
        eager: bool = True,
        security: ServantSecurity | None = None,
    ) -> None:
        self.servant = servant
        self.servant_name = servant_name
        self.endpoint = endpoint if isinstance(endpoint, Endpoint) else Endpoint.parse(endpoint)
        self.name = name or f"{servant_name}Adapter"
        self.max_conns = max_conns
        self.queue_cap = queue_cap
        self.queue_timeout = queue_timeout_ms / 1000.0
        self.max_packet = max_packet
        #: run each ``async def`` method's first step in the read callback, a task only for
        #: one that suspends (docs/rpc-server.md "Eager dispatch")
        self.eager = eager
        self.methods = bind_methods(servant)
        self.connections: set[ServerConnection] = set()
        self.inflight = 0
        #: requests dropped for waiting longer than the queue timeout (``<adapter>.timeoutNum``)
        self.queue_timeouts = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.accepting = False
        self._server: asyncio.Server | None = None
        # Closes connections idle longer than the endpoint's timeout (-t), checked every
        # second at most.
        self._idle = Periodic(
            f"tarsus-idle:{self.name}",
            lambda: min(self.endpoint.timeout / 1000.0, 1.0),
            self._close_idle,
        )
        self.stats_hook: Callable[[Current, int, float], None] | None = None
        # -e 1 (handshake first) and ssl endpoints (docs/security.md)
        self.auth, self.ssl = server_security(self.endpoint, security, servant_name, self.name)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self.endpoint.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def bound_endpoint(self) -> Endpoint:
        return dataclasses.replace(self.endpoint, port=self.port)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host = self.endpoint.host
        factory: Callable[[], asyncio.Protocol] = functools.partial(ServerConnection, self)
        if self.auth is not None:  # -e 1: each connection starts behind the handshake gate
            factory = self.auth.factory(factory)
        if self.ssl is not None:  # ssl: TLS under the connection (tarsus.rpc.tls_transport)
            factory = functools.partial(_over_tls, self.ssl, factory)
        self._server = await loop.create_server(
            factory, host, self.endpoint.port, reuse_address=True
        )
        self.accepting = True
        if self.endpoint.timeout > 0:
            self._idle.start()
        log.info("adapter %s serving %s on %s", self.name, self.servant_name, self.bound_endpoint)

    async def stop_accepting(self) -> None:
        self.accepting = False
        if self._server is not None:
            self._server.close()

    async def drain(self, deadline: float) -> bool:
        """Stop taking calls and let those in flight finish until *deadline*
        (``time.monotonic()``); True if every one did. Meanwhile each connection with no call
        in flight is closed gracefully (what it has buffered is still sent), so clients move
        on at once. What is left (calls still running, connections) is for :meth:`close`."""
        await self.stop_accepting()
        closing: set[ServerConnection] = set()
        while True:
            await asyncio.sleep(0)  # let replies already queued reach their sockets
            for conn in list(self.connections):
                if conn.pending == 0 and conn not in closing and conn.transport is not None:
                    closing.add(conn)
                    conn.transport.close()
            remaining = deadline - time.monotonic()
            if not self.tasks or remaining <= 0:
                break
            await asyncio.wait(
                set(self.tasks), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        if self.tasks:
            log.warning("%s: %d calls still running at the deadline", self.name, len(self.tasks))
        # Give gracefully closed connections a moment to flush before close() cuts the rest.
        for _ in range(50):
            if not any(conn in self.connections for conn in closing):
                break
            await asyncio.sleep(0.01)
        return not self.tasks

    async def close(self) -> None:
        """Close connections and cancel whatever is still running."""
        await self._idle.stop()
        for task in list(self.tasks):
            task.cancel()
        for conn in list(self.connections):
            conn.close()
        if self.auth is not None:
            self.auth.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _close_idle(self) -> None:
        idle = self.endpoint.timeout / 1000.0
        now = time.monotonic()
        for conn in list(self.connections):
            if now - conn.last_active > idle and not conn.pending:
                log.debug("closing idle connection from %s", conn.peer)
                conn.close()


def _over_tls(context: ssl.SSLContext, factory: Callable[[], asyncio.Protocol]) -> TlsProtocol:
    return TlsProtocol(context, factory(), server_side=True)


class ServerConnection(BatchingProtocol):
    __slots__ = (
        "_close_callbacks",
        "_frames",
        "adapter",
        "closed",
        "last_active",
        "peer",
        "pending",
    )

    def __init__(self, adapter: Adapter) -> None:
        super().__init__()
        self.adapter = adapter
        self.peer: tuple[str, int] | None = None
        self._frames = FrameAssembler(adapter.max_packet)
        self.pending = 0
        self.last_active = time.monotonic()
        self.closed = False
        self._close_callbacks: list[Callable[[ServerConnection], None]] = []

    # ------------------------------------------------------------------ transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop transports are not subclasses
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else None
        adapter = self.adapter
        if not adapter.accepting or len(adapter.connections) >= adapter.max_conns:
            log.warning("%s: refusing connection from %s (limit or stopping)", adapter.name, peer)
            transport.abort()
            return
        adapter.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.adapter.connections.discard(self)
        self.transport = None
        self._closed()

    def add_close_callback(self, callback: Callable[[ServerConnection], None]) -> None:
        """Call ``callback(conn)`` once, when this connection closes (at once if it has)."""
        if self.closed:
            callback(self)
        else:
            self._close_callbacks.append(callback)

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("close callback %r failed", callback)

    def send_push(self, func: str, body: bytes, context: dict[str, str] | None = None) -> bool:
        """Send a server push: a response with request id 0 naming ``func`` (TarsCpp
        ``Current::sendPushResponse``: iVersion 1, ``status["TARS_FUNC"]``, the function's
        out-parameters in ``sBuffer``). False if the connection is gone."""
        if self.closed or self.transport is None:
            return False
        packet = ResponsePacket(
            TARSVERSION, 0, 0, 0, Ret.SUCCESS, body, {PUSH_FUNC: func}, "", context or {}
        )
        self.send(frame(encode(packet)))
        return True

    def pause_writing(self) -> None:
        # The peer reads slower than we answer: stop reading its requests until it catches up.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.last_active = now
        try:
            frames = self._frames.feed(data)
        except FramingError as e:
            log.warning("%s: closing connection from %s: %s", self.adapter.name, self.peer, e)
            self.close()
            return
        for body in frames:
            self._handle(body, now)
            if self.closed:
                break

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        self.adapter.connections.discard(self)
        self._closed()

    # ------------------------------------------------------------------ dispatch
    def _handle(self, body: bytes | bytearray, now: float) -> None:
        adapter = self.adapter
        try:
            req = decode(body, RequestPacket)
        except DecodeError as e:
            # As C++: a packet that is not a RequestPacket means the stream cannot be trusted.
            log.warning("%s: undecodable request from %s: %s", adapter.name, self.peer, e)
            self.close()
            return
        method = adapter.methods.get(req.sFuncName)
        codec = codec_for(req.iVersion)
        current = Current(self, req, None if method is None else method.op, now, codec)
        if adapter.inflight >= adapter.queue_cap:
            log.warning("%s: queue full (%d), dropping a request", adapter.name, adapter.inflight)
            return
        if adapter.inflight > adapter.queue_cap * 4 // 5:
            self.send_error(current, Ret.SERVER_OVERLOAD, "server overloaded")
            return
        if req.sServantName != adapter.servant_name:
            self.send_error(current, Ret.SERVER_NO_SERVANT, f"no servant {req.sServantName!r} here")
            return
        if method is None:
            if req.sFuncName == TARS_PING:
                self.send_raw_result(current, b"")
            else:
                self.send_error(current, Ret.SERVER_NO_FUNC, f"no function {req.sFuncName!r}")
            return
        try:
            args = codec.decode_args(method.op, req.sBuffer)
        except (DecodeError, TypeError, ValueError) as e:
            self.send_error(current, Ret.SERVER_DECODE_ERR, str(e))
            return
        # The packets of one read wait for those before them: that is this server's queue.
        waited = time.monotonic() - now
        if waited > adapter.queue_timeout or 0 < req.iTimeout < waited * 1000:
            adapter.queue_timeouts += 1
            self.send_error(current, Ret.SERVER_QUEUE_TIMEOUT, f"waited {waited:.3f}s")
            return
        if not method.is_coroutine:
            self._start_task(self._run_in_thread(current, method, args))
            return
        if not (adapter.eager and method.eager):
            self._start_task(self._run(current, method, method.call(*args)))
            return
        # Eager dispatch: run the method's first step right here. Most calls finish without
        # ever suspending and are answered without a task or a hop through the loop's queue;
        # only one that suspends becomes a task (docs/rpc-server.md "Eager dispatch").
        # The call gets a context of its own, as a task would: what the method sets in it
        # (current() included) stays with the call, in the task that may continue it.
        ctx = contextvars.copy_context()
        ctx.run(_current.set, current)
        adapter.inflight += 1  # until it is answered or handed to a task (then the task's)
        self.pending += 1
        handed_on = False
        try:
            try:
                coro = method.call(*args)
                waiting = ctx.run(coro.send, None)
            except StopIteration as done:
                if not current._deferred:
                    self.send_result(current, done.value)
                return
            except TarsError as e:
                self.send_error(current, e.code, e.message)
                return
            except RuntimeError as e:
                if "inside a task" not in str(e):
                    log.exception("%s.%s raised", req.sServantName, req.sFuncName)
                    self.send_error(current, Ret.SERVER_UNKNOWN_ERR, f"RuntimeError: {e}")
                    return
                # It needs a task from its first step (asyncio.timeout() or a TaskGroup in
                # code it calls): from now on it gets one, and this call runs again in one.
                method.eager = False
                log.warning(
                    "%s.%s needs a task before its first await (%s): it is now dispatched "
                    "in a task; this call was run again in one",
                    req.sServantName, req.sFuncName, e,
                )  # fmt: skip
                self._spawn(self._run(current, method, method.call(*args)))
                handed_on = True
                return
            except (Exception, asyncio.CancelledError) as e:
                log.exception("%s.%s raised", req.sServantName, req.sFuncName)
                self.send_error(current, Ret.SERVER_UNKNOWN_ERR, f"{type(e).__name__}: {e}")
                return
            # It waits for something: a task in the call's context runs the rest.
            self._spawn(self._run(current, method, _Resumed(coro, waiting)), ctx)
            handed_on = True
        finally:
            if not handed_on:
                adapter.inflight -= 1
                self.pending -= 1

    def _start_task(self, coro: Coroutine[Any, Any, None]) -> None:
        self.adapter.inflight += 1
        self.pending += 1
        self._spawn(coro)

    def _spawn(
        self, coro: Coroutine[Any, Any, None], context: contextvars.Context | None = None
    ) -> None:
        tasks = self.adapter.tasks
        task = self._loop.create_task(coro, context=context)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run(self, current: Current, method: _Method, call: Awaitable[Any]) -> None:
        adapter = self.adapter
        _current.set(current)
        try:
            result = await call
        except TarsError as e:
            self.send_error(current, e.code, e.message)
        except asyncio.CancelledError:
            self.send_error(current, Ret.SERVER_UNKNOWN_ERR, "call cancelled: server stopping")
            raise
        except Exception as e:
            log.exception("%s.%s raised", current.servant_name, current.func_name)
            self.send_error(current, Ret.SERVER_UNKNOWN_ERR, f"{type(e).__name__}: {e}")
        else:
            if not current._deferred:
                self.send_result(current, result)
        finally:
            adapter.inflight -= 1
            self.pending -= 1

    async def _run_in_thread(self, current: Current, method: _Method, args: list[Any]) -> None:
        # A plain def may block: run it in a thread, with current() still available.
        _current.set(current)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, method.call, *args)
        await self._run(current, method, asyncio.get_running_loop().run_in_executor(None, call))

    # ------------------------------------------------------------------ replies
    def send_result(self, current: Current, result: Any) -> None:
        op = current.operation
        assert op is not None
        try:
            body = current.codec.encode_results(op, result)
        except Exception as e:  # wrong shape or a value that does not fit its type
            log.error("%s.%s: cannot encode result: %s", current.servant_name, op.name, e)
            self.send_error(current, Ret.SERVER_ENCODE_ERR, str(e))
            return
        self.send_raw_result(current, body)

    def send_raw_result(self, current: Current, body: bytes) -> None:
        self._reply(current, _SUCCESS, body, "")

    def send_error(self, current: Current, code: int, message: str) -> None:
        # C++ clients treat iRet below -99 as a broken stream: never send one.
        self._reply(current, max(int(code), _UNKNOWN_ERR), b"", message)

    def _reply(self, current: Current, code: int, body: bytes, desc: str) -> None:
        if current._responded:
            raise RuntimeError(f"{current!r} was already answered")
        current._responded = True
        hook = self.adapter.stats_hook
        if hook is not None:
            hook(current, code, time.monotonic() - current.received_at)
        req = current._req
        if req.cPacketType == TARSONEWAY:  # never answered
            return
        if current.codec.tup:
            status = {STATUS_RESULT_CODE: str(code)}
            if desc:
                status[STATUS_RESULT_DESC] = desc
            if not body:  # a TUP reply always carries a UniAttribute, even an empty one
                body = tup.UniAttribute(req.iVersion).encode()
            packet: Any = RequestPacket(
                req.iVersion,
                0,
                req.iMessageType,
                req.iRequestId,
                req.sServantName,
                req.sFuncName,
                body,
                req.iTimeout,
                current.response_context,
                status,
            )
        elif current.response_context:
            packet = ResponsePacket(
                req.iVersion,
                0,
                req.iRequestId,
                req.iMessageType,
                code,
                body,
                {},
                desc,
                current.response_context,
            )
        else:  # the common case, in one step (C when the codec's speedups run)
            self.send(
                frame_response(req.iVersion, 0, req.iRequestId, req.iMessageType, code, body, desc)
            )
            return
        self.send(frame(encode(packet)))
