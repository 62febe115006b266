"""Upload and publish in one call: upstream TarsWeb's script API, as steps over the framework.

What ``POST /api/upload_and_publish`` does once the caller is authenticated and the body
received (TarsWeb ``PatchController.uploadAndPublish``; docs/web.md):

1. check the names and the package (a whole ``.tgz`` whose members stay inside it; its
   ``tarsus.toml``, if any, names this server), and ask the admin registry which instances the
   server has: nothing is stored for a refused request;
2. store the package on ``tars.tarspatch.PatchObj`` (``Patch.upload`` in 1 MiB chunks, named
   ``<App>.<Server>_suse_<epoch ms>.tgz`` as upstream), record it with
   ``AdminExt.addPatchPackage`` (the patch id);
3. one serial ``patch_tars`` task over every active instance (with ``restart=1`` the inactive
   ones too), ``AdminReg.addTaskReq``;
4. follow it with ``getTaskRsp`` every 2 s until it finishes (or ``publish_wait`` passes) and
   answer in plain text, upstream's lines: the instances patched, the task number, one line per
   node.

:class:`Framework` is the part that talks to the framework services; the console's pages will
use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarsus.codec.constants import ADMIN_REG_OBJ, PATCH_OBJ
from tarsus.names import InvalidName, check_application, check_server_name
from tarsus.package import (
    PackageError,
    check_archive,
    manifest_in_archive,
    read_deploy_manifest,
)
from tarsus.protocol.gen import AdminReg, Patch, TarsusAdmin
from tarsus.release import (
    UPLOAD_MD5_MISMATCH,
    UploadRefused,
    patch_task,
    upload_name,
    upload_package,
)
from tarsus.rpc.communicator import Communicator
from tarsus.rpc.errors import TarsError
from tarsus.web.form import ReceivedFile
from tarsus.web.settings import WebSettings

__all__ = [
    "Framework",
    "Instance",
    "PublishAnswer",
    "PublishError",
    "PublishRequest",
    "upload_and_publish",
]

log = logging.getLogger("tarsus.web.publish")

#: the comment is stored in ``t_server_patchs.update_text``
MAX_COMMENT = 1000
RULE = "-" * 65

T = AdminReg.EMTaskStatus
FINISHED = frozenset({T.EM_T_SUCCESS, T.EM_T_FAILED, T.EM_T_CANCEL, T.EM_T_PARIAL})


class PublishError(Exception):
    """The request is refused or failed: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Instance:
    """A deployed instance of the server (a ``t_server_conf`` row)."""

    id: str
    node: str
    setting_state: str
    present_state: str


@dataclass
class PublishRequest:
    application: str
    server: str
    comment: str
    #: upstream's ``restart=1``: also patch the instances whose setting state is inactive
    restart: bool
    package: ReceivedFile
    #: recorded as the uploader and the task's user
    user: str
    #: the md5 the client says the file has ("" if none was sent)
    client_md5: str = ""


@dataclass(frozen=True)
class PublishAnswer:
    status: int
    text: str


# --------------------------------------------------------------------------- the framework


def _code_failure(what: str, code: int, result: str = "") -> PublishError:
    detail = f": {result.strip()}" if result.strip() else ""
    return PublishError(502, f"{what} failed (code {code}){detail}")


class Framework:
    """The admin registry and the package store over Tars RPC, as the web uses them.

    Calls raise :class:`PublishError`: 503 when a service cannot be reached, 502 when it
    refuses (with its reason)."""

    def __init__(self, settings: WebSettings) -> None:
        self.comm = Communicator(
            settings.locator, cache_dir=None, timeout_ms=settings.rpc_timeout_ms
        )
        admin = settings.admin or ADMIN_REG_OBJ
        self.admin = self.comm.string_to_proxy(AdminReg.AdminRegProxy, admin)
        self.ext = self.comm.string_to_proxy(TarsusAdmin.AdminExtProxy, admin)
        self.patch = self.comm.string_to_proxy(Patch.PatchProxy, settings.patch or PATCH_OBJ)

    async def close(self) -> None:
        await self.comm.close()

    @contextlib.asynccontextmanager
    async def _calling(self, what: str) -> Any:
        try:
            yield
        except TarsError as e:
            raise PublishError(503, f"{what}: {e}") from None

    async def instances(self, application: str, server: str) -> list[Instance]:
        """The server's deployed instances (``getServerNameList``), by node."""
        async with self._calling("the admin registry cannot be reached"):
            code, rows = await self.admin.getServerNameList(
                [AdminReg.ApplicationServerName(application=application, serverName=server)]
            )
        if code != 0:
            raise _code_failure("listing the instances", code)
        found = [
            Instance(
                id=row.get("id", ""),
                node=row.get("node_name", ""),
                setting_state=row.get("setting_state", ""),
                present_state=row.get("present_state", ""),
            )
            for row in rows
            if row.get("application") == application and row.get("server_name") == server
        ]
        return sorted(found, key=lambda i: i.node)

    async def upload(self, application: str, server: str, name: str, path: Path, md5: str) -> None:
        """``Patch.upload`` of the file in 1 MiB chunks (:func:`tarsus.release.upload_package`;
        the md5 is checked by the package store on the last one)."""
        try:
            async with self._calling("the package store (tars.tarspatch) cannot be reached"):
                await upload_package(self.patch, application, server, path, name=name, md5=md5)
        except UploadRefused as e:
            what = (
                "the md5 check"
                if e.code == UPLOAD_MD5_MISMATCH
                else "uploading to the package store"
            )
            raise _code_failure(what, e.code) from None

    async def add_package(
        self, application: str, server: str, tgz: str, md5: str, comment: str, user: str
    ) -> int:
        """``AdminExt.addPatchPackage``: the ``t_server_patchs`` row; its patch id."""
        async with self._calling("the admin registry cannot be reached"):
            code, patch_id, result = await self.ext.addPatchPackage(
                application, server, tgz, md5, comment, user
            )
        if code != 0:
            raise _code_failure("recording the package", code, result)
        return int(patch_id)

    async def add_task(self, req: AdminReg.TaskReq) -> None:
        async with self._calling("the admin registry cannot be reached"):
            code = await self.admin.addTaskReq(req)
        if code != 0:
            raise _code_failure("adding the publish task", code)

    async def task(self, task_no: str) -> AdminReg.TaskRsp:
        async with self._calling("the admin registry cannot be reached"):
            code, rsp = await self.admin.getTaskRsp(task_no)
        if code != 0:
            raise _code_failure(f"reading task {task_no}", code)
        return rsp


# --------------------------------------------------------------------------- the steps


def check_fields(fields: dict[str, str]) -> tuple[str, str, str, bool]:
    """``(application, server, comment, restart)`` from the form, or :class:`PublishError`
    (400) naming the field."""
    missing = [k for k in ("application", "module_name") if not fields.get(k, "").strip()]
    if missing:
        raise PublishError(400, f"missing field(s): {', '.join(missing)}")
    try:
        application = check_application(fields["application"].strip())
        server = check_server_name(fields["module_name"].strip())
    except InvalidName as e:
        raise PublishError(400, str(e)) from None
    comment = fields.get("comment", "")
    if len(comment) > MAX_COMMENT:
        raise PublishError(400, f"comment is {len(comment)} characters; at most {MAX_COMMENT}")
    restart = fields.get("restart", "").strip()
    if restart not in ("", "0", "1"):
        raise PublishError(400, f"restart must be 1 or 0, not {restart[:20]!r}")
    return application, server, comment, restart == "1"


def _check_package(path: Path, application: str, server: str) -> None:
    """A whole, safe ``.tgz``; one carrying ``tarsus.toml`` must name this server."""
    try:
        check_archive(path)
        found = manifest_in_archive(path)
        if found is not None:
            manifest = read_deploy_manifest(found[1], found[0])
            wanted = f"{application}.{server}"
            if manifest.name and manifest.name != wanted:
                raise PackageError(
                    f"the package's {found[0]} names {manifest.name}, not {wanted}: "
                    "it is another server's package"
                )
    except PackageError as e:
        raise PublishError(400, f"package refused: {e}") from None


async def upload_and_publish(
    framework: Framework,
    req: PublishRequest,
    settings: WebSettings,
    clock: Callable[[], float] = time.time,
) -> PublishAnswer:
    """The whole call; :class:`PublishError` for a refusal before anything was stored."""
    app, server, pkg = req.application, req.server, req.package
    if req.client_md5 and req.client_md5.strip().lower() != pkg.md5:
        raise PublishError(400, f"md5 mismatch: sent {req.client_md5.strip()}, received {pkg.md5}")
    await asyncio.to_thread(_check_package, pkg.path, app, server)
    instances = await framework.instances(app, server)
    if not instances:
        raise PublishError(404, f"{app}.{server} is not deployed on any node: deploy it first")
    chosen = [i for i in instances if req.restart or i.setting_state != "inactive"]
    if not chosen:
        raise PublishError(
            409,
            f"no active instance of {app}.{server} (all {len(instances)} are inactive): "
            "start one, or send restart=1 to publish to the inactive ones too",
        )
    tgz = upload_name(app, server, pkg.field, int(clock() * 1000))
    await framework.upload(app, server, tgz, pkg.path, pkg.md5)
    patch_id = await framework.add_package(app, server, tgz, pkg.md5, req.comment, req.user)
    lines = [f"package {tgz} stored: patch id {patch_id}, md5 {pkg.md5}, {pkg.size} bytes"]
    for inst in chosen:
        lines.append(f"patch serverId: {inst.id}, node_name: {inst.node}")
    task = patch_task(
        app,
        server,
        [inst.node for inst in chosen],
        {"patch_id": str(patch_id)},
        user=req.user,
        comment=req.comment,
    )
    task_no = task.taskNo
    await framework.add_task(task)
    rsp = await _follow(framework, task_no, settings)
    lines += [RULE, f"task no:  [{task_no}]", ""]
    for item in rsp.taskItemRsp:
        lines.append(
            " ".join(p for p in (item.req.nodeName, item.statusInfo, item.executeLog) if p)
        )
    status = T(rsp.status) if rsp.status in T._value2member_map_ else None
    if status is None or status not in FINISHED:
        lines.append(
            f"task status: still running after {settings.publish_wait:g} s "
            "(the admin registry goes on with it)"
        )
        return PublishAnswer(202, "\n".join(lines) + "\n")
    lines.append(f"task status: {status.name}")
    return PublishAnswer(200 if status == T.EM_T_SUCCESS else 500, "\n".join(lines) + "\n")


async def _follow(framework: Framework, task_no: str, settings: WebSettings) -> AdminReg.TaskRsp:
    """The task every ``poll_interval`` s until it finished or ``publish_wait`` passed."""
    deadline = time.monotonic() + settings.publish_wait
    while True:
        await asyncio.sleep(min(settings.poll_interval, max(0.0, deadline - time.monotonic())))
        rsp = await framework.task(task_no)
        if rsp.status in FINISHED or time.monotonic() >= deadline:
            return rsp
