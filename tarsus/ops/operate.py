"""Operating deployed instances: start, stop, restart (one or many, as a task), undeploy, and
admin commands (``AdminObj.notify``) with each instance's answer.

* **start / stop / restart** of any set of instances is one task of the admin registry
  (``addTaskReq``, upstream TarsWeb's ``/add_task``), parallel by default, serial when asked;
  its progress is read with :func:`tarsus.ops.tasks.view_task`. Needs ``restart`` on every
  server it touches (an operator has it).
* **undeploy** removes one instance (its servants and node config files too). Refused while
  the instance is active, with the reason: stop it first (the admin registry asks the node;
  the setting state is checked here before that). Needs ``operate``.
* **admin commands** — ``tars.setloglevel LEVEL``, ``tars.loadconfig FILE``,
  ``tars.viewstatus`` or any text — are sent to each instance at once (``notifyServer``);
  each instance's answer, or why it has none, is returned. Needs ``operate``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tarsus.names import (
    InvalidName,
    check_application,
    check_config_file,
    check_node_name,
    check_server_name,
)
from tarsus.ops import adminreg, audit, tasks
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Conflict, Invalid, NotFound, OpError
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import AdminReg

__all__ = [
    "ADMIN_COMMANDS",
    "LIFECYCLE",
    "LOG_LEVELS",
    "MAX_TARGETS",
    "NotifyAnswer",
    "Target",
    "admin_command",
    "lifecycle",
    "notify",
    "parse_targets",
    "undeploy",
]

#: the task commands this module starts (upstream TarsWeb's ``/add_task`` commands)
LIFECYCLE = ("start", "stop", "restart")
#: ``tars.setloglevel``'s levels (tarsus/rpc/admin.py, TarsCpp ``TC_RollLogger``)
LOG_LEVELS = ("NONE", "ERROR", "WARN", "INFO", "DEBUG", "TARS")
#: the admin commands the console offers by name; ``custom`` sends its text as it is
ADMIN_COMMANDS = ("setloglevel", "loadconfig", "viewstatus", "custom")
#: instances one request may act on
MAX_TARGETS = 500
MAX_COMMAND = 1000


@dataclass(frozen=True, order=True)
class Target:
    """One instance: ``App.Server@node``."""

    application: str
    server_name: str
    node_name: str

    @property
    def server(self) -> str:
        return f"{self.application}.{self.server_name}"

    def __str__(self) -> str:
        return f"{self.server}@{self.node_name}"

    @classmethod
    def of(cls, application: str, server_name: str, node_name: str) -> Target:
        try:
            return cls(
                check_application(application),
                check_server_name(server_name),
                check_node_name(node_name),
            )
        except InvalidName as e:
            raise Invalid(str(e)) from None

    @classmethod
    def parse(cls, text: str) -> Target:
        server, at, node = text.strip().partition("@")
        app, dot, name = server.partition(".")
        if not (at and dot):
            raise Invalid(f"an instance is APP.SERVER@NODE, not {text[:80]!r}")
        return cls.of(app, name, node)


def parse_targets(texts: Sequence[str]) -> list[Target]:
    """``App.Server@node`` strings, each once; at least one, at most :data:`MAX_TARGETS`."""
    if not texts:
        raise Invalid("choose at least one instance")
    if len(texts) > MAX_TARGETS:
        raise Invalid(f"{len(texts)} instances in one request; at most {MAX_TARGETS}")
    targets = [Target.parse(t) for t in texts]
    if len(set(targets)) != len(targets):
        raise Invalid("an instance is named twice")
    return targets


async def _check_deployed(platform: Platform, targets: Sequence[Target]) -> None:
    for t in targets:
        if await platform.store.servers.get(t.application, t.server_name, t.node_name) is None:
            raise NotFound(f"{t.server} is not deployed on node {t.node_name}")


def _require(actor: Actor, perm: Perm, targets: Sequence[Target]) -> None:
    for app, server in sorted({(t.application, t.server_name) for t in targets}):
        actor.require(perm, app, server)


def _summary(targets: Sequence[Target]) -> str:
    shown = " ".join(str(t) for t in targets[:5])
    return shown + (f" (+{len(targets) - 5})" if len(targets) > 5 else "")


async def lifecycle(
    platform: Platform,
    actor: Actor,
    command: str,
    targets: Sequence[Target],
    *,
    serial: bool = False,
) -> str:
    """Start a task running ``command`` on every instance; its task number (follow it with
    :func:`tarsus.ops.tasks.view_task`)."""
    if command not in LIFECYCLE:
        raise Invalid(f"command must be one of {', '.join(LIFECYCLE)}, not {command[:40]!r}")
    if not targets:
        raise Invalid("choose at least one instance")
    _require(actor, Perm.RESTART, targets)
    await _check_deployed(platform, targets)
    task_no = uuid.uuid4().hex
    req = AdminReg.TaskReq(
        taskItemReq=[
            AdminReg.TaskItemReq(
                taskNo=task_no,
                itemNo=uuid.uuid4().hex,
                application=t.application,
                serverName=t.server_name,
                nodeName=t.node_name,
                command=command,
                userName=actor.uid,
                parameters={},
            )
            for t in targets
        ],
        taskNo=task_no,
        serial=serial,
        userName=actor.uid,
    )
    await tasks.add_task(platform, req, f"{command} of {_summary(targets)}")
    await audit.record(
        platform,
        actor,
        f"server.{command}",
        _summary(targets),
        after={"task": task_no, "serial": serial, "instances": [str(t) for t in targets]},
    )
    return task_no


async def undeploy(platform: Platform, actor: Actor, target: Target) -> str:
    """Remove the instance; :class:`Conflict` while it is active. The admin registry's answer."""
    actor.require(Perm.OPERATE, target.application, target.server_name)
    row = await platform.store.servers.get(target.application, target.server_name, target.node_name)
    if row is None:
        raise NotFound(f"{target.server} is not deployed on node {target.node_name}")
    if row.setting_state == "active" or row.present_state == "active":
        raise Conflict(
            f"{target} is active (setting {row.setting_state}, present {row.present_state}): "
            "stop it first, then undeploy"
        )
    doing = f"undeploying {target}"
    async with adminreg.calling(doing):
        code, result = await adminreg.admin(platform).undeploy(
            target.application, target.server_name, target.node_name, actor.uid
        )
    if code != 0:
        raise adminreg.refusal(doing, code, result)
    await audit.record(
        platform,
        actor,
        "server.undeploy",
        str(target),
        before={
            "template": row.template_name,
            "server_type": row.server_type,
            "setting_state": row.setting_state,
            "present_state": row.present_state,
            "patch_version": row.patch_version,
        },
    )
    return str(result)


def admin_command(kind: str, argument: str = "") -> str:
    """The text of an admin command: ``setloglevel`` LEVEL, ``loadconfig`` FILE,
    ``viewstatus``, or ``custom`` (the argument as it is: ``tars.connection``...)."""
    argument = argument.strip()
    if kind == "setloglevel":
        level = argument.upper()
        if level not in LOG_LEVELS:
            raise Invalid(f"log level must be one of {', '.join(LOG_LEVELS)}, not {argument!r}")
        return f"tars.setloglevel {level}"
    if kind == "loadconfig":
        try:
            return f"tars.loadconfig {check_config_file(argument)}"
        except InvalidName as e:
            raise Invalid(str(e)) from None
    if kind == "viewstatus":
        return "tars.viewstatus"
    if kind == "custom":
        if not argument:
            raise Invalid("the command is empty")
        if len(argument) > MAX_COMMAND:
            raise Invalid(f"the command is {len(argument)} characters; at most {MAX_COMMAND}")
        if any(ord(c) < 32 for c in argument):
            raise Invalid("the command holds control characters (one line only)")
        return argument
    raise Invalid(f"command kind must be one of {', '.join(ADMIN_COMMANDS)}, not {kind[:40]!r}")


@dataclass(frozen=True)
class NotifyAnswer:
    instance: str
    node_name: str
    ok: bool
    #: the instance's answer, or why there is none
    answer: str


async def notify(
    platform: Platform, actor: Actor, targets: Sequence[Target], command: str
) -> list[NotifyAnswer]:
    """Send ``command`` (:func:`admin_command`) to every instance at once; each one's answer."""
    if not targets:
        raise Invalid("choose at least one instance")
    admin_command("custom", command)  # one line, not empty, not too long
    _require(actor, Perm.OPERATE, targets)
    await _check_deployed(platform, targets)
    proxy = adminreg.admin(platform)

    async def one(t: Target) -> NotifyAnswer:
        doing = f"notifying {t}"
        try:
            async with adminreg.calling(doing):
                code, result = await proxy.notifyServer(
                    t.application, t.server_name, t.node_name, command
                )
            if code != 0:
                raise adminreg.refusal(doing, code, result)
        except OpError as e:
            return NotifyAnswer(str(t), t.node_name, False, e.message)
        return NotifyAnswer(str(t), t.node_name, True, str(result))

    answers = list(await asyncio.gather(*(one(t) for t in targets)))
    await audit.record(
        platform,
        actor,
        "server.notify",
        _summary(targets),
        after={"command": command, "answered": sum(a.ok for a in answers), "of": len(answers)},
    )
    return answers
