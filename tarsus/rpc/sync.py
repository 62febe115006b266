"""Blocking calls for scripts, REPLs and the CLI: ``SyncCommunicator``.

The async runtime stays the only runtime: a ``SyncCommunicator`` runs an asyncio loop in a
daemon thread and owns a ``Communicator`` on it; each blocking call is handed to that loop
and waited for. Any number of threads may call at once (their calls share the connections).

    with SyncCommunicator() as comm:
        hello = comm.string_to_proxy(Test.HelloProxy, "Test.HelloServer.HelloObj@tcp -h ...")
        ret, greeting = hello.sayHello("bob")
        hello.with_options(timeout_ms=500, context={"k": "v"}).sayHello("x")

Do not call a blocking proxy from the communicator's own loop thread (a callback scheduled
on ``comm.loop``): it would wait for itself, so it raises ``RuntimeError`` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from tarsus.codec.constants import TARSVERSION
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.proxy import ServantProxy

P = TypeVar("P", bound=ServantProxy)
R = TypeVar("R")


def default_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when uvloop is installed (``tarsus[speed]``), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class SyncCommunicator:
    """A ``Communicator`` (same arguments) whose proxies block; thread-safe.

    *loop_factory* makes the loop the calls run on (default :func:`default_loop`: uvloop
    when installed, about twice as many calls per second from many threads)."""

    def __init__(
        self,
        locator: str | None = None,
        *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
        **options: Any,
    ) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._loop = (loop_factory or default_loop)()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tarsus-sync-communicator", daemon=True
        )
        self._thread.start()

        async def make() -> Communicator:  # built on its loop, like everything it owns
            return Communicator(locator, **options)

        try:
            self._comm = self.run(make())
        except BaseException:
            self._stop_loop()
            raise

    @property
    def communicator(self) -> Communicator:
        """The async communicator underneath; touch it only from ``loop``."""
        return self._comm

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the calls run on (``asyncio.run_coroutine_threadsafe(coro, comm.loop)``)."""
        return self._loop

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run ``coro`` on the communicator's loop and wait for its result."""
        if threading.get_ident() == self._thread.ident:
            coro.close()
            raise RuntimeError(
                "a blocking Tars call from the SyncCommunicator's own loop thread would wait "
                "for itself; await the async proxy (SyncProxy.async_proxy) there instead"
            )
        call: _Call[R] = _Call(coro)
        with self._lock:
            if self._closed:
                coro.close()
                raise RuntimeError("this SyncCommunicator is closed")
            self._loop.call_soon_threadsafe(call.start, self._loop)
        return call.wait()

    def string_to_proxy(
        self, proxy_cls: type[P], name: str, *, version: int = TARSVERSION
    ) -> SyncProxy[P]:
        """A blocking proxy for ``Obj@endpoints`` or a bare ``Obj`` (through the locator)."""

        async def make() -> P:
            return self._comm.string_to_proxy(proxy_cls, name, version=version)

        return SyncProxy(self, self.run(make()))

    def close(self) -> None:
        """Close the connections and stop the loop thread. Calls still waiting fail."""
        if threading.get_ident() == self._thread.ident:
            raise RuntimeError("close a SyncCommunicator from outside its loop thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
        asyncio.run_coroutine_threadsafe(self._comm.close(), self._loop).result()
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop = self._loop

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_rest(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join()
        loop.close()

    def __enter__(self) -> SyncCommunicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Call(Generic[R]):
    """One coroutine run on the loop for a waiting thread: a task, and a plain lock the thread
    blocks on until the task is done (lighter than ``run_coroutine_threadsafe``'s
    ``concurrent.futures.Future``, which matters with many threads calling at once)."""

    __slots__ = ("_coro", "_done", "_task")

    def __init__(self, coro: Coroutine[Any, Any, R]) -> None:
        self._coro = coro
        self._task: asyncio.Task[R] | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._task = loop.create_task(self._coro)
        finally:
            if self._task is None:  # could not even make the task: do not leave the caller
                self._done.release()
            else:
                self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[R]) -> None:
        self._done.release()

    def wait(self) -> R:
        self._done.acquire()
        task = self._task
        if task is None:
            self._coro.close()
            raise RuntimeError("the SyncCommunicator's loop could not run the call")
        if task.cancelled():
            raise concurrent.futures.CancelledError()
        return task.result()


class SyncProxy(Generic[P]):
    """Wraps a generated async proxy: each IDL method blocks and returns its result
    (same shapes as the async proxy: ``None``, a value, or ``(ret, out1, ...)``)."""

    __slots__ = ("_comm", "async_proxy")

    def __init__(self, comm: SyncCommunicator, proxy: P) -> None:
        self._comm = comm
        #: the async proxy underneath (for use on ``comm.loop``)
        self.async_proxy = proxy

    def with_options(self, **changes: Any) -> SyncProxy[P]:
        """A proxy whose calls use these ``CallOptions`` (``timeout_ms``, ``context``...)."""
        return SyncProxy(self._comm, self.async_proxy.with_options(**changes))

    def tars_set_timeout(self, timeout_ms: int) -> SyncProxy[P]:
        return self.with_options(timeout_ms=timeout_ms)

    def tars_oneway(self) -> SyncProxy[P]:
        return self.with_options(oneway=True)

    @property
    def tars_name(self) -> str:
        return self.async_proxy.tars_name

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):  # copy/pickle probing; never an IDL method
            raise AttributeError(name)
        method = getattr(self.async_proxy, name)
        if not inspect.iscoroutinefunction(method):
            raise AttributeError(f"{type(self.async_proxy).__name__}.{name} is not an IDL method")
        comm = self._comm

        def call(*args: Any, **kwargs: Any) -> Any:
            return comm.run(method(*args, **kwargs))

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call

    def __repr__(self) -> str:
        return f"SyncProxy({type(self.async_proxy).__name__}, {self.tars_name!r})"
