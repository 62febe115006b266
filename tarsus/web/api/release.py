"""``/api/v1/servers/{app}/{server}/...``: packages, publish, rollback, publish history, tasks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from tarsus.ops import release, tasks
from tarsus.ops.access import Perm
from tarsus.ops.errors import Invalid
from tarsus.ops.paging import Page
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access
from tarsus.web.upload import UPLOAD_FIELD

router = APIRouter(prefix="/api/v1", tags=["release"])

SERVER = "/servers/{app}/{server}"

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {
                        UPLOAD_FIELD: {"type": "string", "format": "binary"},
                        "comment": {"type": "string"},
                        "md5": {"type": "string"},
                    },
                }
            }
        },
    }
}


class RolloutBody(BaseModel):
    #: nodes per batch (1: one after the other)
    batch: int = Field(1, ge=1, le=tasks.MAX_NODES)
    #: all chosen nodes at once (else serially, or in batches)
    parallel: bool = False
    #: each batch's traffic off, drained, patched, restored
    lossless: bool = False

    def rollout(self) -> release.Rollout:
        if self.parallel and self.batch > 1:
            raise Invalid("choose batch or parallel, not both")
        if self.batch > 1:
            return release.Rollout(serial=False, each=self.batch, lossless=self.lossless)
        return release.Rollout(serial=not self.parallel, lossless=self.lossless)


class PublishBody(RolloutBody):
    version: int = Field(ge=1)
    #: the instances' nodes; empty: every instance
    nodes: list[str] = Field(default_factory=list, max_length=tasks.MAX_NODES)
    comment: str = ""
    restart: bool = True
    #: publish to the first N nodes only; the answer's ``rest`` are left for later
    canary: int = Field(0, ge=0)


class RollbackBody(RolloutBody):
    nodes: list[str] = Field(default_factory=list, max_length=tasks.MAX_NODES)
    #: this version (default: each node's previous one)
    to: int | None = Field(None, ge=1)
    comment: str = "rollback"


@router.get(SERVER + "/packages", **access(Perm.VIEW, "app"))
async def list_packages(
    app: str, server: str, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Any:
    """The server's packages (versions), newest first, with where each is deployed."""
    return page_json(await release.packages(platform, actor, app, server, page))


_UPLOAD_ACCESS = access(Perm.UPLOAD, "app")
_UPLOAD_ACCESS["openapi_extra"] = {**_UPLOAD_ACCESS["openapi_extra"], **_UPLOAD_BODY}


@router.post(SERVER + "/packages", status_code=201, **_UPLOAD_ACCESS)
async def upload_package(
    app: str, server: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Upload a package (multipart, field ``suse``; ``md5`` checked if sent); its id is the
    version to publish."""
    async with request.app.state.uploads.receive(request) as form:
        if form.file is None:
            raise Invalid(f"no package: send it as {UPLOAD_FIELD}=@X.tgz")
        stored = await release.upload(
            platform, actor, app, server, form.file,
            comment=form.fields.get("comment", ""), client_md5=form.fields.get("md5", ""),
        )  # fmt: skip
    return jsonable_encoder(stored)


@router.delete(SERVER + "/packages/{package_id}", **access(Perm.UPLOAD, "app"))
async def delete_package(
    app: str, server: str, package_id: int, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Delete a package; 409 while an instance runs it."""
    return jsonable_encoder(await release.delete_package(platform, actor, app, server, package_id))


@router.put(SERVER + "/packages/{package_id}/default", **access(Perm.PUBLISH, "app"))
async def set_default(
    app: str, server: str, package_id: int, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Make the package the server's default."""
    return jsonable_encoder(await release.set_default(platform, actor, app, server, package_id))


@router.post(SERVER + "/publish", status_code=202, **access(Perm.PUBLISH, "app"))
async def publish(
    app: str, server: str, body: PublishBody, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Publish a version to instances as one task (``canary``: the first N only); follow it
    at ``.../tasks/{task}``."""
    started = await release.publish(
        platform, actor, app, server, body.version, body.nodes, body.rollout(),
        comment=body.comment, restart=body.restart, canary=body.canary,
    )  # fmt: skip
    return started.as_json()


@router.post(SERVER + "/rollback", status_code=202, **access(Perm.PUBLISH, "app"))
async def rollback(
    app: str, server: str, body: RollbackBody, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Put back each node's previous version (or ``to``): one task per version."""
    done = await release.rollback(
        platform, actor, app, server, body.nodes, to=body.to, rollout=body.rollout(),
        comment=body.comment,
    )  # fmt: skip
    return {"rollbacks": [s.as_json() for s in done]}


@router.get(SERVER + "/publishes", **access(Perm.VIEW, "app"))
async def publish_history(
    app: str, server: str, actor: ActorDep, platform: PlatformDep, page: PageDep
) -> Any:
    """The server's publish tasks, newest first, with each node's outcome."""
    found = await release.history(platform, actor, app, server, page)
    return page_json(Page.of([t.as_json() for t in found.items], found.total, page))


@router.get(SERVER + "/tasks/{task_no}", **access(Perm.VIEW, "app"))
async def task(app: str, server: str, task_no: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """A task of the server: its status and each node's status, percent and log."""
    return (await tasks.task(platform, actor, app, server, task_no)).as_json()
