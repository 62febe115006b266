"""Configuration templates (``t_profile_template``): list, read with their parent chain and
merged view, create, edit, delete.

Through the admin registry's ``AdminExt`` (``listProfileTemplates``, ``getRawProfileTemplate``,
``setProfileTemplate``/``forceProfileTemplate``, ``deleteProfileTemplate``) and ``AdminReg``'s
``getProfileTemplate`` (the merged view), as ``tarsus template`` does: the admin registry
checks the text (TC_Config), the parent (it must exist, no loop), refuses to change a built-in
template unless forced and to delete one still in use. Reading needs ``view`` on ``*`` (the
deploy form lists their names to whoever may deploy); changing needs ``admin``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tarsus.ops import adminreg, audit
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import Denied, Invalid, NotFound
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.platform import Platform
from tarsus.protocol.gen import TarsusAdmin

__all__ = ["Template", "TemplateDetail", "delete", "get", "list_templates", "save"]

MAX_NAME = 128
MAX_PROFILE = 1024 * 1024
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
#: deleteProfileTemplate's 1004 is about use, not a server's state
_IN_USE = {1004: "the template is still in use"}


@dataclass(frozen=True)
class Template:
    name: str
    #: "" none; the name itself for a root (tars.default)
    parent: str
    post_time: str
    last_user: str


@dataclass(frozen=True)
class TemplateDetail:
    template: Template
    #: its own text, as stored
    profile: str
    #: with everything it inherits (the admin registry's merge)
    merged: str
    #: itself, its parent, ... up to the root
    chain: list[str] = field(default_factory=list)
    #: templates whose parent it is
    children: list[str] = field(default_factory=list)


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not set(name) <= _NAME_CHARS:
        raise Invalid(
            f"template name {name[:40]!r}: 1..{MAX_NAME} letters, digits, '.', '_' or '-'"
        )
    return name


def _row(t: TarsusAdmin.ProfileTemplate) -> Template:
    return Template(str(t.name), str(t.parentName), str(t.postTime), str(t.lastUser))


def _can_read(actor: Actor) -> None:
    actor.require(Perm.VIEW)  # on *: templates are the platform's


async def _all(platform: Platform) -> list[Template]:
    async with adminreg.calling("listing the templates"):
        code, found, result = await adminreg.ext(platform).listProfileTemplates()
    if code != 0:
        raise adminreg.refusal("listing the templates", code, result)
    return sorted((_row(t) for t in found), key=lambda t: t.name)


async def list_templates(platform: Platform, actor: Actor, query: PageQuery) -> Page[Template]:
    """By name; ``q`` matches the name or the parent."""
    _can_read(actor)
    q = query.q.lower()
    found = [t for t in await _all(platform) if q in t.name.lower() or q in t.parent.lower()]
    return Page.of(found[query.offset : query.offset + query.size], len(found), query)


async def names(platform: Platform, actor: Actor) -> list[str]:
    """Every template's name, for whoever may deploy somewhere (the deploy form)."""
    if not actor.can_somewhere(Perm.OPERATE):
        raise Denied(f"{actor.uid} may not deploy anything")
    return [t.name for t in await _all(platform)]


async def get(platform: Platform, actor: Actor, name: str) -> TemplateDetail:
    _can_read(actor)
    name = check_name(name)
    ext = adminreg.ext(platform)
    doing = f"reading template {name}"
    async with adminreg.calling(doing):
        code, tpl, result = await ext.getRawProfileTemplate(name)
    if code != 0:
        if code == -1:
            raise NotFound(f"no template {name!r}")
        raise adminreg.refusal(doing, code, result)
    async with adminreg.calling(doing):
        code, merged, result = await adminreg.admin(platform).getProfileTemplate(name)
    if code != 0:
        raise adminreg.refusal(f"merging template {name}", code, result)
    every = {t.name: t for t in await _all(platform)}
    chain = [name]
    while True:
        parent = every[chain[-1]].parent if chain[-1] in every else ""
        if not parent or parent in chain:
            break
        chain.append(parent)
    children = sorted(t.name for t in every.values() if t.parent == name and t.name != name)
    return TemplateDetail(_row(tpl), str(tpl.profile), str(merged), chain, children)


async def save(
    platform: Platform,
    actor: Actor,
    name: str,
    parent: str,
    profile: str,
    *,
    force: bool = False,
) -> Template:
    """Create or replace ``name`` (its parent and its own text); ``force`` changes a built-in."""
    actor.require(Perm.ADMIN)
    name = check_name(name)
    parent = check_name(parent) if parent.strip() else ""
    if len(profile.encode()) > MAX_PROFILE:
        raise Invalid(f"the template's text is over {MAX_PROFILE} bytes")
    ext = adminreg.ext(platform)
    doing = f"setting template {name}"
    async with adminreg.calling(doing):
        code, old, _ = await ext.getRawProfileTemplate(name)
    before = {"parent": str(old.parentName), "profile": str(old.profile)} if code == 0 else None
    tpl = TarsusAdmin.ProfileTemplate(name=name, parentName=parent, profile=profile)
    async with adminreg.calling(doing):
        if force:
            code, result = await ext.forceProfileTemplate(tpl, actor.uid)
        else:
            code, result = await ext.setProfileTemplate(tpl, actor.uid)
    if code != 0:
        raise adminreg.refusal(doing, code, result)
    await audit.record(
        platform,
        actor,
        "template.update" if before else "template.create",
        name,
        before=before,
        after={"parent": parent, "profile": profile, "forced": force},
    )
    return Template(name, parent, "", actor.uid)


async def delete(platform: Platform, actor: Actor, name: str) -> None:
    """Refused (409) while a server, node or template uses it."""
    actor.require(Perm.ADMIN)
    name = check_name(name)
    ext = adminreg.ext(platform)
    doing = f"deleting template {name}"
    async with adminreg.calling(doing):
        found, old, _ = await ext.getRawProfileTemplate(name)
    async with adminreg.calling(doing):
        code, result = await ext.deleteProfileTemplate(name)
    if code != 0:
        error = adminreg.refusal(doing, code, result, _IN_USE)
        if found != 0:  # there was none to delete: the admin registry's words, as a 404
            error = NotFound(error.message)
            error.code, error.result = code, result
        raise error
    await audit.record(
        platform,
        actor,
        "template.delete",
        name,
        before={"parent": str(old.parentName), "profile": str(old.profile)},
    )
