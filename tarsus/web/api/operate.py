"""``/api/v1/tasks`` (start, stop, restart one or many instances; a task's progress),
``/api/v1/notify`` (admin commands), ``DELETE /api/v1/instances/...`` (undeploy)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from tarsus.ops import operate, tasks
from tarsus.ops.access import Perm
from tarsus.web.params import PlatformDep
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["operate"])


class NewTask(BaseModel):
    #: start, stop or restart
    command: str
    #: ``["App.Server@node", ...]``
    instances: list[str] = Field(max_length=operate.MAX_TARGETS)
    #: one after the other, stopping at the first failure (default: all at once)
    serial: bool = False


class AdminCommand(BaseModel):
    instances: list[str] = Field(max_length=operate.MAX_TARGETS)
    #: setloglevel, loadconfig, viewstatus or custom
    kind: str
    #: the level, the file name, or the custom command's text
    argument: str = ""


@router.post("/tasks", status_code=201, **access(Perm.RESTART, "any"))
async def add_task(body: NewTask, actor: ActorDep, platform: PlatformDep) -> Any:
    """Start, stop or restart the instances as one task; follow it at ``/api/v1/tasks/NO``."""
    targets = operate.parse_targets(body.instances)
    task_no = await operate.lifecycle(platform, actor, body.command, targets, serial=body.serial)
    return {"task_no": task_no, "href": f"/api/v1/tasks/{task_no}"}


@router.get("/tasks/{task_no}", **access(Perm.VIEW, "form"))
async def get_task(task_no: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """The task and each item's status, percent and answer (``finished`` once all ended)."""
    return (await tasks.view_task(platform, actor, task_no)).as_json()


@router.post("/notify", **access(Perm.OPERATE, "any"))
async def notify(body: AdminCommand, actor: ActorDep, platform: PlatformDep) -> Any:
    """Send an admin command to the instances; each one's answer."""
    targets = operate.parse_targets(body.instances)
    command = operate.admin_command(body.kind, body.argument)
    answers = await operate.notify(platform, actor, targets, command)
    return {"command": command, "answers": jsonable_encoder(answers)}


@router.delete("/instances/{app}/{server}/{node}", **access(Perm.OPERATE, "app"))
async def undeploy(app: str, server: str, node: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """Undeploy one instance; 409 while it is active (stop it first)."""
    result = await operate.undeploy(platform, actor, operate.Target.of(app, server, node))
    return {"undeployed": f"{app}.{server}@{node}", "result": result}
