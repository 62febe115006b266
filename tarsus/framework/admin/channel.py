"""The admin registry's end of the node push channel (upstream ``NodeManager::requestNode``).

Nodes keep a connection to every admin registry open by calling ``AdminReg.reportNode`` on it
every 10 s. To run a command on a node, the admin registry writes a *server push* on that
connection: a response with request id 0 naming a ``NodePush`` function, whose out-parameters
carry a request id of ours, our address and the command's arguments. The node runs it and
answers with ``AdminReg.reportResult(requestId, funcName, ret, result)``, which completes the
waiting request. Upstream waits 5 s for that answer; so do we.

Upstream tarsnodes (C++) speak exactly this, so they can be driven by our admin registry, and
our node by theirs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from tarsus.codec.constants import request_ids
from tarsus.framework.push import push_operations

if TYPE_CHECKING:
    from tarsus.rpc.current import Current
    from tarsus.rpc.server import ServerConnection

__all__ = ["NodeCallTimeout", "NodeChannels", "NodeNotConnected", "push_operations"]

log = logging.getLogger("tarsus.framework.admin.channel")

#: Seconds to wait for a node's ``reportResult`` (upstream ``NodeManager`` 5000 ms).
DEFAULT_TIMEOUT = 5.0
#: Commands whose answer comes only once a process is gone get ``STOP_WAIT`` times the wait: a
#: node stops a server with ``AdminF.shutdown`` (1 s), waits out its ``deactivating-timeout``
#: (template 3 s) and, past it, kills and waits 2 s more, then reloads the server from the
#: registry. Upstream waits 5 s for these too, and answers 1002 "timeout" for a stop that is
#: merely slow (a server that ignores its shutdown) and then succeeds: a deliberate difference.
STOPPING_FUNCS: frozenset[str] = frozenset({"stopServer"})
STOP_WAIT = 3


class NodeNotConnected(Exception):
    """The node has no push connection to this admin registry (not registered, or gone)."""

    def __init__(self, node_name: str) -> None:
        super().__init__(f"node {node_name!r} is not connected to this admin registry")
        self.node_name = node_name


class NodeCallTimeout(Exception):
    """The node did not answer a pushed command in time."""

    def __init__(self, node_name: str, func: str, timeout: float) -> None:
        super().__init__(f"node {node_name!r} did not answer {func} within {timeout:g} s")
        self.node_name = node_name
        self.func = func


class NodeChannels:
    """Which node is connected on which connection, and the commands waiting for answers."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, self_ip: str = "127.0.0.1") -> None:
        self.timeout = timeout
        self.self_ip = self_ip
        #: node name -> its connections, most recent first
        self._conns: dict[str, list[ServerConnection]] = {}
        self._beats: dict[str, str] = {}
        #: request id -> (node, func, the connection it was pushed on, its answer)
        self._pending: dict[
            int, tuple[str, str, ServerConnection, asyncio.Future[tuple[int, str]]]
        ] = {}
        self._ids = request_ids()

    # ------------------------------------------------------------------ the node's side
    def attach(self, node_name: str, current: Current) -> None:
        """Remember the connection a node's ``reportNode`` came on (call from reportNode)."""
        conn = current.connection
        conns = self._conns.setdefault(node_name, [])
        if conn in conns:
            conns.remove(conn)
        else:
            conn.add_close_callback(functools.partial(self._lost, node_name))
            log.info("node %s connected from %s", node_name, conn.peer)
        conns.insert(0, conn)
        self._beats[node_name] = time.strftime("%Y-%m-%d %H:%M:%S")

    def detach(self, node_name: str) -> None:
        """Forget a node (``deleteNode``): its connections stay open but carry no commands."""
        self._conns.pop(node_name, None)
        self._beats.pop(node_name, None)

    def _lost(self, node_name: str, conn: ServerConnection) -> None:
        # Commands pushed on it get no answer now: said at once, not after the wait.
        for _node, _func, on, fut in list(self._pending.values()):
            if on is conn and not fut.done():
                fut.set_exception(NodeNotConnected(node_name))
        conns = self._conns.get(node_name)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                # as upstream's doClose: the node leaves the map, its heartbeat with it, so
                # that getNodeList no longer shows it connected here
                del self._conns[node_name]
                self._beats.pop(node_name, None)
                log.info("node %s disconnected", node_name)

    def connected(self, node_name: str) -> bool:
        return any(not c.closed for c in self._conns.get(node_name, ()))

    def nodes(self) -> list[str]:
        """Names of the nodes connected now."""
        return sorted(n for n in self._conns if self.connected(n))

    def heartbeats(self) -> dict[str, str]:
        """Node name -> time of its last ``reportNode`` (``YYYY-MM-DD HH:MM:SS``), for the
        nodes connected here."""
        return dict(self._beats)

    def report_result(self, request_id: int, func: str, ret: int, result: str) -> None:
        """A node's answer to a pushed command (call from reportResult). Late answers (the
        request timed out) and unknown ids are dropped, as upstream does."""
        entry = self._pending.pop(request_id, None)
        if entry is None:
            log.debug("dropping late or unknown result %d (%s)", request_id, func)
            return
        *_, fut = entry
        if not fut.done():
            fut.set_result((ret, result))

    # ------------------------------------------------------------------ commands
    async def request(
        self, node_name: str, func: str, *args: Any, timeout: float | None = None
    ) -> tuple[int, str]:
        """Push ``func(*args)`` to the node and wait for its ``(ret, result)``.

        Raises :class:`NodeNotConnected` when the node has no live connection here (or the
        connection closes before the answer: the node was killed, or restarted) and
        :class:`NodeCallTimeout` when it does not answer within ``timeout`` (default 5 s;
        three times that for a stop, :data:`STOPPING_FUNCS`).
        """
        op = push_operations().get(func)
        if op is None:
            raise ValueError(f"{func!r} is not a NodePush function")
        conn = next((c for c in self._conns.get(node_name, ()) if not c.closed), None)
        if conn is None:
            raise NodeNotConnected(node_name)
        rid = next(self._ids)
        body = op.encode_results((rid, self.self_ip, *args))
        fut: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (node_name, func, conn, fut)
        if timeout is not None:
            wait = timeout
        else:
            wait = self.timeout * (STOP_WAIT if func in STOPPING_FUNCS else 1)
        try:
            if not conn.send_push(func, body):
                raise NodeNotConnected(node_name)
            return await asyncio.wait_for(fut, wait)
        except TimeoutError:
            raise NodeCallTimeout(node_name, func, wait) from None
        finally:
            self._pending.pop(rid, None)
