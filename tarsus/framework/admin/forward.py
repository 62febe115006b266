"""Commands for nodes connected to another admin registry (upstream's 1012 forwarding).

With several admin registries (two framework hosts over one database), a node keeps a push
connection to each, but a node may be connected to only some of them for a while: it came up
while one framework host was cut off, or its connection to one broke. An admin registry asked
to run a command on a node it has no connection to asks the other admin registries, found
through the registry (``tars.tarsAdminRegistry.AdminRegObj``, every active endpoint but its
own), to push it down theirs: the first one that reaches the node answers.

Upstream (TarsFramework ``NodeManager::requestNode``) forwards the whole ``AdminReg`` request
with the context ``TARS_WEB_FORWARD=on``, and an instance without the connection answers
``EM_TARS_NODE_NO_CONNECTION`` (1012). Here only the push is relayed
(``AdminExt.relayNodePush``): the database work of the command is done once, by the admin
registry that was asked, and the task engine's commands are forwarded as the RPC methods'
are. A relayed push is never relayed again. See docs/failover.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tarsus.codec.constants import ADMIN_REG_OBJ
from tarsus.framework.admin.channel import NodeCallTimeout, NodeChannels, NodeNotConnected
from tarsus.framework.admin.errors import ErrCode
from tarsus.framework.push import push_operations
from tarsus.protocol.gen import TarsusAdmin
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint, EndpointError
from tarsus.rpc.errors import TarsError

__all__ = ["PeerAdmins", "serve_relay"]

log = logging.getLogger("tarsus.framework.admin.forward")


class PeerAdmins:
    """The other admin registries, and pushes relayed through them.

    *own* returns this admin registry's ``host:port`` addresses (left out of the peers);
    *node_timeout* is how long a node has to answer a push (the channel's, 5 s).
    """

    def __init__(
        self,
        communicator: Communicator,
        own: Callable[[], set[str]],
        *,
        node_timeout: float,
        admin_obj: str = ADMIN_REG_OBJ,
    ) -> None:
        self.communicator = communicator
        self.own = own
        self.node_timeout = node_timeout
        self.admin_obj = admin_obj

    async def endpoints(self) -> list[Endpoint]:
        """The active admin registries the registry lists, but for this one."""
        if self.communicator.locator is None:
            return []
        found = await self.communicator.registry.ask(
            lambda query: query.findObjectById(self.admin_obj)
        )
        own = self.own()
        out = []
        for ef in found:
            try:
                ep = Endpoint.from_endpointf(ef)
            except EndpointError:
                continue
            if f"{ep.host}:{ep.port}" not in own:
                out.append(ep)
        return out

    async def relay(self, node: str, func: str, args: tuple[Any, ...]) -> tuple[int, str]:
        """Push ``func(*args)`` to ``node`` through another admin registry; returns the node's
        ``(ret, result)``. Raises :class:`NodeNotConnected` when none reaches the node and
        :class:`NodeCallTimeout` when the one that reached it got no answer in time."""
        op = push_operations()[func]
        body = op.encode_results((0, "", *args))
        try:
            peers = await self.endpoints()
        except TarsError as e:
            log.warning("cannot find the other admin registries to reach node %s: %s", node, e)
            raise NodeNotConnected(node) from None
        if not peers:
            raise NodeNotConnected(node)
        timeout_ms = round((self.node_timeout + 1.0) * 1000)
        calls = [
            self._proxy(ep).with_options(timeout_ms=timeout_ms).relayNodePush(node, func, body)
            for ep in peers
        ]
        timed_out = False
        for answer in asyncio.as_completed(calls):
            try:
                ret, node_ret, result = await answer
            except TarsError as e:
                log.debug("relaying %s to node %s: %s", func, node, e)
                continue
            if ret == ErrCode.EM_TARS_SUCCESS:
                log.info("%s reached node %s through another admin registry", func, node)
                return int(node_ret), str(result)
            timed_out = timed_out or ret == ErrCode.EM_TARS_CALL_NODE_TIMEOUT_ERR
        if timed_out:
            raise NodeCallTimeout(node, func, self.node_timeout)
        raise NodeNotConnected(node)

    def _proxy(self, ep: Endpoint) -> Any:
        return self.communicator.string_to_proxy(
            TarsusAdmin.AdminExtProxy, f"{self.admin_obj}@{ep}"
        )


async def serve_relay(
    channels: NodeChannels, node: str, func: str, args: bytes
) -> tuple[int, int, str]:
    """The receiving end (``AdminExt.relayNodePush``): push down our own connection, never
    relay further. Returns ``(code, node's ret, result)``."""
    op = push_operations().get(func)
    if op is None:
        return ErrCode.EM_TARS_PARAMETER_ERR, 0, f"{func!r} is not a NodePush function"
    try:
        outs = op.decode_results(bytes(args))
    except Exception as e:
        return ErrCode.EM_TARS_PARAMETER_ERR, 0, f"{func}: undecodable arguments: {e}"
    _request_id, _admin_ip, *rest = outs if isinstance(outs, tuple) else (outs,)
    try:
        ret, result = await channels.request(node, func, *rest)
    except NodeNotConnected as e:
        return ErrCode.EM_TARS_NODE_NO_CONNECTION, 0, str(e)
    except NodeCallTimeout as e:
        return ErrCode.EM_TARS_CALL_NODE_TIMEOUT_ERR, 0, str(e)
    return ErrCode.EM_TARS_SUCCESS, ret, result
