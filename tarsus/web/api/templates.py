"""``/api/v1/templates``: configuration templates with their parent chain and merged view."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from tarsus.ops import templates
from tarsus.ops.access import Perm
from tarsus.web.params import PageDep, PlatformDep, page_json
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["templates"])


class TemplateBody(BaseModel):
    #: the template it inherits from ("" none)
    parent: str = ""
    #: its own TC_Config text
    profile: str
    #: also change a built-in template (tars.default...)
    force: bool = False


@router.get("/templates", **access(Perm.VIEW, "global"))
async def list_templates(actor: ActorDep, platform: PlatformDep, page: PageDep) -> Any:
    """Templates by name (``q``: name or parent)."""
    return page_json(await templates.list_templates(platform, actor, page))


@router.get("/templates/{name}", **access(Perm.VIEW, "global"))
async def get_template(name: str, actor: ActorDep, platform: PlatformDep) -> Any:
    """A template as stored, merged with its parents, its chain and its children."""
    return jsonable_encoder(dataclasses.asdict(await templates.get(platform, actor, name)))


@router.put("/templates/{name}", **access(Perm.ADMIN, "global"))
async def save_template(
    name: str, body: TemplateBody, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Create or replace a template."""
    saved = await templates.save(platform, actor, name, body.parent, body.profile, force=body.force)
    return jsonable_encoder(saved)


@router.delete("/templates/{name}", status_code=204, **access(Perm.ADMIN, "global"))
async def delete_template(name: str, actor: ActorDep, platform: PlatformDep) -> Response:
    """Delete a template; 409 while something uses it."""
    await templates.delete(platform, actor, name)
    return Response(status_code=204)
