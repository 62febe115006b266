"""``/api/v1/servers/{app}/{server}/configs...``: config files per level, merged view,
history, diff, restore, push."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from tarsus.ops import configs
from tarsus.ops.access import Perm
from tarsus.ops.tasks import MAX_NODES
from tarsus.web.params import PlatformDep
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["configs"])

FILES = "/servers/{app}/{server}/configs"
FILE = FILES + "/{file_id}"


class NewFile(BaseModel):
    name: str
    content: str = ""
    #: ``server`` (with a node file per instance) or ``app``
    level: str = "server"
    reason: str = ""


class FileChange(BaseModel):
    content: str
    reason: str


class Restore(BaseModel):
    reason: str = ""


class Push(BaseModel):
    #: the instances' nodes; empty: every instance
    nodes: list[str] = Field(default_factory=list, max_length=MAX_NODES)


@router.get(FILES, **access(Perm.VIEW, "app"))
async def list_files(app: str, server: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """The files the server's instances get: application (and set), server and node files."""
    found = await configs.files(platform, actor, app, server)
    return {"items": jsonable_encoder(found), "total": len(found)}


@router.post(FILES, status_code=201, **access(Perm.CONFIG_EDIT, "app"))
async def add_file(
    app: str, server: str, body: NewFile, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Add a server file (its node files come with it) or an application file."""
    added = await configs.add_file(
        platform, actor, app, server, body.name, body.content, level=body.level,
        reason=body.reason,
    )  # fmt: skip
    return jsonable_encoder(added)


@router.get(FILES + "/merged", **access(Perm.VIEW, "app"))
async def merged(
    app: str, server: str, name: str, node: str, actor: ActorDep, platform: PlatformDep
) -> Any:
    """What the instance on ``node`` gets for file ``name`` (references, server and node
    files joined)."""
    return dataclasses.asdict(await configs.merged(platform, actor, app, server, name, node))


@router.get(FILE, **access(Perm.VIEW, "app"))
async def get_file(
    app: str, server: str, file_id: int, actor: ActorDep, platform: PlatformDep
) -> Any:
    """One file with its content."""
    return jsonable_encoder(await configs.file(platform, actor, app, server, file_id))


@router.put(FILE, **access(Perm.CONFIG_EDIT, "app"))
async def edit_file(
    app: str, server: str, file_id: int, body: FileChange, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Replace the content (a reason is required); the new content becomes a version."""
    changed = await configs.edit_file(
        platform, actor, app, server, file_id, body.content, body.reason
    )
    return jsonable_encoder(changed)


@router.delete(FILE, status_code=204, **access(Perm.CONFIG_EDIT, "app"))
async def delete_file(
    app: str, server: str, file_id: int, actor: ActorDep, platform: PlatformDep
) -> Response:
    """Delete the file and its history; 409 while other files reference it."""
    await configs.delete_file(platform, actor, app, server, file_id)
    return Response(status_code=204)


@router.get(FILE + "/history", **access(Perm.VIEW, "app"))
async def history(
    app: str, server: str, file_id: int, actor: ActorDep, platform: PlatformDep
) -> Any:
    """The file's versions, newest first."""
    found = await configs.history(platform, actor, app, server, file_id)
    return {"items": jsonable_encoder(found), "total": len(found)}


@router.get(FILE + "/history/{version_id}", **access(Perm.VIEW, "app"))
async def version(
    app: str, server: str, file_id: int, version_id: int, actor: ActorDep, platform: PlatformDep
) -> Any:
    """One version with its content."""
    found = await configs.version(platform, actor, app, server, file_id, version_id)
    return jsonable_encoder(found)


@router.get(FILE + "/diff", **access(Perm.VIEW, "app"))
async def diff(
    app: str,
    server: str,
    file_id: int,
    old: int,
    actor: ActorDep,
    platform: PlatformDep,
    new: int | None = None,
) -> Any:
    """From version ``old`` to version ``new`` (default: the content now): a unified diff
    and side-by-side rows."""
    found = await configs.diff(platform, actor, app, server, file_id, old, new)
    return {**dataclasses.asdict(found), "same": found.same}


@router.post(FILE + "/history/{version_id}/restore", **access(Perm.CONFIG_EDIT, "app"))
async def restore(
    app: str,
    server: str,
    file_id: int,
    version_id: int,
    body: Restore,
    actor: ActorDep,
    platform: PlatformDep,
) -> Any:
    """Make the version the file's content again (a new version itself)."""
    after = await configs.restore(platform, actor, app, server, file_id, version_id, body.reason)
    return jsonable_encoder(after)


@router.post(FILE + "/push", **access(Perm.CONFIG_PUSH, "app"))
async def push(
    app: str, server: str, file_id: int, body: Push, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Have the instances load the file again (``tars.loadconfig``): each one's answer."""
    f = await configs.file(platform, actor, app, server, file_id)
    answers = await configs.push(platform, actor, app, server, f.name, body.nodes)
    return {"file": f.name, "instances": jsonable_encoder(answers)}
