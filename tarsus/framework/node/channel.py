"""The node's end of the push channel to the admin registries (``NodePush.tars``; docs/node.md).

Every ``interval`` (10 s, as upstream) the node finds the admin registries
(``tars.tarsAdminRegistry.AdminRegObj``) and calls ``reportNode`` on each over a connection
of its own; that connection is where the admin registry pushes commands (``NodePush``
functions). Each push is run by the node's command handler and answered with
``AdminReg.reportResult(requestId, funcName, ret, result)`` on the same admin registry.
Admin registries that vanish from the registry's answer are dropped; an unreachable one is
retried at the next round. Nothing here ever stops the node: with every admin registry down,
the node keeps supervising its services and simply takes no commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tarsus.codec import ResponsePacket
from tarsus.codec.constants import ADMIN_REG_OBJ as ADMIN_OBJ
from tarsus.codec.constants import PUSH_FUNC
from tarsus.framework.push import push_operations
from tarsus.protocol.gen import AdminReg, NodeDescriptor
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import TarsError
from tarsus.rpc.periodic import Backoff, Periodic

__all__ = ["ADMIN_OBJ", "AdminChannel", "CommandHandler"]

log = logging.getLogger("tarsus.framework.node.channel")

#: Seconds between reportNode rounds (upstream ServerManager: 10 s).
REPORT_INTERVAL = 10.0
CALL_TIMEOUT_MS = 3000
#: Rounds while no admin registry is known: the first after this many seconds, doubling.
FIRST_RETRY = 0.1
MAX_RETRY = 1.0


class CommandHandler(Protocol):
    """Runs pushed commands: one ``async`` method per ``NodePush`` function (``startServer``,
    ``stopServer``, ...), taking the function's arguments after (requestId, nodeName) and
    returning ``(ret, result)``; ``result`` is text, or bytes for the Tars-encoded answers."""

    def __getattr__(self, name: str) -> Callable[..., Awaitable[tuple[int, str | bytes]]]: ...


class AdminChannel:
    """Keeps one push connection per admin registry and answers what they push."""

    def __init__(
        self,
        communicator: Communicator,
        node_name: str,
        handler: Any,
        *,
        resolve: Callable[[], Awaitable[list[str]]],
        interval: float = REPORT_INTERVAL,
        call_timeout_ms: int = CALL_TIMEOUT_MS,
        admin_obj: str = ADMIN_OBJ,
    ) -> None:
        self.communicator = communicator
        self.node_name = node_name
        self.handler = handler
        self.resolve = resolve
        self.interval = interval
        self.call_timeout_ms = call_timeout_ms
        self.admin_obj = admin_obj
        self.sid = uuid.uuid4().hex
        #: admin registry endpoint string -> proxy whose connection carries the pushes
        self.proxies: dict[str, AdminReg.AdminRegProxy] = {}
        self._rounds = Periodic(
            "tarsus-node-report", self._next_round, self.report_once, run_first=True
        )
        self._retry = Backoff(FIRST_RETRY, MAX_RETRY)
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._rounds.start()

    async def stop(self, *, say_goodbye: bool = False) -> None:
        """Stop reporting; ``say_goodbye`` calls ``deleteNode`` on each admin registry."""
        await self._rounds.stop()
        if say_goodbye:
            rn = NodeDescriptor.ReportNode(self.node_name, self.sid)
            for proxy in list(self.proxies.values()):
                with contextlib.suppress(TarsError, OSError):
                    await proxy.with_options(timeout_ms=1000).deleteNode(rn)
        if self._running:
            # Commands in flight (a pushed ``shutdown`` among them) may still report their
            # result; give them a moment before cutting them off.
            _done, pending = await asyncio.wait(set(self._running), timeout=1.0)
            for running in pending:
                running.cancel()
        self.proxies.clear()

    def _next_round(self) -> float:
        """``interval`` once an admin registry took our report; until then sooner (0.1 s,
        doubling up to 1 s), so a node that comes up with its framework takes commands as
        soon as the admin registry is routed, not a whole interval later."""
        if self.proxies:
            self._retry.reset()
            return self.interval
        return min(self._retry.next(), self.interval)

    def report_now(self) -> None:
        """Run a round now (after a config change, or in tests) instead of waiting."""
        self._rounds.run_now()

    async def report_once(self) -> int:
        """One round: refresh the admin registry list, ``reportNode`` to each. Returns how
        many admin registries took the report."""
        try:
            endpoints = await self.resolve()
        except (TarsError, OSError) as e:
            log.debug("cannot find the admin registries: %s", e)
            endpoints = list(self.proxies)  # keep talking to the ones we know
        for gone in set(self.proxies) - set(endpoints):
            log.info("admin registry %s is gone", gone)
            del self.proxies[gone]
        for ep in endpoints:
            if ep not in self.proxies:
                proxy = self.communicator.string_to_proxy(
                    AdminReg.AdminRegProxy, f"{self.admin_obj}@{ep}"
                )
                proxy.tars_set_push_callback(functools.partial(self._on_push, proxy))
                self.proxies[ep] = proxy
        rn = NodeDescriptor.ReportNode(self.node_name, self.sid)
        results = await asyncio.gather(
            *(
                p.with_options(timeout_ms=self.call_timeout_ms).reportNode(rn)
                for p in self.proxies.values()
            ),
            return_exceptions=True,
        )
        ok = 0
        for ep, result in zip(list(self.proxies), results, strict=True):
            if isinstance(result, BaseException):
                log.debug("reportNode to %s failed: %s", ep, result)
            else:
                ok += 1
        return ok

    # ------------------------------------------------------------------ pushes
    def _on_push(self, proxy: AdminReg.AdminRegProxy, rsp: ResponsePacket) -> None:
        func = rsp.status.get(PUSH_FUNC, "")
        op = push_operations().get(func)
        if op is None:
            log.warning("ignoring a push of unknown function %r", func)
            return
        try:
            outs = op.decode_results(rsp.sBuffer)
        except Exception as e:
            log.warning("ignoring an undecodable %s push: %s", func, e)
            return
        if not isinstance(outs, tuple):
            outs = (outs,)
        request_id, _admin_ip, *args = outs
        task = asyncio.get_running_loop().create_task(
            self._run_command(proxy, func, request_id, args)
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_command(
        self, proxy: AdminReg.AdminRegProxy, func: str, request_id: int, args: list[Any]
    ) -> None:
        method = getattr(self.handler, func, None)
        if method is None:
            ret, result = -1, f"{func} is not supported by this node"
        else:
            try:
                ret, answer = await method(*args)
                result = (
                    answer.decode("utf-8", "surrogateescape")
                    if isinstance(answer, bytes)
                    else str(answer)
                )
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("pushed command %s%r failed", func, tuple(args))
                ret, result = -1, f"{func} failed: {type(e).__name__}: {e}"
        try:
            await proxy.with_options(timeout_ms=self.call_timeout_ms).reportResult(
                request_id, func, ret, result
            )
        except (TarsError, OSError) as e:
            log.warning("cannot report the result of %s to the admin registry: %s", func, e)
