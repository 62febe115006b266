"""Tasks of the admin registry: what a start, stop, restart, undeploy or publish of several
instances becomes (upstream TarsWeb ``add_task`` → ``AdminReg.addTaskReq``; the engine:
tarsus/framework/admin/tasks.py), and how its progress reads.

The admin registry keeps each task and its items (``t_task``, ``t_task_item``) and runs them;
``getTaskRsp`` answers each item's status, percent, log and times, while it runs and after.
:func:`read_task` turns that into the one :class:`TaskOutcome` the CLI's live bars, the
console's progress page and fragment (``/tasks/{no}``, shown in place by the publish page) and
the API show alike. :func:`view_task` reads one for an actor who must be able to see every
server it touches; :func:`task` one of a given server. Status words are upstream's
``EMTaskItemStatus`` / ``EMTaskStatus`` in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tarsus.ops import adminreg
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Denied, Invalid, NotFound
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import AdminReg

__all__ = [
    "I_CANCEL",
    "I_FAILED",
    "I_NOT_START",
    "I_SUCCESS",
    "MAX_NODES",
    "ItemView",
    "Rollout",
    "TaskOutcome",
    "add_task",
    "check_task_no",
    "previous_versions",
    "read_task",
    "status_word",
    "task",
    "task_status_word",
    "view_task",
]

# EMTaskItemStatus
I_NOT_START, I_PREPARE, I_RUNNING, I_SUCCESS, I_FAILED, I_CANCEL, I_PAUSE_FLOW = range(7)
_UNFINISHED = (I_NOT_START, I_PREPARE, I_RUNNING, I_PAUSE_FLOW)
_WORDS = ("waiting", "preparing", "running", "done", "failed", "cancelled", "traffic off")
_TASK_WORDS = ("waiting", "preparing", "running", "done", "failed", "cancelled", "partly done")
#: nodes of one task at most (a fleet's server has fewer instances)
MAX_NODES = 10_000
#: a task number: what addTaskReq was given (uuid hex here, upstream TarsWeb's uuid elsewhere)
_TASK_NO_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.")


def status_word(status: int) -> str:
    """An item's ``EMTaskItemStatus`` in a word."""
    return _WORDS[status] if 0 <= status < len(_WORDS) else f"status {status}"


def task_status_word(status: int) -> str:
    """A task's ``EMTaskStatus`` in a word."""
    return _TASK_WORDS[status] if 0 <= status < len(_TASK_WORDS) else f"status {status}"


@dataclass
class ItemView:
    """One node's line: its latest status, percent and log (what the node or the engine
    answered: the item's execute log, else its status info), and when it started and ended."""

    node: str
    status: int = I_NOT_START
    percent: int = 0
    log: str = ""
    patch_id: str = ""
    command: str = ""
    application: str = ""
    server: str = ""
    start_time: str = ""
    end_time: str = ""

    @property
    def finished(self) -> bool:
        return self.status not in _UNFINISHED

    @property
    def word(self) -> str:
        return status_word(self.status)

    def as_json(self) -> dict[str, Any]:
        return {
            "application": self.application,
            "server": self.server,
            "node": self.node,
            "command": self.command,
            "status": status_word(self.status),
            "finished": self.finished,
            "percent": self.percent,
            "log": self.log,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }


@dataclass
class TaskOutcome:
    """A task: its number and each node's last state; ``finished`` once every item ended
    (the task's own status can be "partly done" while a serial task's later items still
    wait)."""

    task_no: str
    items: list[ItemView] = field(default_factory=list)
    status: int = 0
    finished: bool = False
    created: str = ""
    user: str = ""
    serial: bool = False

    @property
    def failures(self) -> list[ItemView]:
        return [i for i in self.items if i.status in (I_FAILED, I_CANCEL)]

    @property
    def succeeded(self) -> bool:
        return self.finished and all(i.status == I_SUCCESS for i in self.items)

    @property
    def word(self) -> str:
        return task_status_word(self.status)

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task_no,
            "status": task_status_word(self.status),
            "finished": self.finished,
            "failed": len(self.failures),
            "created": self.created,
            "user": self.user,
            "serial": self.serial,
            "items": [i.as_json() for i in self.items],
        }


def read_task(rsp: Any) -> TaskOutcome:
    """A ``TaskRsp`` as a :class:`TaskOutcome` (items in the task's order)."""
    items = [
        ItemView(
            node=str(item.req.nodeName),
            status=int(item.status),
            percent=max(0, min(100, int(item.percent or 0))),
            log=" ".join(str(item.executeLog or item.statusInfo or "").split()),
            patch_id=str(dict(item.req.parameters).get("patch_id", "")),
            command=str(item.req.command),
            application=str(item.req.application),
            server=str(item.req.serverName),
            start_time=str(item.startTime or ""),
            end_time=str(item.endTime or ""),
        )
        for item in rsp.taskItemRsp
    ]
    outcome = TaskOutcome(
        str(rsp.taskNo), items, int(rsp.status), created=str(rsp.createTime or ""),
        user=str(rsp.userName or ""), serial=bool(rsp.serial),
    )  # fmt: skip
    outcome.finished = bool(items) and all(i.finished for i in items)
    return outcome


@dataclass(frozen=True)
class Rollout:
    """How a task runs across its nodes: ``TaskReq.serial``, ``eachNum`` (batches of K),
    ``isElegant`` (lossless: each batch's traffic off, drained, patched, restored)."""

    serial: bool = True
    each: int = 1
    lossless: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.each <= MAX_NODES:
            raise Invalid(f"a batch is 1 to {MAX_NODES} nodes, not {self.each}")

    def describe(self) -> str:
        if self.each > 1:
            how = f"in batches of {self.each}"
        else:
            how = "one node after the other" if self.serial else "on all nodes at once"
        return how + (", lossless" if self.lossless else "")

    def as_json(self) -> dict[str, object]:
        return {"serial": self.serial, "each": self.each, "lossless": self.lossless}


def previous_versions(
    tasks: Sequence[TaskOutcome], nodes: Sequence[str], current: Mapping[str, str]
) -> dict[str, str | None]:
    """Per node, the version published there before its current one: the newest patch id,
    among its successful publishes (``tasks`` newest first), that differs from ``current``
    (the node's ``patch_version``; else its newest successful publish). None: no such."""
    installed: dict[str, list[str]] = {n: [] for n in nodes}
    for task in tasks:
        for item in task.items:
            if item.node in installed and item.status == I_SUCCESS and item.patch_id:
                installed[item.node].append(item.patch_id)
    answer: dict[str, str | None] = {}
    for node, ids in installed.items():
        now = current.get(node) or (ids[0] if ids else "")
        answer[node] = next((i for i in ids if i != now), None)
    return answer


async def add_task(platform: Platform, req: AdminReg.TaskReq, doing: str) -> None:
    """``addTaskReq``: the admin registry keeps the task and runs it (a refusal worded by
    :func:`tarsus.ops.adminreg.refusal`)."""
    doing = f"{doing}: adding the task"
    async with adminreg.calling(doing):
        code = await adminreg.admin(platform).addTaskReq(req)
    if code != 0:
        raise adminreg.refusal(doing, int(code))


def check_task_no(task_no: str) -> str:
    """A task number as a caller gave it, or :class:`Invalid`."""
    if not task_no or len(task_no) > 64 or not set(task_no) <= _TASK_NO_CHARS:
        raise Invalid(f"{task_no[:70]!r} is not a task number")
    return task_no


async def _read(platform: Platform, task_no: str) -> TaskOutcome:
    """``getTaskRsp``: the task, or :class:`NotFound` (unknown, or without items)."""
    check_task_no(task_no)
    async with adminreg.calling(f"reading task {task_no}"):
        code, rsp = await adminreg.admin(platform).getTaskRsp(task_no)
    if code != 0 or not rsp.taskItemRsp:
        raise NotFound(f"the admin registry knows no task {task_no}")
    outcome = read_task(rsp)
    outcome.task_no = outcome.task_no or task_no
    return outcome


async def view_task(platform: Platform, actor: Actor, task_no: str) -> TaskOutcome:
    """Task ``task_no``; the actor must be able to view every server it touches
    (:class:`Denied` otherwise)."""
    outcome = await _read(platform, task_no)
    for item in outcome.items:
        if not actor.can(Perm.VIEW, item.application, item.server):
            raise Denied(f"{actor.uid} may not view task {task_no}")
    return outcome


async def task(
    platform: Platform, actor: Actor, app: str, server: str, task_no: str
) -> TaskOutcome:
    """Task ``task_no`` of ``App.Server`` (:class:`NotFound` if the admin registry knows no
    such task of that server: a task of another server is not shown through this one)."""
    actor.require(Perm.VIEW, app, server)
    outcome = await _read(platform, task_no)
    if any((i.application, i.server) != (app, server) for i in outcome.items):
        raise NotFound(f"task {task_no} is not a task of {app}.{server}")
    return outcome
