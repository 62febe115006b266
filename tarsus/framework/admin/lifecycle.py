"""Operations on server instances that involve their node (upstream ``AdminRegistryImp``).

Each writes the desired state to ``t_server_conf`` where upstream does, then pushes the command
to the node over the push channel and returns the node's ``(ret, result)``. They are shared by
the RPC methods and the task engine (upstream's ``*_inner`` twins), and raise nothing for an
expected failure: every outcome is a return code and a text a person can act on.

Return codes: the node's own ``ret`` when it answered; 1001 when the node is not connected,
1002 when it did not answer within the channel's timeout, 1003 when the instance is not
deployed, 1004 when it is in the wrong state, 1011 for what we refuse on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tarsus.codec.constants import TARS_PING
from tarsus.framework.admin.channel import NodeCallTimeout, NodeNotConnected
from tarsus.framework.admin.errors import AdminError, ErrCode, Outcome
from tarsus.framework.admin.inventory import delete_server_config_files
from tarsus.framework.admin.packages import NO_PACKAGE, package_row
from tarsus.framework.admin.replies import decode_patch_info, decode_state_info
from tarsus.framework.admin.settings import AdminSettings
from tarsus.package import PackageError, local_path, md5_of
from tarsus.patching import wait_patch
from tarsus.protocol.gen import AdminReg, NodeDescriptor
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.endpoint import Endpoint, EndpointError
from tarsus.rpc.errors import TarsError
from tarsus.rpc.proxy import CallOptions
from tarsus.store.errors import NotFound
from tarsus.store.patches import parse_patch_id

if TYPE_CHECKING:
    from tarsus.framework.admin.channel import NodeChannels
    from tarsus.framework.admin.forward import PeerAdmins
    from tarsus.framework.admin.packages import Packages
    from tarsus.store.engine import Store
    from tarsus.store.rows import AdapterRow, ServerRow

__all__ = ["SELF", "Lifecycle", "server_id"]

log = logging.getLogger("tarsus.framework.admin.lifecycle")

#: The admin registry's own server id: it does not stop or restart itself through itself.
SELF = ("tars", "tarsAdminRegistry")
TARS_DNS = "tars_dns"
_NOT_RUNNING = ("Inactive", "Destroyed")


def server_id(app: str, server: str, node: str) -> str:
    """``App.Server_node``, upstream's name of an instance in logs."""
    return f"{app}.{server}_{node}"


class Lifecycle:
    """Start, stop, patch... server instances on their nodes."""

    def __init__(
        self,
        store: Store,
        channels: NodeChannels,
        settings: AdminSettings,
        packages: Packages | None = None,
        communicator: Communicator | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.settings = settings
        #: the package store (PatchObj and ``t_server_patchs``); None: publish from paths only
        self.packages = packages
        #: pings servants (:meth:`answers`); the admin registry's own communicator
        self.communicator = communicator
        #: the other admin registries: a push for a node not connected here goes through
        #: them (docs/failover.md); None: only this one's connections
        self.peers: PeerAdmins | None = None

    # ------------------------------------------------------------------ the channel
    async def push(self, node: str, func: str, *args: Any) -> tuple[int, str]:
        """Push ``func(*args)`` to ``node``; channel failures become :class:`AdminError`."""
        try:
            try:
                return await self.channels.request(node, func, *args)
            except NodeNotConnected:
                if self.peers is None:
                    raise
                return await self.peers.relay(node, func, args)
        except NodeNotConnected as e:
            code = getattr(e, "code", ErrCode.EM_TARS_NODE_NOT_REGISTRY_ERR)
            raise AdminError(
                code,
                f"{func}: node {node!r} is not connected to this admin registry nor to "
                "another (not registered, down, or its keepalive timed out)",
            ) from None
        except NodeCallTimeout as e:
            raise AdminError(ErrCode.EM_TARS_CALL_NODE_TIMEOUT_ERR, f"{func}: {e}") from None

    async def _node(self, node: str, func: str, *args: Any) -> Outcome:
        code, text = await self.push(node, func, *args)
        if code != 0:
            log.warning("%s on node %s failed (%d): %s", func, node, code, text)
        return Outcome(code, text)

    # ------------------------------------------------------------------ the database
    async def row(self, app: str, server: str, node: str) -> ServerRow:
        row = await self.store.servers.get(app, server, node)
        if row is None:
            raise AdminError(
                ErrCode.EM_TARS_LOAD_SERVICE_DESC_ERR,
                f"'{server_id(app, server, node)}' no config: {app}.{server} is not deployed "
                f"on node {node!r}",
            )
        return row

    async def _set_setting(self, app: str, server: str, node: str, state: str) -> None:
        try:
            await self.store.servers.set_setting_state(app, server, node, state)
        except NotFound:
            raise AdminError(
                ErrCode.EM_TARS_LOAD_SERVICE_DESC_ERR,
                f"'{server_id(app, server, node)}' no config: {app}.{server} is not deployed "
                f"on node {node!r}",
            ) from None

    async def _set_present(self, app: str, server: str, node: str, state: str) -> None:
        await self.store.servers.update_present(node, app, server, state, 0)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, app: str, server: str, node: str) -> Outcome:
        """``setting_state='active'``, then the node starts it."""
        await self._set_setting(app, server, node, "active")
        row = await self.row(app, server, node)
        if row.server_type == TARS_DNS:
            await self._set_present(app, server, node, "active")
            return Outcome(0, "")
        return await self._node(node, "startServer", app, server)

    async def stop(self, app: str, server: str, node: str) -> Outcome:
        """``setting_state='inactive'`` (the node will not restart it), then the node stops it."""
        if (app, server) == SELF:
            raise AdminError(
                ErrCode.EM_TARS_CAN_NOT_EXECUTE,
                f"can not stop {app}.{server}: it is the admin registry serving this request",
            )
        await self._set_setting(app, server, node, "inactive")
        row = await self.row(app, server, node)
        if row.server_type == TARS_DNS:
            await self._set_present(app, server, node, "inactive")
            return Outcome(0, "")
        return await self._node(node, "stopServer", app, server)

    async def restart(
        self, app: str, server: str, node: str, *, reset_flow: bool = False
    ) -> Outcome:
        """Stop, then (if that worked) ``setting_state='active'`` and start. ``reset_flow``
        (tasks) also opens the instance's traffic again."""
        if (app, server) == SELF:
            raise AdminError(
                ErrCode.EM_TARS_CAN_NOT_EXECUTE,
                f"can not restart {app}.{server} through itself; restart it with its node "
                "agent or the command that runs it",
            )
        row = await self.row(app, server, node)
        dns = row.server_type == TARS_DNS
        if not dns:
            stopped = await self._node(node, "stopServer", app, server)
            if not stopped.ok:
                return Outcome(stopped.code, f"restart: stop failed: {stopped.result}")
        await self._set_setting(app, server, node, "active")
        if reset_flow:
            await self.store.servers.set_flow_state(app, server, [node], True)
        if dns:
            await self._set_present(app, server, node, "active")
            return Outcome(0, "")
        return await self._node(node, "startServer", app, server)

    async def grace_restart(self, app: str, server: str, node: str) -> Outcome:
        """``tars.gracerestart`` through ``notifyServer`` (publish with ``grace_patch_tars``)."""
        await self.row(app, server, node)
        return await self._node(node, "notifyServer", app, server, "tars.gracerestart")

    async def notify(self, app: str, server: str, node: str, command: str) -> Outcome:
        """Send an admin command (``tars.loadconfig x``, ``tars.setloglevel``...) to the server
        through its node; the server's reply is the result."""
        return await self._node(node, "notifyServer", app, server, command)

    async def load(self, app: str, server: str, node: str) -> Outcome:
        """The node reloads the instance's description and rewrites its config file."""
        return await self._node(node, "loadServer", app, server)

    async def destroy(self, app: str, server: str, node: str) -> Outcome:
        """``setting_state='inactive'``; the node deletes the instance's files (it must be
        stopped). Pushed even when the instance is no longer deployed, as upstream does, so
        an undeployed instance's files can still be cleaned up."""
        row = await self.store.servers.get(app, server, node)
        if row is not None:
            await self._set_setting(app, server, node, "inactive")
            if row.server_type == TARS_DNS:
                await self._set_present(app, server, node, "inactive")
                return Outcome(0, "")
        return await self._node(node, "destroyServer", app, server)

    async def state(
        self, app: str, server: str, node: str
    ) -> tuple[int, AdminReg.ServerStateDesc, str]:
        """``getServerState``: ``(code, ServerStateDesc, result)``; the registry's view from
        the database, the node's from ``getStateInfo``. On a node error the database part is
        still filled in."""
        row = await self.row(app, server, node)
        desc = AdminReg.ServerStateDesc(
            settingStateInReg=row.setting_state,
            presentStateInReg=row.present_state,
            presentStateInNode="",
            processId=row.process_id,
            patchVersion=row.patch_version,
            patchTime=_time_text(row.patch_time),
            patchUser=row.patch_user,
        )
        if row.server_type == TARS_DNS:
            desc.presentStateInNode = row.present_state
            return 0, desc, ""
        try:
            code, raw = await self.push(node, "getStateInfo", app, server)
        except AdminError as e:
            return e.code, desc, e.message
        try:
            info, text = decode_state_info(raw)
        except AdminError as e:
            # a node that failed may answer plain text instead of the encoded pair
            return (code or e.code), desc, raw if code and raw.isprintable() else e.message
        desc.processId = int(info.processId)
        desc.presentStateInNode = _state_name(info.serverState)
        return code, desc, text

    async def undeploy(self, app: str, server: str, node: str, user: str = "") -> Outcome:
        """Delete the instance's rows (``t_server_conf``, ``t_adapter_conf``, its node's
        config files). Refused with 1004 while it runs: upstream stops it first (quirk 11);
        we leave that decision to the operator. Whether it runs is asked of the node; a node
        that cannot be reached is judged by the registry's last report."""
        row = await self.row(app, server, node)
        where = server_id(app, server, node)
        running_text = ""
        try:
            code, raw = await self.push(node, "getStateInfo", app, server)
        except AdminError:
            code, raw = -1, ""
        if code == 0:
            info, _ = decode_state_info(raw)
            state = _state_name(info.serverState)
            if state not in _NOT_RUNNING:
                running_text = f"its node reports it {state} (pid {info.processId})"
        elif row.present_state not in ("inactive", "destroyed"):
            running_text = (
                f"its node cannot be asked and the registry last saw it {row.present_state}"
            )
        if running_text:
            raise AdminError(
                ErrCode.EM_TARS_SERVICE_STATE_ERR,
                f"can not undeploy '{where}': {running_text}; stop it first",
            )
        try:
            await self.store.servers.undeploy(app, server, node, force=True)
        except NotFound:
            return Outcome(0, f"'{where}' was not deployed")
        log.info("undeployed %s (by %r)", where, user)
        return Outcome(0, f"'{where}' undeployed")

    async def uninstall(self, app: str, server: str, node: str) -> Outcome:
        """``uninstallServer``: the node must report the instance Inactive (else 1004, or the
        node's error); then ``setting_state='inactive'``, the node deletes its files, and its
        rows go (its level-2 config files too when it was the last instance)."""
        where = server_id(app, server, node)
        await self.row(app, server, node)
        code, raw = await self.push(node, "getStateInfo", app, server)
        if code != 0:
            return Outcome(code, f"can not uninstall '{where}': getStateInfo failed: {raw}")
        info, _ = decode_state_info(raw)
        state = _state_name(info.serverState)
        if state != "Inactive":
            raise AdminError(
                ErrCode.EM_TARS_SERVICE_STATE_ERR,
                f"can not uninstall '{where}': its node reports it {state}; stop it first",
            )
        await self._set_setting(app, server, node, "inactive")
        destroyed = await self._node(node, "destroyServer", app, server)
        if not destroyed.ok:
            log.warning("uninstall %s: destroyServer: %s", where, destroyed.result)
        with contextlib.suppress(NotFound):
            await self.store.servers.undeploy(app, server, node, force=True)
        if not await self.store.servers.list(app, server):
            await delete_server_config_files(self.store, f"{app}.{server}")
        return Outcome(0, f"'{where}' uninstalled")

    async def set_flow(self, app: str, server: str, nodes: list[str], active: bool) -> int:
        """Open or close traffic to instances (``flow_state``); returns rows changed."""
        return await self.store.servers.set_flow_state(app, server, nodes, active)

    async def answers(self, app: str, server: str, node: str, timeout: float) -> Outcome:
        """Wait (at most ``timeout`` s; 0: ask once) until the instance is ``Active`` on its
        node and each of its servants answers on its own endpoint: ``tars_ping`` for a Tars
        servant, a TCP connection for a ``not_tars`` one. The lossless task step that comes
        before opening an instance's traffic again. Failure: 1004 with what was missing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            missing, pid = await self._probe(app, server, node)
            if not missing:
                return Outcome(0, f"'{server_id(app, server, node)}' answers (pid {pid})")
            if loop.time() >= deadline:
                waited = f" within {timeout:g} s" if timeout > 0 else ""
                return Outcome(
                    ErrCode.EM_TARS_SERVICE_STATE_ERR,
                    f"'{server_id(app, server, node)}' did not answer{waited}: {missing}",
                )
            await asyncio.sleep(min(self.settings.ready_poll_interval, deadline - loop.time()))

    async def _probe(self, app: str, server: str, node: str) -> tuple[str, int]:
        """``("", pid)`` when the instance runs and answers, else ``(what is missing, pid)``."""
        row = await self.row(app, server, node)
        if row.server_type == TARS_DNS:
            return ("", 0) if row.present_state == "active" else ("it is not active", 0)
        try:
            code, raw = await self.push(node, "getStateInfo", app, server)
        except AdminError as e:
            return e.message, 0
        if code != 0:
            return f"getStateInfo failed ({code})", 0
        info, _ = decode_state_info(raw)
        state, pid = _state_name(info.serverState), int(info.processId)
        if state != "Active":
            return f"its node reports it {state}", pid
        for adapter in await self.store.servers.adapters(app, server, node):
            failure = await self._ping(adapter, node)
            if failure:
                return f"{adapter.servant} at {adapter.endpoint!r}: {failure}", pid
        return "", pid

    async def _ping(self, adapter: AdapterRow, node: str) -> str:
        """ "" when the servant answers on its endpoint, else why not."""
        try:
            endpoint = Endpoint.parse(adapter.endpoint)
        except EndpointError as e:
            return f"bad endpoint: {e}"
        host = node if endpoint.host in ("", "0.0.0.0", "::", "*") else endpoint.host
        timeout = self.settings.check_server_timeout_ms
        if adapter.protocol.lower() not in ("", "tars") or not endpoint.is_tcp:
            if not endpoint.is_tcp:
                return ""  # a UDP servant cannot be asked without speaking its protocol
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, endpoint.port), timeout / 1000
                )
            except (OSError, TimeoutError) as e:
                return f"no TCP connection: {e}"
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return ""
        if self.communicator is None:
            return ""
        target = f"{adapter.servant}@{dataclasses.replace(endpoint, host=host)}"
        try:
            proxy = self.communicator.object_proxy(target)
            await proxy.invoke_raw(TARS_PING, b"", CallOptions(timeout_ms=timeout))
        except (TarsError, ValueError, OSError) as e:
            return f"tars_ping: {e}"
        return ""

    # ------------------------------------------------------------------ publishing
    async def prepare_patch(self, item: AdminReg.TaskItemReq) -> Outcome:
        """Before a task's patch items run (upstream ``prepareFile``). ``filepath`` (ours: a
        local path or ``file:`` URL) is used as it is, its md5 computed if missing. Else
        ``patch_id`` names a ``t_server_patchs`` row (missing: 1009), which PatchObj stages
        for the nodes (``preparePatchFile``; failure: 1010); the row's md5 goes into the
        item's parameters; old packages of the server are pruned."""
        params = item.parameters
        if params.get("filepath"):
            if not params.get("md5"):
                params["md5"] = await _md5_of(params["filepath"])
            return Outcome(0, "")
        patch_id = params.get("patch_id", "")
        if not patch_id:
            return Outcome(
                ErrCode.EM_TARS_PARAMETER_ERR,
                "patch item has neither a patch_id nor a filepath parameter",
            )
        try:
            prepared = await self._prepare_package(
                item.application, item.serverName, patch_id, params.get("group_name", "")
            )
        except AdminError as e:
            return Outcome(e.code, e.message)
        params["md5"] = prepared
        return Outcome(0, "")

    async def _prepare_package(self, app: str, server: str, patch_id: str, group: str) -> str:
        """Stage package ``patch_id`` on PatchObj; its md5. Without a package store (a
        Lifecycle built without one) only the row is looked up."""
        if self.packages is not None:
            return (await self.packages.prepare(app, server, patch_id, group)).md5
        return (await package_row(self.store, patch_id, NO_PACKAGE + patch_id)).md5

    async def patch_request(self, req: NodeDescriptor.PatchRequest) -> NodeDescriptor.PatchRequest:
        """The ``PatchRequest`` the node gets: ours filled in as upstream's ``batchPatch``
        fills it (``patchobj``, ``servertype`` from the instance, ``md5`` from the package)."""
        out = req.replace(patchobj=self.settings.patch_obj)
        row = await self.store.servers.get(req.appname, req.servername, req.nodename)
        out.servertype = row.server_type if row is not None else ""
        if out.filepath:
            if not out.md5:
                out.md5 = await _md5_of(out.filepath)
            return out
        if not out.version:
            raise AdminError(
                ErrCode.EM_TARS_PARAMETER_ERR,
                "PatchRequest has neither a version (patch id) nor a filepath",
            )
        package = await package_row(self.store, out.version, f"get patch tgz error:{out.version}")
        out.md5 = package.md5
        return out

    async def batch_patch(self, req: NodeDescriptor.PatchRequest) -> Outcome:
        """Hand the package to the node (``patchPro``), which installs it in the background;
        progress comes from :meth:`patch_percent`. The package must already be staged (a
        task's prepare step, or :meth:`batch_patch_rpc`)."""
        ready = await self.patch_request(req)
        return await self._node(ready.nodename, "patchPro", ready)

    async def batch_patch_rpc(self, req: NodeDescriptor.PatchRequest) -> Outcome:
        """AdminReg ``batchPatch``: one node without a task. A package named by patch id
        (``version``) is staged on PatchObj first (1009 / 1010 as a task's prepare step);
        one named by ``filepath`` is handed over as it is."""
        if not req.filepath and req.version:
            await self._prepare_package(req.appname, req.servername, req.version, req.groupname)
        return await self.batch_patch(req)

    async def patch_percent(
        self, app: str, server: str, node: str
    ) -> tuple[int, NodeDescriptor.PatchInfo]:
        """``getPatchPercent``: the node's ``PatchInfo`` (on failure, the reason in
        ``sResult``)."""
        try:
            code, raw = await self.push(node, "getPatchPercent", app, server)
        except AdminError as e:
            return e.code, NodeDescriptor.PatchInfo(sResult=e.message)
        if code != 0:
            # the node's PatchInfo says why (a refused package, a full disk): keep it
            try:
                info = decode_patch_info(raw)
            except AdminError:
                info = NodeDescriptor.PatchInfo(sResult=raw if raw.isprintable() else "")
            if not info.sResult.strip():
                info.sResult = f"getPatchPercent {node} error, iRet:{code}"
            return code, info
        return 0, decode_patch_info(raw)

    async def patch(self, item: AdminReg.TaskItemReq, on_percent: Callable[[int], None]) -> Outcome:
        """A task's patch step: push ``patchPro``, then :meth:`wait_installed`; the outcome is
        written to ``t_server_patchs``."""
        params = item.parameters
        patch_id = params.get("patch_id", "")
        req = NodeDescriptor.PatchRequest(
            appname=item.application,
            servername=item.serverName,
            nodename=item.nodeName,
            groupname=params.get("group_name", ""),
            version=patch_id,
            user=item.userName,
            md5=params.get("md5", ""),
            filepath=params.get("filepath", ""),
        )
        pushed = await self.batch_patch(req)
        if not pushed.ok:
            return Outcome(
                pushed.code,
                f"tarsAdminRegistry batchPatch error, ret:{pushed.code}, info:{pushed.result}",
            )
        outcome = await self.wait_installed(req, on_percent)
        await self._publish_log(patch_id, item.userName, outcome.ok)
        return outcome

    async def install(
        self, req: NodeDescriptor.PatchRequest, on_percent: Callable[[int], None]
    ) -> Outcome:
        """``batchPatch`` then :meth:`wait_installed`: a package installed, or why not."""
        pushed = await self.batch_patch(req)
        if not pushed.ok:
            return pushed
        return await self.wait_installed(req, on_percent)

    async def wait_installed(
        self, req: NodeDescriptor.PatchRequest, on_percent: Callable[[int], None]
    ) -> Outcome:
        """Poll ``getPatchPercent`` every ``patch_poll_interval`` s until the node reports
        success or failure of the install ``req`` started, for at most ``patch_wait_timeout``
        s. A node that goes away meanwhile (its push connection closed: killed, crashed,
        rebooted) ends the wait at the next poll, with what that means for the instance."""
        app, server, node = req.appname, req.servername, req.nodename
        where = server_id(app, server, node)
        reached = 0

        def progressed(percent: int) -> None:
            nonlocal reached
            reached = max(reached, percent)
            on_percent(reached)

        judged, code, info = await wait_patch(
            lambda: self.patch_percent(app, server, node),
            timeout=self.settings.patch_wait_timeout,
            interval=self.settings.patch_poll_interval,
            on_percent=progressed,
        )
        if judged.succeeded:
            return Outcome(0, judged.reason or f"'{where}' patched")
        if code in (ErrCode.EM_TARS_NODE_NOT_REGISTRY_ERR, ErrCode.EM_TARS_CALL_NODE_TIMEOUT_ERR):
            gone = (
                "is gone (its connection to the admin registry closed)"
                if code == ErrCode.EM_TARS_NODE_NOT_REGISTRY_ERR
                else f"stopped answering ({info.sResult})"
            )
            return Outcome(
                code,
                f"node {node} {gone} while installing {app}.{server}, at {reached}%; a node "
                "switches a package in only once it is complete, so when it is back it runs "
                "the version it ran before (or this one, whole); publish again to it then",
            )
        if judged.failed:
            return Outcome(
                code or ErrCode.EM_TARS_UNKNOWN_ERR,
                judged.reason or f"patching '{where}' failed",
            )
        return Outcome(
            ErrCode.EM_TARS_CALL_NODE_TIMEOUT_ERR,
            f"patching '{where}' did not finish within "
            f"{self.settings.patch_wait_timeout:g} s (at {info.iPercent}%)",
        )

    async def _publish_log(self, patch_id: str, user: str, succ: bool) -> None:
        if not patch_id:
            return
        key = parse_patch_id(patch_id)
        if key is None:
            return
        try:
            await self.store.patches.record_publish(key, user)
        except Exception as e:  # the publish itself worked: a missing log line is no failure
            log.warning("could not record the publish of patch %s: %s", patch_id, e)

    # ------------------------------------------------------------------ node tooling
    async def ping(self, node: str) -> Outcome:
        return await self._node(node, "ping")

    async def shutdown(self, node: str) -> Outcome:
        return await self._node(node, "shutdown")


def _state_name(state: NodeDescriptor.ServerState | int) -> str:
    """``etos(ServerState)``: ``Inactive``, ``Active``...; unknown numbers as digits."""
    names = ("Inactive", "Activating", "Active", "Deactivating", "Destroying", "Destroyed")
    n = int(state)
    return names[n] if 0 <= n < len(names) else str(n)


def _time_text(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


async def _md5_of(location: str) -> str:
    """md5 of a local package (path or ``file:`` URL); "" when it is not a readable file
    here (the node then checks what it can)."""
    try:
        return await asyncio.to_thread(md5_of, local_path(location))
    except (OSError, PackageError) as e:
        log.info("no md5 for package %s: %s", location, e)
        return ""
