"""Releasing a server: its packages (upload, list, default, delete), publishing a version to
chosen instances (in batches, lossless, a canary first), rolling back, the publish history, and
upstream's one-call script API ``upload_and_publish``.

As upstream's console does it (TarsWeb ``PatchController``, docs/release.md): a package goes
to the package store ``tars.tarspatch.PatchObj`` (``Patch.upload`` in 1 MiB chunks, named
``<App>.<Server>_<field>_<epoch ms>.tgz``) and is recorded by the admin registry
(``AdminExt.addPatchPackage``: its id is the *version*); a publish is one admin registry task
of ``patch_tars`` items, one per node (:func:`tarsus.release.patch_task`), whose progress
:mod:`tarsus.ops.tasks` reads. A rollback publishes, per node, the version it ran before (from
the task history) or a chosen one: no upload.

A **canary** publishes to the first N chosen nodes only and answers the others as ``rest``:
the caller looks at the canary (the console shows its task live) and then publishes the same
version to the rest, a second task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tarsus import release
from tarsus.names import InvalidName, check_application, check_server_name
from tarsus.ops import adminreg, audit
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Conflict, Invalid, NotFound, UpstreamFailed
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform
from tarsus.ops.tasks import MAX_NODES, Rollout, TaskOutcome, add_task, previous_versions, read_task
from tarsus.ops.upstream import calling, check, need
from tarsus.package import PackageError, check_archive, manifest_in_archive, read_deploy_manifest
from tarsus.protocol.gen import AdminReg, TarsusAdmin

log = logging.getLogger("tarsus.ops.release")
__all__ = [
    "MAX_COMMENT",
    "PATCH_COMMANDS",
    "Instance",
    "Package",
    "PackageFile",
    "PublishAnswer",
    "Rollout",
    "Started",
    "check_package",
    "delete_package",
    "drop_package",
    "history",
    "instances",
    "packages",
    "previous_versions",
    "publish",
    "publish_tasks",
    "rollback",
    "set_default",
    "set_default_package",
    "stored_packages",
    "upload",
    "upload_and_publish",
]

#: the comment is stored in ``t_server_patchs.update_text``
MAX_COMMENT = 1000
PATCH_COMMANDS = ("patch_tars", "grace_patch_tars")
ADMIN = "the admin registry"
STORE = "the package store (tars.tarspatch)"
RULE = "-" * 65
_T = AdminReg.EMTaskStatus


class PackageFile(Protocol):
    """A received file: where it is, its md5 and size (:class:`tarsus.web.form.ReceivedFile`)."""

    @property
    def path(self) -> Path: ...
    @property
    def md5(self) -> str: ...
    @property
    def size(self) -> int: ...


@dataclass(frozen=True)
class Package:
    """A package of the store (``t_server_patchs``): its id is the version a publish names."""

    id: int
    server: str
    tgz: str
    md5: str
    size: int
    comment: str
    upload_user: str
    upload_time: str
    default: bool
    deployed_on: list[str]
    publish_time: str
    publish_user: str


@dataclass(frozen=True)
class Instance:
    """A deployed instance of the server, as the admin registry lists it."""

    id: str
    node: str
    setting_state: str
    present_state: str


@dataclass
class Started:
    """Publish tasks started: ``tasks`` ``[(task number, its nodes)]``; with a canary, the
    nodes left for later (``rest``)."""

    server: str
    version: int
    tasks: list[tuple[str, list[str]]] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "server": self.server,
            "version": self.version,
            "tasks": [{"task": t, "nodes": n} for t, n in self.tasks],
            "rest": self.rest,
        }


# --------------------------------------------------------------------------- checks


def check_names(app: str, server: str) -> tuple[str, str]:
    try:
        return check_application(app), check_server_name(server)
    except InvalidName as e:
        raise Invalid(str(e)) from None


def check_comment(comment: str) -> str:
    if len(comment) > MAX_COMMENT:
        raise Invalid(f"comment is {len(comment)} characters; at most {MAX_COMMENT}")
    return comment


def check_package(path: Path, app: str, server: str) -> None:
    """A whole, safe ``.tgz`` (its members stay inside it); one carrying ``tarsus.toml`` must
    name this server. :class:`Invalid` saying why not."""
    try:
        check_archive(path)
        found = manifest_in_archive(path)
        if found is not None:
            manifest = read_deploy_manifest(found[1], found[0])
            wanted = f"{app}.{server}"
            if manifest.name and manifest.name != wanted:
                raise PackageError(
                    f"the package's {found[0]} names {manifest.name}, not {wanted}: "
                    "it is another server's package"
                )
    except PackageError as e:
        raise Invalid(f"package refused: {e}") from None


# --------------------------------------------------------------------------- packages


def _package(p: TarsusAdmin.StoredPackage) -> Package:
    return Package(
        id=int(p.id), server=p.server, tgz=p.tgz, md5=p.md5, size=int(p.size),
        comment=p.comment or "", upload_user=p.uploadUser or "", upload_time=p.uploadTime or "",
        default=bool(p.isDefault), deployed_on=list(p.deployedOn),
        publish_time=p.publishTime or "", publish_user=p.publishUser or "",
    )  # fmt: skip


async def stored_packages(platform: Platform, app: str, server: str) -> list[Package]:
    """Every package of ``App.Server``, newest first (``listPatchPackages``); no permission
    check: :func:`packages` is the actor's view of it, ``tarsus package list`` the local
    operator's. A refusal is worded by :func:`tarsus.ops.adminreg.refusal`."""
    ext = need(platform.ext, ADMIN)
    doing = f"listing the packages of {app}.{server}"
    async with calling(ADMIN):
        code, found, result = await ext.listPatchPackages(app, server)
    if code != 0:
        raise adminreg.refusal(doing, int(code), result)
    return [_package(p) for p in found]


async def packages(
    platform: Platform, actor: Actor, app: str, server: str, query: PageQuery
) -> Page[Package]:
    """The server's packages, newest first; ``q`` matches the comment, uploader or md5."""
    actor.require(Perm.VIEW, app, server)
    found = await stored_packages(platform, app, server)
    if query.q:
        q = query.q.lower()
        found = [p for p in found if q in f"{p.id} {p.comment} {p.upload_user} {p.md5}".lower()]
    return Page.of(found[query.offset : query.offset + query.size], len(found), query)


async def _package_of(platform: Platform, app: str, server: str, package_id: int) -> Package:
    for p in await stored_packages(platform, app, server):
        if p.id == package_id:
            return p
    raise NotFound(f"{app}.{server} has no package {package_id} (its list shows the versions)")


async def upload(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    file: PackageFile,
    *,
    comment: str = "",
    client_md5: str = "",
    field: str = "suse",
    clock: Callable[[], float] = time.time,
) -> Package:
    """Store ``file`` as a new package of ``App.Server``: checked (md5 sent, archive, the
    server its ``tarsus.toml`` names), sent to the package store, recorded. Refused before
    anything is stored."""
    actor.require(Perm.UPLOAD, app, server)
    app, server = check_names(app, server)
    comment = check_comment(comment)
    if client_md5.strip() and client_md5.strip().lower() != file.md5:
        raise Invalid(f"md5 mismatch: sent {client_md5.strip()[:40]}, received {file.md5}")
    await asyncio.to_thread(check_package, file.path, app, server)
    patch = need(platform.patch, STORE)
    ext = need(platform.ext, ADMIN)
    tgz = release.upload_name(app, server, field, int(clock() * 1000))
    try:
        async with calling(STORE):
            await release.upload_package(patch, app, server, file.path, name=tgz, md5=file.md5)
    except release.UploadRefused as e:
        what = "the md5 check" if e.code == release.UPLOAD_MD5_MISMATCH else "the upload"
        raise UpstreamFailed(f"{what} failed: {e.reason}") from None
    async with calling(ADMIN):
        code, patch_id, result = await ext.addPatchPackage(
            app, server, tgz, file.md5, comment, actor.uid
        )
    if code != 0:
        # Refused, so no row names the file and nothing else would ever delete it. (Not on
        # a call that failed: the row may have been written before the answer was lost.)
        await _discard_upload(patch, app, server, tgz)
    check(int(code), "recording the package", result)
    stored = Package(
        id=int(patch_id), server=f"{app}.{server}", tgz=tgz, md5=file.md5, size=file.size,
        comment=comment, upload_user=actor.uid, upload_time="", default=False,
        deployed_on=[], publish_time="", publish_user="",
    )  # fmt: skip
    await audit.record(
        platform, actor, "release.upload", f"{app}.{server}",
        after={"id": stored.id, "tgz": tgz, "md5": file.md5, "size": file.size},
    )  # fmt: skip
    return stored


async def delete_package(
    platform: Platform, actor: Actor, app: str, server: str, package_id: int
) -> Package:
    """Remove a package (its row and file); :class:`Conflict` while an instance runs it."""
    actor.require(Perm.UPLOAD, app, server)
    found = await _package_of(platform, app, server, package_id)
    if found.deployed_on:
        raise Conflict(
            f"package {package_id} is deployed on {', '.join(found.deployed_on)}: "
            "publish another version there first"
        )
    await drop_package(platform, actor.uid, package_id)
    await audit.record(platform, actor, "release.delete_package", f"{app}.{server}", before=found)
    return found


async def set_default(
    platform: Platform, actor: Actor, app: str, server: str, package_id: int
) -> Package:
    """Make the package its server's default (``default_version``), the others not."""
    actor.require(Perm.PUBLISH, app, server)
    found = await _package_of(platform, app, server, package_id)
    await set_default_package(platform, actor.uid, package_id)
    await audit.record(
        platform, actor, "release.set_default", f"{app}.{server}", after={"id": package_id}
    )
    return found


async def drop_package(platform: Platform, uid: str, package_id: int) -> str:
    """``AdminExt.deletePatchPackage`` as ``uid``, its answer text: the step
    :func:`delete_package` takes after its checks, and ``tarsus package delete`` (which names a
    package by its id alone) as it is; the admin registry itself refuses (1004, a
    :class:`Conflict`) while an instance runs that version."""
    ext = need(platform.ext, ADMIN)
    return await _answer(ext.deletePatchPackage(package_id, uid), f"deleting package {package_id}")


async def set_default_package(platform: Platform, uid: str, package_id: int) -> str:
    """``AdminExt.setDefaultPatchPackage`` as ``uid``, its answer text: the step
    :func:`set_default` takes after its checks, and ``tarsus package default`` as it is."""
    ext = need(platform.ext, ADMIN)
    doing = f"making package {package_id} the default"
    return await _answer(ext.setDefaultPatchPackage(package_id, uid), doing)


async def _answer(call: Awaitable[tuple[int, str]], doing: str) -> str:
    """The answer text of an admin registry call answering ``(code, result)``; a non-zero
    code worded by :func:`tarsus.ops.adminreg.refusal`."""
    async with calling(ADMIN):
        code, result = await call
    if code != 0:
        raise adminreg.refusal(doing, int(code), result)
    return str(result)


# --------------------------------------------------------------------------- publishing


async def instances(platform: Platform, app: str, server: str) -> list[Instance]:
    """The server's deployed instances (``getServerNameList``), by node."""
    admin = need(platform.admin, ADMIN)
    async with calling(ADMIN):
        code, rows = await admin.getServerNameList(
            [AdminReg.ApplicationServerName(application=app, serverName=server)]
        )
    check(int(code), f"listing the instances of {app}.{server}")
    found = [
        Instance(
            id=row.get("id", ""),
            node=row.get("node_name", ""),
            setting_state=row.get("setting_state", ""),
            present_state=row.get("present_state", ""),
        )
        for row in rows
        if row.get("application") == app and row.get("server_name") == server
    ]
    return sorted(found, key=lambda i: i.node)


async def _chosen_nodes(
    platform: Platform, app: str, server: str, nodes: Sequence[str]
) -> list[str]:
    """``nodes`` (each deployed; order kept, repeats dropped), or every instance if none."""
    if len(nodes) > MAX_NODES:
        raise Invalid(f"{len(nodes)} nodes: at most {MAX_NODES}")
    deployed = [i.node for i in await instances(platform, app, server)]
    if not deployed:
        raise NotFound(f"{app}.{server} is not deployed on any node: deploy it first")
    if not nodes:
        return deployed
    chosen = list(dict.fromkeys(n.strip() for n in nodes))
    missing = [n for n in chosen if n not in deployed]
    if missing:
        raise Invalid(
            f"{app}.{server} is not deployed on node {', '.join(m[:64] for m in missing[:5])} "
            f"(it is on {', '.join(deployed[:20])})"
        )
    return chosen


async def _start(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    nodes: Sequence[str],
    version: int,
    rollout: Rollout,
    *,
    comment: str,
    restart: bool,
    doing: str,
) -> str:
    req = release.patch_task(
        app, server, nodes, {"patch_id": str(version)}, user=actor.uid, comment=comment,
        restart=restart, serial=rollout.serial, each=rollout.each, lossless=rollout.lossless,
    )  # fmt: skip
    await add_task(platform, req, doing)
    return req.taskNo


async def publish(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    version: int,
    nodes: Sequence[str] = (),
    rollout: Rollout | None = None,
    *,
    comment: str = "",
    restart: bool = True,
    canary: int = 0,
) -> Started:
    """Publish package ``version`` to ``nodes`` (default: every instance) as one task; with
    ``canary`` N, to the first N only (the rest answered in ``rest``, untouched)."""
    actor.require(Perm.PUBLISH, app, server)
    rollout = rollout or Rollout()
    comment = check_comment(comment)
    await _package_of(platform, app, server, version)
    chosen = await _chosen_nodes(platform, app, server, nodes)
    first, rest = chosen, []
    if canary:
        if not 0 < canary < len(chosen):
            raise Invalid(
                f"a canary of {canary}: choose 1 to {len(chosen) - 1} of the {len(chosen)} nodes"
            )
        first, rest = chosen[:canary], chosen[canary:]
    started = Started(f"{app}.{server}", version, rest=rest)
    task_no = await _start(
        platform, actor, app, server, first, version, rollout, comment=comment,
        restart=restart, doing=f"publishing version {version} to {app}.{server}",
    )  # fmt: skip
    started.tasks.append((task_no, first))
    await audit.record(
        platform, actor, "release.publish", f"{app}.{server}",
        after={**started.as_json(), "rollout": rollout.as_json(), "canary": canary,
               "comment": comment, "restart": restart},
    )  # fmt: skip
    return started


async def publish_tasks(platform: Platform, app: str, server: str) -> list[TaskOutcome]:
    """Every publish task of ``App.Server``, newest first (``getTaskHistory`` of both patch
    commands); no permission check: :func:`history` is the actor's view of it."""
    admin = need(platform.admin, ADMIN)
    tasks: list[TaskOutcome] = []
    for command in PATCH_COMMANDS:
        async with calling(ADMIN):
            code, rsps = await admin.getTaskHistory(app, server, command)
        check(int(code), f"reading the publish history of {app}.{server}")
        tasks.extend(read_task(rsp) for rsp in rsps)
    tasks.sort(key=lambda t: t.created, reverse=True)
    return tasks


async def history(
    platform: Platform, actor: Actor, app: str, server: str, query: PageQuery
) -> Page[TaskOutcome]:
    """The server's publish tasks, newest first; ``q`` matches the user, a node or version."""
    actor.require(Perm.VIEW, app, server)
    tasks = await publish_tasks(platform, app, server)
    if query.q:
        q = query.q.lower()
        tasks = [
            t
            for t in tasks
            if q
            in " ".join([t.task_no, t.user, *(f"{i.node} {i.patch_id}" for i in t.items)]).lower()
        ]
    return Page.of(tasks[query.offset : query.offset + query.size], len(tasks), query)


async def rollback(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    nodes: Sequence[str] = (),
    *,
    to: int | None = None,
    rollout: Rollout | None = None,
    comment: str = "rollback",
) -> list[Started]:
    """Put back, on ``nodes`` (default: every instance), the version each ran before (from
    the publish history), or package ``to``: one task per version, no upload."""
    actor.require(Perm.PUBLISH, app, server)
    rollout = rollout or Rollout()
    comment = check_comment(comment)
    chosen = await _chosen_nodes(platform, app, server, nodes)
    targets: dict[int, list[str]] = {}
    if to is not None:
        await _package_of(platform, app, server, to)
        targets[to] = chosen
    else:
        admin = need(platform.admin, ADMIN)
        current: dict[str, str] = {}
        for n in chosen:
            async with calling(ADMIN):
                code, state, _ = await admin.getServerState(app, server, n)
            current[n] = str(state.patchVersion) if code == 0 else ""
        previous = previous_versions(await publish_tasks(platform, app, server), chosen, current)
        lacking = [n for n, v in previous.items() if v is None or not v.isdigit()]
        if lacking:
            raise Conflict(
                f"no earlier version of {app}.{server} was published to node "
                f"{', '.join(lacking[:10])}: choose the version to roll back to"
            )
        for n, v in previous.items():
            assert v is not None
            targets.setdefault(int(v), []).append(n)
    done: list[Started] = []
    for version, target_nodes in targets.items():
        started = Started(f"{app}.{server}", version)
        task_no = await _start(
            platform, actor, app, server, target_nodes, version, rollout, comment=comment,
            restart=True, doing=f"rolling {app}.{server} back to version {version}",
        )  # fmt: skip
        started.tasks.append((task_no, target_nodes))
        done.append(started)
    await audit.record(
        platform, actor, "release.rollback", f"{app}.{server}",
        before=current if to is None else None, after=[s.as_json() for s in done],
    )  # fmt: skip
    return done


# --------------------------------------------------------------------------- the script API


@dataclass(frozen=True)
class PublishAnswer:
    """``upload_and_publish``'s answer: upstream's plain-text lines, and the HTTP status."""

    status: int
    text: str


async def upload_and_publish(
    platform: Platform,
    actor: Actor,
    app: str,
    server: str,
    file: PackageFile,
    *,
    comment: str = "",
    restart: bool = False,
    client_md5: str = "",
    field: str = "suse",
    wait: float = 600.0,
    poll_interval: float = 2.0,
) -> PublishAnswer:
    """Upstream TarsWeb's script API (``PatchController.uploadAndPublish``; docs/web.md): store
    the package, one serial ``patch_tars`` task over every active instance (``restart``: the
    inactive ones too), followed every ``poll_interval`` s until it ends or ``wait`` passes,
    answered as upstream's text. Refusals (:class:`OpError`) come before anything is stored."""
    for perm in (Perm.UPLOAD, Perm.PUBLISH):
        actor.require(perm, app, server)
    app, server = check_names(app, server)
    comment = check_comment(comment)
    if client_md5.strip() and client_md5.strip().lower() != file.md5:
        raise Invalid(f"md5 mismatch: sent {client_md5.strip()[:40]}, received {file.md5}")
    await asyncio.to_thread(check_package, file.path, app, server)
    found = await instances(platform, app, server)
    if not found:
        raise NotFound(f"{app}.{server} is not deployed on any node: deploy it first")
    chosen = [i for i in found if restart or i.setting_state != "inactive"]
    if not chosen:
        raise Conflict(
            f"no active instance of {app}.{server} (all {len(found)} are inactive): "
            "start one, or send restart=1 to publish to the inactive ones too"
        )
    stored = await upload(platform, actor, app, server, file, comment=comment, field=field)
    lines = [
        f"package {stored.tgz} stored: patch id {stored.id}, md5 {file.md5}, {file.size} bytes"
    ]
    lines += [f"patch serverId: {i.id}, node_name: {i.node}" for i in chosen]
    task_no = await _start(
        platform, actor, app, server, [i.node for i in chosen], stored.id, Rollout(),
        comment=comment, restart=True, doing=f"publishing to {app}.{server}",
    )  # fmt: skip
    rsp = await _follow(platform, task_no, wait, poll_interval)
    lines += [RULE, f"task no:  [{task_no}]", ""]
    for item in rsp.taskItemRsp:
        lines.append(
            " ".join(p for p in (item.req.nodeName, item.statusInfo, item.executeLog) if p)
        )
    status = _T(rsp.status) if rsp.status in _T._value2member_map_ else None
    if status is None or not read_task(rsp).finished:  # each item ended, not the task's status
        lines.append(
            f"task status: still running after {wait:g} s (the admin registry goes on with it)"
        )
        answer = PublishAnswer(202, "\n".join(lines) + "\n")
    else:
        lines.append(f"task status: {status.name}")
        answer = PublishAnswer(200 if status == _T.EM_T_SUCCESS else 500, "\n".join(lines) + "\n")
    await audit.record(
        platform, actor, "server.upload_and_publish", f"{app}.{server}",
        after={"status": answer.status, "md5": file.md5, "comment": comment, "task": task_no},
    )  # fmt: skip
    return answer


async def _follow(
    platform: Platform, task_no: str, wait: float, poll_interval: float
) -> AdminReg.TaskRsp:
    """The task every ``poll_interval`` s until it finished or ``wait`` passed."""
    admin = need(platform.admin, ADMIN)
    deadline = time.monotonic() + wait
    while True:
        await asyncio.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
        async with calling(ADMIN):
            code, rsp = await admin.getTaskRsp(task_no)
        check(int(code), f"reading task {task_no}")
        # every item ended: the task's own status is "partly done" (EM_T_PARIAL) both when
        # its items ended differently and while a serial task's later items still wait
        if read_task(rsp).finished or time.monotonic() >= deadline:
            return rsp


async def _discard_upload(patch: Any, app: str, server: str, tgz: str) -> None:
    """``Patch.deletePatchFile`` of an upload the admin registry refused to record; a failure
    is only logged (the caller reports why the upload was not recorded)."""
    try:
        code = await patch.deletePatchFile(app, server, tgz)
    except Exception as e:
        log.warning("could not delete the unrecorded upload %s: %s", tgz, e)
        return
    if code != 0:
        log.warning("could not delete the unrecorded upload %s: the store answered %d", tgz, code)
