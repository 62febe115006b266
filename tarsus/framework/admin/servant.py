"""``AdminRegImp``: the ``tars.tarsAdminRegistry.AdminRegObj`` servant (upstream
``AdminRegistryImp``), every method of ``AdminReg.tars``, and beside them our extension
``tarsus.AdminExt`` (``TarsusAdmin.tars``: templates listed, read as stored, written, deleted).
The extension's function names are all new, so upstream clients of the object see no change.

Each method is a thin translation to :class:`~tarsus.framework.admin.lifecycle.Lifecycle`
(node commands), :class:`~tarsus.framework.admin.inventory.Inventory` (the database) or the
:class:`~tarsus.framework.admin.tasks.TaskEngine`. Expected failures come back as a return code
with the reason in the method's text out-parameter (``result``, ``resultDesc``, ``log``) or, for
methods that have none, in the log; nothing expected ends as a bare ``-99``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from sqlalchemy.exc import DBAPIError

from tarsus.codec.constants import TARS_PING
from tarsus.codec.operation import Operation
from tarsus.framework.admin.errors import AdminError, ErrCode
from tarsus.framework.admin.forward import serve_relay
from tarsus.framework.admin.inventory import adapter_spec_from_conf, server_spec_from_conf
from tarsus.framework.admin.replies import decode_log_files
from tarsus.protocol.gen import AdminReg, NodeDescriptor, TarsusAdmin
from tarsus.rpc import current
from tarsus.rpc.errors import TarsError
from tarsus.rpc.proxy import CallOptions
from tarsus.rpc.servant import served_together
from tarsus.store.errors import InvalidInput, StoreError
from tarsus.store.patches import parse_patch_id

if TYPE_CHECKING:
    from tarsus.framework.admin.channel import NodeChannels
    from tarsus.framework.admin.inventory import Inventory
    from tarsus.framework.admin.lifecycle import Lifecycle
    from tarsus.framework.admin.packages import Packages
    from tarsus.framework.admin.settings import AdminSettings
    from tarsus.framework.admin.tasks import TaskEngine
    from tarsus.rpc.communicator import Communicator

__all__ = ["AdminRegImp"]

log = logging.getLogger("tarsus.framework.admin")

#: Where a failure's reason goes, in order of preference.
_TEXT_OUTS = ("result", "resultDesc", "log")
_NO_CONTAINERS = "containers (docker run type) are not supported by tarsus yet"
_NO_USER_SYSTEM = "tarsus has no user system (db_user_system): permission checks are refused"

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _failure(op: Operation, code: int, message: str) -> Any:
    """``op``'s result with zero values, the return code set and ``message`` in its text
    out-parameter, if it has one."""
    n = len(op.result_labels)
    shaped = op.default_result()
    values = [shaped] if n == 1 else list(shaped)
    labels = op.result_labels
    if labels and labels[0] == "return value" and op.return_type is not None:
        if isinstance(values[0], bool):
            values[0] = False
        elif isinstance(values[0], int):
            values[0] = code
    for name in _TEXT_OUTS:
        if name in labels and isinstance(values[labels.index(name)], str):
            values[labels.index(name)] = message
            break
    return values[0] if n == 1 else tuple(values)


def _guarded(fn: F) -> F:
    """Turn failures into return codes: :class:`AdminError` as it says, a database failure or
    a bug as -1 with what happened."""
    name = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: AdminRegImp, *args: Any) -> Any:
        op: Operation = self._tars_ops_[name]
        try:
            return await fn(self, *args)
        except AdminError as e:
            log.warning("%s: %s (%d)", name, e.message, e.code)
            return _failure(op, e.code, e.message)
        except StoreError as e:
            log.warning("%s: %s", name, e)
            return _failure(op, ErrCode.EM_TARS_UNKNOWN_ERR, f"{name}: database: {e}")
        except Exception as e:
            log.exception("%s failed", name)
            return _failure(
                op, ErrCode.EM_TARS_UNKNOWN_ERR, f"{name} failed: {type(e).__name__}: {e}"
            )

    return cast(F, wrapper)


def _caller_ip() -> str:
    peer = current().peer
    if not peer:
        return ""
    host = peer[0]
    return host[7:] if host.startswith("::ffff:") and "." in host else host


class AdminRegImp(AdminReg.AdminRegServant):
    """The admin registry servant. Build it through
    :class:`~tarsus.framework.admin.server.AdminRegistry`."""

    _tars_ops_: ClassVar[dict[str, Operation]] = served_together(
        AdminReg.AdminRegServant, TarsusAdmin.AdminExtServant
    )

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        inventory: Inventory,
        tasks: TaskEngine,
        channels: NodeChannels,
        settings: AdminSettings,
        communicator: Communicator,
        packages: Packages,
    ) -> None:
        self.lifecycle = lifecycle
        self.inventory = inventory
        self.packages = packages
        self.tasks = tasks
        self.channels = channels
        self.settings = settings
        self.communicator = communicator

    # ------------------------------------------------------------------ node channel
    @_guarded
    async def reportNode(self, rn: NodeDescriptor.ReportNode) -> int:
        if not rn.nodeName:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, "reportNode: nodeName is empty")
        self.channels.attach(rn.nodeName, current())
        return 0

    @_guarded
    async def deleteNode(self, rn: NodeDescriptor.ReportNode) -> int:
        self.channels.detach(rn.nodeName)
        return 0

    @_guarded
    async def reportResult(self, requestId: int, funcName: str, ret: int, result: str) -> int:
        self.channels.report_result(requestId, funcName, ret, result)
        return 0

    # ------------------------------------------------------------------ tasks
    @_guarded
    async def addTaskReq(self, taskReq: AdminReg.TaskReq) -> int:
        await self.tasks.add(taskReq)
        return 0

    @_guarded
    async def getTaskRsp(self, taskNo: str) -> tuple[int, AdminReg.TaskRsp]:
        rsp = await self.tasks.get_rsp(taskNo)
        if rsp is None:
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, f"no task {taskNo!r}")
        return 0, rsp

    @_guarded
    async def getTaskHistory(
        self, application: str, serverName: str, command: str
    ) -> tuple[int, list[AdminReg.TaskRsp]]:
        return 0, await self.tasks.history(application, serverName, command)

    @_guarded
    async def setTaskItemInfo(self, itemNo: str, info: dict[str, str]) -> int:
        await self.tasks.set_item_info(itemNo, info)
        return 0

    # ------------------------------------------------------------------ inventory
    @_guarded
    async def getAllApplicationNames(self) -> tuple[list[str], str]:
        return await self.inventory.application_names(), ""

    @_guarded
    async def getAllNodeNames(self) -> tuple[list[str], str]:
        return await self.inventory.active_node_names(), ""

    @_guarded
    async def pingNode(self, name: str) -> tuple[bool, str]:
        outcome = await self.lifecycle.ping(name)
        return outcome.ok, outcome.result

    @_guarded
    async def getNodeVesion(self, name: str) -> tuple[int, str, str]:
        return 0, await self.inventory.node_version(name), ""

    @_guarded
    async def shutdownNode(self, name: str) -> tuple[int, str]:
        outcome = await self.lifecycle.shutdown(name)
        return outcome.code, outcome.result

    @_guarded
    async def getAllServerIds(self) -> tuple[list[list[str]], str]:
        return await self.inventory.server_ids(), ""

    @_guarded
    async def getServerState(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, AdminReg.ServerStateDesc, str]:
        return await self.lifecycle.state(application, serverName, nodeName)

    @_guarded
    async def getGroupId(self, ip: str) -> tuple[int, int, str]:
        gid = await self.inventory.group_id(ip)
        if gid < 0:
            return -1, -1, f"no IDC group rule (t_server_group_rule) takes {ip!r}"
        return gid, gid, ""

    # ------------------------------------------------------------------ lifecycle
    @_guarded
    async def startServer(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str]:
        outcome = await self.lifecycle.start(application, serverName, nodeName)
        return outcome.code, outcome.result

    @_guarded
    async def stopServer(self, application: str, serverName: str, nodeName: str) -> tuple[int, str]:
        outcome = await self.lifecycle.stop(application, serverName, nodeName)
        return outcome.code, outcome.result

    @_guarded
    async def restartServer(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str]:
        outcome = await self.lifecycle.restart(application, serverName, nodeName)
        return outcome.code, outcome.result

    @_guarded
    async def destroyServer(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str]:
        outcome = await self.lifecycle.destroy(application, serverName, nodeName)
        return outcome.code, outcome.result

    @_guarded
    async def notifyServer(
        self, application: str, serverName: str, nodeName: str, command: str
    ) -> tuple[int, str]:
        outcome = await self.lifecycle.notify(application, serverName, nodeName, command)
        return outcome.code, outcome.result

    @_guarded
    async def loadServer(self, application: str, serverName: str, nodeName: str) -> tuple[int, str]:
        outcome = await self.lifecycle.load(application, serverName, nodeName)
        return outcome.code, outcome.result

    @_guarded
    async def undeploy(
        self, application: str, serverName: str, nodeName: str, user: str
    ) -> tuple[int, str]:
        outcome = await self.lifecycle.undeploy(application, serverName, nodeName, user)
        return outcome.code, outcome.result

    @_guarded
    async def uninstallServer(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str]:
        outcome = await self.lifecycle.uninstall(application, serverName, nodeName)
        return outcome.code, outcome.result

    @_guarded
    async def updateServerFlowState(
        self, application: str, serverName: str, nodeList: list[str], bActive: bool
    ) -> int:
        if not nodeList:
            raise AdminError(
                ErrCode.EM_TARS_PARAMETER_ERR, "updateServerFlowState: the node list is empty"
            )
        await self.lifecycle.set_flow(application, serverName, list(nodeList), bool(bActive))
        return 0

    # ------------------------------------------------------------------ publishing
    @_guarded
    async def batchPatch(self, req: NodeDescriptor.PatchRequest) -> tuple[int, str]:
        outcome = await self.lifecycle.batch_patch_rpc(req)
        return outcome.code, outcome.result

    @_guarded
    async def updatePatchLog(
        self,
        application: str,
        serverName: str,
        nodeName: str,
        patchId: str,
        user: str,
        patchType: str,
        succ: bool,
    ) -> int:
        key = parse_patch_id(patchId)
        if key is None or not await self.lifecycle.store.patches.record_publish(key, user):
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, f"no package with id {patchId!r}")
        return 0

    @_guarded
    async def getPatchPercent(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, NodeDescriptor.PatchInfo]:
        return await self.lifecycle.patch_percent(application, serverName, nodeName)

    @_guarded
    async def deletePatchFile(self, application: str, serverName: str, patchFile: str) -> int:
        return await self.packages.delete_file(application, serverName, patchFile)

    @_guarded
    async def getPatchPackage(
        self, application: str, serverName: str, packageType: int, defaultVersion: int
    ) -> tuple[int, AdminReg.PatchPackage]:
        return 0, await self.packages.default_package(
            application, serverName, int(packageType), int(defaultVersion)
        )

    # ------------------------------------------------------------------ templates and config
    @_guarded
    async def getProfileTemplate(self, profileName: str) -> tuple[int, str, str]:
        text, desc = await self.inventory.profile_template(profileName)
        return 0, text, desc

    # AdminExt (TarsusAdmin.tars)
    @_guarded
    async def listProfileTemplates(self) -> tuple[int, list[TarsusAdmin.ProfileTemplate], str]:
        return 0, await self.inventory.profile_templates(), ""

    @_guarded
    async def getRawProfileTemplate(
        self, name: str
    ) -> tuple[int, TarsusAdmin.ProfileTemplate, str]:
        return 0, await self.inventory.raw_profile_template(name), ""

    @_guarded
    async def setProfileTemplate(
        self, tpl: TarsusAdmin.ProfileTemplate, user: str
    ) -> tuple[int, str]:
        await self.inventory.set_profile_template(tpl, user)
        log.info("template %s set by %r (parent %r)", tpl.name, user, tpl.parentName)
        return 0, ""

    @_guarded
    async def forceProfileTemplate(self, tpl: Any, user: str) -> tuple[int, str]:
        await self.inventory.set_profile_template(tpl, user, force=True)
        log.warning("template %s forced by %r (parent %r)", tpl.name, user, tpl.parentName)
        return 0, ""

    @_guarded
    async def deleteProfileTemplate(self, name: str) -> tuple[int, str]:
        await self.inventory.delete_profile_template(name)
        log.info("template %s deleted", name)
        return 0, ""

    @_guarded
    async def deployServer(
        self, conf: Any, adapters: list[Any], replace: bool, user: str
    ) -> tuple[int, str]:
        """AdminExt ``deployServer``: the instance and its servants in one transaction
        (``Inventory.deploy``), the reason of a refusal in ``result``."""
        where = f"deploy {conf.application}.{conf.serverName} on node {conf.nodeName!r}"
        state = (conf.settingState or "active").lower()
        try:
            spec = server_spec_from_conf(conf)
            servants = [adapter_spec_from_conf(a) for a in adapters]
        except InvalidInput as e:
            raise AdminError(ErrCode.EM_TARS_PARAMETER_ERR, f"{where}: {e}") from None
        if state not in ("active", "inactive"):
            raise AdminError(
                ErrCode.EM_TARS_PARAMETER_ERR,
                f"{where}: settingState {conf.settingState!r} is neither active nor inactive",
            )
        try:
            row = await self.inventory.deploy(
                spec, servants, replace=bool(replace), user=user, setting_state=state
            )
        except DBAPIError as e:  # a full disk, a lost connection: the driver's own words
            raise AdminError(ErrCode.EM_TARS_UNKNOWN_ERR, f"{where}: database: {e.orig}") from None
        return 0, f"'{row.server_id}' deployed with {len(servants)} servant(s)"

    @_guarded
    async def setServerRunType(
        self,
        application: str,
        serverName: str,
        nodeName: str,
        runType: str,
        image: str,
        user: str,
    ) -> tuple[int, str]:
        await self.inventory.set_run_type(application, serverName, nodeName, runType, image, user)
        how = f"in a container from {image.strip()}" if runType.strip() else "as a process"
        return 0, f"{application}.{serverName} on {nodeName} runs {how} from its next start"

    # The package store (Packages: t_server_patchs and tars.tarspatch.PatchObj).
    @_guarded
    async def addPatchPackage(
        self, application: str, serverName: str, tgz: str, md5: str, comment: str, user: str
    ) -> tuple[int, int, str]:
        patch_id = await self.packages.add(application, serverName, tgz, md5, comment, user)
        return 0, patch_id, f"package {patch_id} of {application}.{serverName} added"

    @_guarded
    async def listPatchPackages(
        self, application: str, serverName: str
    ) -> tuple[int, list[TarsusAdmin.StoredPackage], str]:
        return 0, await self.packages.list(application, serverName), ""

    @_guarded
    async def deletePatchPackage(self, id: int, user: str) -> tuple[int, str]:
        return 0, await self.packages.delete(int(id), user)

    @_guarded
    async def setDefaultPatchPackage(self, id: int, user: str) -> tuple[int, str]:
        return 0, await self.packages.set_default(int(id), user)

    @_guarded
    async def checkServerAnswers(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str]:
        """AdminExt ``checkServerAnswers``: Active on its node and answering on every servant,
        asked once (the lossless task's check, ``Lifecycle.answers``); a canary polls it."""
        outcome = await self.lifecycle.answers(application, serverName, nodeName, 0.0)
        return outcome.code, outcome.result

    @_guarded
    async def relayNodePush(
        self, nodeName: str, funcName: str, args: bytes
    ) -> tuple[int, int, str]:
        """AdminExt ``relayNodePush``: another admin registry has no connection to the node;
        push down ours (never relayed further: 1012 when we have none either)."""
        return await serve_relay(self.channels, nodeName, funcName, args)

    @_guarded
    async def getServerProfileTemplate(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str, str]:
        return 0, await self.inventory.server_profile(application, serverName, nodeName), ""

    @_guarded
    async def insertServerConf(self, conf: AdminReg.ServerConf, replace: bool) -> int:
        await self.inventory.insert_server_conf(conf, bool(replace))
        return 0

    @_guarded
    async def insertAdapterConf(
        self,
        sApplication: str,
        serverName: str,
        nodeName: str,
        conf: AdminReg.AdapterConf,
        replace: bool,
    ) -> int:
        await self.inventory.insert_adapter_conf(
            sApplication, serverName, nodeName, conf, bool(replace)
        )
        return 0

    @_guarded
    async def insertConfigFile(
        self,
        sFullServerName: str,
        fileName: str,
        content: str,
        nodeName: str,
        level: int,
        replace: bool,
    ) -> int:
        await self.inventory.insert_config_file(
            sFullServerName, fileName, content, nodeName, int(level), bool(replace)
        )
        return 0

    @_guarded
    async def getConfigFileId(
        self, sFullServerName: str, fileName: str, nodeName: str, level: int
    ) -> tuple[int, int]:
        return 0, await self.inventory.config_file_id(sFullServerName, fileName, nodeName, level)

    @_guarded
    async def insertHistoryConfigFile(
        self, configId: int, reason: str, content: str, replace: bool
    ) -> int:
        await self.inventory.insert_history_config_file(configId, reason, content)
        return 0

    @_guarded
    async def hasServer(self, application: str, serverName: str) -> tuple[int, bool]:
        return 0, await self.inventory.has_server(application, serverName)

    @_guarded
    async def getServerTree(self) -> tuple[int, list[AdminReg.ServerTree]]:
        return 0, await self.inventory.server_tree()

    @_guarded
    async def getServerNameList(
        self, fullServerName: list[AdminReg.ApplicationServerName]
    ) -> tuple[int, list[dict[str, str]]]:
        return 0, await self.inventory.server_name_list(list(fullServerName))

    @_guarded
    async def getClientIp(self) -> tuple[int, str]:
        return 0, _caller_ip()

    # ------------------------------------------------------------------ node tooling
    @_guarded
    async def getLogFileList(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, list[str]]:
        _require_node(nodeName, "getLogFileList")
        code, raw = await self.lifecycle.push(nodeName, "getLogFileList", application, serverName)
        if code != 0:
            log.warning(
                "getLogFileList %s.%s on %s: %d %s", application, serverName, nodeName, code, raw
            )
            return code, []
        return 0, decode_log_files(raw)

    @_guarded
    async def getLogData(
        self, application: str, serverName: str, nodeName: str, logFile: str, cmd: str
    ) -> tuple[int, str]:
        _require_node(nodeName, "getLogData")
        return await self.lifecycle.push(
            nodeName, "getLogData", application, serverName, logFile, cmd
        )

    @_guarded
    async def getNodeLoad(
        self, application: str, serverName: str, nodeName: str, pid: int
    ) -> tuple[int, str]:
        return await self.lifecycle.push(nodeName, "getNodeLoad", application, serverName, pid)

    @_guarded
    async def delCache(
        self, nodeName: str, sFullCacheName: str, sBackupPath: str, sKey: str
    ) -> tuple[int, str]:
        return await self.lifecycle.push(nodeName, "delCache", sFullCacheName, sBackupPath, sKey)

    # ------------------------------------------------------------------ framework health
    @_guarded
    async def getServers(self) -> tuple[int, list[AdminReg.FrameworkServer]]:
        return 0, await self.inventory.framework_servers()

    @_guarded
    async def checkServer(self, server: AdminReg.FrameworkServer) -> int:
        if not server.objName:
            return (await self.lifecycle.ping(server.nodeName)).code
        try:
            proxy = self.communicator.object_proxy(server.objName)
            await proxy.invoke_raw(
                TARS_PING, b"", CallOptions(timeout_ms=self.settings.check_server_timeout_ms)
            )
        except (TarsError, ValueError) as e:
            log.warning("checkServer %s: %s", server.objName, e)
            return int(ErrCode.EM_TARS_UNKNOWN_ERR)
        return 0

    @_guarded
    async def getVersion(self) -> tuple[int, str]:
        return 0, self.settings.framework_version

    @_guarded
    async def getNodeList(self, nodeNames: list[str]) -> tuple[int, dict[str, str]]:
        beats = self.channels.heartbeats()
        return 0, {name: beats.get(name, "") for name in nodeNames}

    # ------------------------------------------------------------------ not supported (yet)
    @_guarded
    async def forceDockerLogin(self, nodeName: str) -> tuple[int, list[str]]:
        return int(ErrCode.EM_TARS_UNKNOWN_ERR), [_NO_CONTAINERS]

    @_guarded
    async def checkDockerRegistry(
        self, registry: str, userName: str, password: str
    ) -> tuple[int, str]:
        return int(ErrCode.EM_TARS_UNKNOWN_ERR), _NO_CONTAINERS

    @_guarded
    async def dockerPull(self, baseImageId: str) -> int:
        log.warning("dockerPull %s: %s", baseImageId, _NO_CONTAINERS)
        return int(ErrCode.EM_TARS_UNKNOWN_ERR)

    @_guarded
    async def registerPlugin(self, conf: AdminReg.PluginConf) -> int:
        log.warning("registerPlugin %s: tarsus has no db_tars_web.t_plugin", conf.name)
        return int(ErrCode.EM_TARS_UNKNOWN_ERR)

    @_guarded
    async def hasDevAuth(self, application: str, serverName: str, uid: str) -> tuple[int, bool]:
        log.warning("hasDevAuth %s: %s", uid, _NO_USER_SYSTEM)
        return int(ErrCode.EM_TARS_UNKNOWN_ERR), False

    @_guarded
    async def hasOpeAuth(self, application: str, serverName: str, uid: str) -> tuple[int, bool]:
        log.warning("hasOpeAuth %s: %s", uid, _NO_USER_SYSTEM)
        return int(ErrCode.EM_TARS_UNKNOWN_ERR), False

    @_guarded
    async def hasAdminAuth(self, uid: str) -> tuple[int, bool]:
        log.warning("hasAdminAuth %s: %s", uid, _NO_USER_SYSTEM)
        return int(ErrCode.EM_TARS_UNKNOWN_ERR), False

    @_guarded
    async def checkTicket(self, ticket: str) -> tuple[int, str]:
        log.warning("checkTicket: %s", _NO_USER_SYSTEM)
        return int(ErrCode.EM_TARS_UNKNOWN_ERR), ""


def _require_node(node: str, func: str) -> None:
    if not node or node == "remote":
        raise AdminError(
            ErrCode.EM_TARS_PARAMETER_ERR,
            f"{func}: name the node; logs of the remote log server (tarslog) are not served "
            "through the admin registry in tarsus",
        )
