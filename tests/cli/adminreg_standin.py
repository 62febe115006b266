"""A stand-in ``tars.tarsAdminRegistry.AdminRegObj`` for the operator CLI's tests.

It is a stand-in until the lead's end-to-end test drives the real admin registry
(``tarsus.framework.admin``) with a real node: it keeps servers, adapters and patches in
memory and answers the AdminReg methods the CLI calls, with upstream's return codes and
result texts. The CLI reaches it as it would reach the real one: over a real socket, served
by ``tarsus.testing.ServerThread`` (``tests/cli/conftest.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tarsus.protocol.gen import AdminReg, NodeDescriptor, TarsusAdmin

ADMIN_OBJ = "tars.tarsAdminRegistry.AdminRegObj"
NOT_REGISTERED = 1001  # EM_TARS_NODE_NOT_REGISTRY_ERR
NO_DESCRIPTOR = 1003  # EM_TARS_LOAD_SERVICE_DESC_ERR
BAD_PARAMETER = 1007  # EM_TARS_PARAMETER_ERR


@dataclass
class Deployed:
    conf: Any
    adapters: list[Any] = field(default_factory=list)
    setting: str = "inactive"
    present: str = "inactive"
    pid: int = 0
    patch_version: str = ""
    patch_user: str = ""
    run_type: str = ""
    image: str = ""


class StandInAdmin(AdminReg.AdminRegServant):  # type: ignore[misc,name-defined]
    """The AdminReg methods the operator commands use, over in-memory state, and of our
    extension AdminExt only ``deployServer`` and ``setServerRunType`` (its template functions
    stay unknown here, as on an upstream admin registry)."""

    _tars_ops_ = {
        **AdminReg.AdminRegServant._tars_ops_,
        "deployServer": TarsusAdmin.AdminExtServant._tars_ops_["deployServer"],
        "setServerRunType": TarsusAdmin.AdminExtServant._tars_ops_["setServerRunType"],
    }

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.servers: dict[tuple[str, str, str], Deployed] = {}
        #: node name -> last heartbeat ("" = registered but not connected here)
        self.nodes: dict[str, str] = {"10.0.0.7": "2026-05-09 10:00:00", "10.0.0.8": ""}
        #: what getPatchPercent answers, poll after poll: (ret, percent, patching, succ, text)
        self.patch_steps: list[tuple[int, int, bool, bool, str]] = [
            (0, 40, True, False, ""),
            (0, 100, False, True, "patch succ"),
        ]
        self._steps: list[tuple[int, int, bool, bool, str]] = []
        self.patch_requests: list[Any] = []
        self.patched_archives: list[tuple[Path, bytes]] = []
        #: what deployServer refuses with, when set: (code, reason)
        self.refuse_deploy: tuple[int, str] | None = None
        self.templates = {
            "tars.tarspython.default": "<tars>\n  <application>\n  </application>\n</tars>\n"
        }

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]

    def _check_node(self, node: str) -> tuple[int, str] | None:
        if node not in self.nodes:
            return (
                NOT_REGISTERED,
                f"node '{node}' not registered or heartbeat timeout, please check for it",
            )
        return None

    def _find(self, app: str, server: str, node: str) -> Deployed | None:
        return self.servers.get((app, server, node))

    # -- configuration
    async def deployServer(
        self, conf: Any, adapters: list[Any], replace: bool, user: str
    ) -> tuple[int, str]:
        self._record("deployServer", conf, adapters, replace, user)
        if self.refuse_deploy is not None:
            return self.refuse_deploy
        key = (conf.application, conf.serverName, conf.nodeName)
        where = f"{conf.application}.{conf.serverName} on node {conf.nodeName!r}"
        if key in self.servers and not replace:
            return BAD_PARAMETER, f"deploy {where}: already deployed; undeploy it or replace"
        self.servers[key] = Deployed(conf, list(adapters), setting=conf.settingState)
        return 0, f"{where} deployed"

    async def setServerRunType(
        self, application: str, serverName: str, nodeName: str, runType: str, image: str, user: str
    ) -> tuple[int, str]:
        self._record("setServerRunType", application, serverName, nodeName, runType, image, user)
        found = self._find(application, serverName, nodeName)
        if found is None:
            return BAD_PARAMETER, f"{application}.{serverName} is not deployed on {nodeName!r}"
        found.run_type, found.image = runType, image
        return 0, ""

    async def undeploy(
        self, application: str, serverName: str, nodeName: str, user: str
    ) -> tuple[int, str]:
        self._record("undeploy", application, serverName, nodeName, user)
        self.servers.pop((application, serverName, nodeName), None)
        return 0, ""

    # -- publishing
    async def batchPatch(self, req: Any) -> tuple[int, str]:
        self._record("batchPatch", req)
        self.patch_requests.append(req)
        path = Path(req.filepath)
        if not path.is_file():
            return BAD_PARAMETER, f"no package file at {req.filepath}"
        data = path.read_bytes()
        if hashlib.md5(data).hexdigest() != req.md5:
            return BAD_PARAMETER, f"md5 mismatch for {req.filepath}"
        self.patched_archives.append((path, data))
        self._steps = list(self.patch_steps)
        return 0, "patch request sent to node"

    async def getPatchPercent(self, application: str, serverName: str, nodeName: str) -> Any:
        self._record("getPatchPercent", application, serverName, nodeName)
        steps = self._steps or [(0, 0, False, False, "")]
        ret, percent, patching, succ, text = steps.pop(0) if len(steps) > 1 else steps[0]
        info = NodeDescriptor.PatchInfo(
            bPatching=patching,
            iPercent=percent,
            iModifyTime=0,
            sVersion="7",
            sResult=text,
            bSucc=succ,
        )
        deployed = self._find(application, serverName, nodeName)
        if succ and deployed is not None:
            deployed.patch_version = "7"
        return ret, info

    # -- lifecycle
    async def _lifecycle(self, name: str, app: str, server: str, node: str) -> tuple[int, str]:
        self._record(name, app, server, node)
        problem = self._check_node(node)
        if problem:
            return problem
        deployed = self._find(app, server, node)
        if deployed is None:
            return NO_DESCRIPTOR, f" '{app}.{server}_{node}' no config"
        if name == "stopServer":
            deployed.setting = deployed.present = "inactive"
            deployed.pid = 0
        else:
            deployed.setting = deployed.present = "active"
            deployed.pid = 4242
        return 0, ""

    async def startServer(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str]:
        return await self._lifecycle("startServer", application, serverName, nodeName)

    async def stopServer(self, application: str, serverName: str, nodeName: str) -> tuple[int, str]:
        return await self._lifecycle("stopServer", application, serverName, nodeName)

    async def restartServer(
        self, application: str, serverName: str, nodeName: str
    ) -> tuple[int, str]:
        return await self._lifecycle("restartServer", application, serverName, nodeName)

    async def notifyServer(
        self, application: str, serverName: str, nodeName: str, command: str
    ) -> tuple[int, str]:
        ret, result = await self._lifecycle("notifyServer", application, serverName, nodeName)
        return (ret, result) if ret else (0, f"[notify:{command}] done")

    async def getServerState(self, application: str, serverName: str, nodeName: str) -> Any:
        self._record("getServerState", application, serverName, nodeName)
        deployed = self._find(application, serverName, nodeName)
        empty = AdminReg.ServerStateDesc()
        if deployed is None:
            return NO_DESCRIPTOR, empty, f" '{application}.{serverName}_{nodeName}' no config"
        problem = self._check_node(nodeName)
        if problem:
            return problem[0], empty, problem[1]
        state = AdminReg.ServerStateDesc(
            settingStateInReg=deployed.setting,
            presentStateInReg=deployed.present,
            presentStateInNode=deployed.present,
            processId=deployed.pid,
            patchVersion=deployed.patch_version,
            patchTime="2026-05-09 10:01:02" if deployed.patch_version else "",
            patchUser="alice" if deployed.patch_version else "",
        )
        return 0, state, ""

    # -- inventory
    async def getAllServerIds(self) -> tuple[list[list[str]], str]:
        self._record("getAllServerIds")
        rows = [
            [f"{a}.{s}_{n}", d.setting, d.present, d.conf.serverType]
            for (a, s, n), d in self.servers.items()
        ]
        return rows, ""

    async def getAllNodeNames(self) -> tuple[list[str], str]:
        self._record("getAllNodeNames")
        return list(self.nodes), ""

    async def getNodeList(self, nodeNames: list[str]) -> tuple[int, dict[str, str]]:
        self._record("getNodeList", nodeNames)
        return 0, {n: self.nodes.get(n, "") for n in nodeNames}

    async def pingNode(self, name: str) -> tuple[bool, str]:
        self._record("pingNode", name)
        if self.nodes.get(name):
            return True, "ping succ"
        return False, f"node '{name}' is not connected to this admin registry"

    async def getProfileTemplate(self, profileName: str) -> tuple[int, str, str]:
        self._record("getProfileTemplate", profileName)
        if profileName in self.templates:
            return 0, self.templates[profileName], f"({profileName}:OK)"
        return 0, "", f"({profileName}:template not found)"
