"""Stand-ins for the release commands' tests: a package store (``tars.tarspatch.PatchObj``)
and an admin registry with the package functions and a task engine, both in memory, served
over real sockets (``tarsus.testing.ServerThread``) by ``tests/cli/test_release.py``.

The admin stand-in extends ``adminreg_standin.StandInAdmin``: ``addTaskReq`` keeps the task,
and every ``getTaskRsp`` moves each unfinished item one step (prepare, running at 50 %, then
done, or failed with a reason for the nodes in ``fail_nodes``); a serial task moves one item
at a time and cancels the rest after a failure, as upstream's engine does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from adminreg_standin import StandInAdmin

from tarsus.protocol.gen import AdminReg, Patch, TarsusAdmin

PATCH_OBJ = "tars.tarspatch.PatchObj"

I_NOT_START, I_PREPARE, I_RUNNING, I_SUCCESS, I_FAILED, I_CANCEL = range(6)


class StandInPatch(Patch.PatchServant):  # type: ignore[misc,name-defined]
    """``Patch.upload`` as upstream's tarspatch answers it: chunks appended by name, md5
    checked on the last one (-3), 1 for a file already stored with that name and md5."""

    def __init__(self) -> None:
        self.partial: dict[tuple[str, str, str], bytearray] = {}
        self.stored: dict[tuple[str, str, str], bytes] = {}
        self.chunks: list[tuple[str, bool, bool, int]] = []

    async def upload(self, app: str, serverName: str, content: Any) -> int:
        key = (app, serverName, content.name)
        self.chunks.append(
            (content.name, content.firstChunk, content.lastChunk, len(content.content))
        )
        if key in self.stored and hashlib.md5(self.stored[key]).hexdigest() == content.md5:
            return 1
        if content.firstChunk:
            self.partial[key] = bytearray()
        self.partial.setdefault(key, bytearray()).extend(content.content)
        if content.lastChunk:
            data = bytes(self.partial.pop(key))
            if hashlib.md5(data).hexdigest() != content.md5:
                return -3
            self.stored[key] = data
        return 0


@dataclass
class StoredRow:
    id: int
    app: str
    server: str
    tgz: str
    md5: str
    comment: str
    user: str
    default: bool = False
    deployed_on: list[str] = field(default_factory=list)


@dataclass
class RunningTask:
    req: Any
    created: str
    items: list[Any]


class ReleaseAdmin(StandInAdmin):
    """The stand-in admin registry with the package store's rows and a task engine."""

    _tars_ops_ = {
        **StandInAdmin._tars_ops_,
        **{
            name: TarsusAdmin.AdminExtServant._tars_ops_[name]
            for name in (
                "addPatchPackage",
                "listPatchPackages",
                "deletePatchPackage",
                "setDefaultPatchPackage",
            )
        },
    }

    def __init__(self, patch: StandInPatch) -> None:
        super().__init__()
        self.patch = patch
        self.packages: dict[int, StoredRow] = {}
        self.next_id = 1
        self.tasks: dict[str, RunningTask] = {}
        self.task_order: list[str] = []
        #: node -> the reason its patch item fails with
        self.fail_nodes: dict[str, str] = {}
        self.clock = 0

    # -- package store
    async def addPatchPackage(
        self, application: str, serverName: str, tgz: str, md5: str, comment: str, user: str
    ) -> tuple[int, int, str]:
        self._record("addPatchPackage", application, serverName, tgz, md5, comment, user)
        data = self.patch.stored.get((application, serverName, tgz))
        if data is None or hashlib.md5(data).hexdigest() != md5:
            return 1007, 0, f"the package store has no {tgz} with md5 {md5}"
        row = StoredRow(self.next_id, application, serverName, tgz, md5, comment, user)
        self.packages[row.id] = row
        self.next_id += 1
        return 0, row.id, ""

    async def listPatchPackages(
        self, application: str, serverName: str
    ) -> tuple[int, list[Any], str]:
        self._record("listPatchPackages", application, serverName)
        rows = [
            TarsusAdmin.StoredPackage(
                id=r.id,
                server=f"{r.app}.{r.server}",
                tgz=r.tgz,
                md5=r.md5,
                comment=r.comment,
                uploadUser=r.user,
                uploadTime="2026-05-09 10:00:00",
                isDefault=r.default,
                size=len(self.patch.stored.get((r.app, r.server, r.tgz), b"")),
                deployedOn=r.deployed_on,
            )
            for r in sorted(self.packages.values(), key=lambda r: -r.id)
            if (r.app, r.server) == (application, serverName)
        ]
        return 0, rows, ""

    async def deletePatchPackage(self, id: int, user: str) -> tuple[int, str]:
        self._record("deletePatchPackage", id, user)
        row = self.packages.get(id)
        if row is None:
            return -1, f"no package {id}"
        if row.deployed_on:
            return 1004, f"package {id} is deployed on {', '.join(row.deployed_on)}"
        del self.packages[id]
        return 0, ""

    async def setDefaultPatchPackage(self, id: int, user: str) -> tuple[int, str]:
        self._record("setDefaultPatchPackage", id, user)
        row = self.packages.get(id)
        if row is None:
            return -1, f"no package {id}"
        for other in self.packages.values():
            other.default = other.id == id
        return 0, ""

    # -- tasks
    async def addTaskReq(self, taskReq: Any) -> int:
        self._record("addTaskReq", taskReq)
        self.clock += 1
        items = [
            AdminReg.TaskItemRsp(req=item, status=I_NOT_START, percent=0)
            for item in taskReq.taskItemReq
        ]
        self.tasks[taskReq.taskNo] = RunningTask(
            taskReq, f"2026-05-09 10:00:{self.clock:02d}", items
        )
        self.task_order.append(taskReq.taskNo)
        return 0

    def _step(self, task: RunningTask) -> None:
        for item in task.items:
            if item.status in (I_SUCCESS, I_FAILED, I_CANCEL):
                continue
            if item.status in (I_NOT_START, I_PREPARE):
                item.status, item.percent = I_RUNNING, 50
            else:
                reason = self.fail_nodes.get(item.req.nodeName)
                if reason is None:
                    item.status, item.percent, item.executeLog = I_SUCCESS, 100, "patch succ"
                    deployed = self._find(
                        item.req.application, item.req.serverName, item.req.nodeName
                    )
                    if deployed is not None:
                        deployed.patch_version = item.req.parameters.get("patch_id", "")
                        deployed.present = deployed.setting = "active"
                        deployed.pid = 4242
                else:
                    item.status, item.percent, item.executeLog = I_FAILED, 100, reason
                    if task.req.serial:
                        for rest in task.items:
                            if rest.status == I_NOT_START:
                                rest.status = I_CANCEL
            if task.req.serial:
                return

    async def getTaskRsp(self, taskNo: str) -> tuple[int, Any]:
        self._record("getTaskRsp", taskNo)
        task = self.tasks.get(taskNo)
        if task is None:
            return -1, AdminReg.TaskRsp()
        self._step(task)
        return 0, self._rsp(task)

    def _rsp(self, task: RunningTask) -> Any:
        statuses = {i.status for i in task.items}
        status = 3 if statuses == {I_SUCCESS} else 4 if statuses <= {I_FAILED, I_CANCEL} else 2
        return AdminReg.TaskRsp(
            taskItemRsp=[i for i in task.items],
            taskNo=task.req.taskNo,
            serial=task.req.serial,
            userName=task.req.userName,
            status=status,
            createTime=task.created,
        )

    async def getTaskHistory(
        self, application: str, serverName: str, command: str
    ) -> tuple[int, list[Any]]:
        self._record("getTaskHistory", application, serverName, command)
        found = [
            self._rsp(self.tasks[no])
            for no in reversed(self.task_order)
            if any(
                i.req.application == application
                and i.req.serverName == serverName
                and i.req.command == command
                for i in self.tasks[no].items
            )
        ]
        return 0, found
