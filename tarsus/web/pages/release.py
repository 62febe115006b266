"""``/release``: pick a server; ``/release/{app}/{server}``: its packages (upload with
progress, default, delete), its instances with their versions, publish (batches, lossless,
canary), rollback, and the publish history; a started task is shown live in place."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tarsus.ops import release, services, tasks
from tarsus.ops.access import Perm
from tarsus.ops.errors import Invalid
from tarsus.ops.paging import PageQuery
from tarsus.web.nav import NavItem
from tarsus.web.params import PageDep, PlatformDep
from tarsus.web.render import is_htmx, render
from tarsus.web.security import ActorDep, access
from tarsus.web.upload import UPLOAD_FIELD

router = APIRouter(include_in_schema=False)

NAV = (NavItem("operation", 30, "release.nav", "/release", Perm.VIEW),)

SERVER = "/release/{app}/{server}"


def _f(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _int(form: Any, name: str, default: int = 0) -> int:
    text = _f(form, name)
    if not text:
        return default
    if not text.isdigit():
        raise Invalid(f"{name} takes a number, not {text[:20]!r}")
    return int(text)


def _rollout(form: Any) -> release.Rollout:
    batch = _int(form, "batch", 1)
    lossless = _f(form, "lossless") == "1"
    if _f(form, "parallel") == "1":
        return release.Rollout(serial=False, each=1, lossless=lossless)
    return release.Rollout(serial=batch <= 1, each=max(batch, 1), lossless=lossless)


@router.get("/release", response_class=HTMLResponse, **access(Perm.VIEW, "any"))
async def pick(
    request: Request, actor: ActorDep, platform: PlatformDep, q: str = "", application: str = ""
) -> Response:
    apps = await services.tree(platform, actor, q.strip(), application or None)
    return render(
        request, "release/pick.html", actor=actor, tree=apps, q=q, base="/release",
        title="release.title",
    )  # fmt: skip


async def _context(
    platform: Any, actor: Any, app: str, server: str, page: PageQuery
) -> dict[str, Any]:
    found = await release.packages(platform, actor, app, server, page)
    insts = await services.instances(
        platform, actor, PageQuery(size=500), application=app, server_name=server
    )
    past = await release.history(platform, actor, app, server, PageQuery(size=10))
    return {
        "app": app, "server": server, "packages": found, "instances": insts.items,
        "history": past.items, "base": f"/release/{app}/{server}?size={page.size}",
        "target": "", "upload_field": UPLOAD_FIELD,
        "can_publish": actor.can(Perm.PUBLISH, app, server),
        "can_upload": actor.can(Perm.UPLOAD, app, server),
    }  # fmt: skip


@router.get(SERVER, response_class=HTMLResponse, **access(Perm.VIEW, "app"))
async def server_page(
    app: str,
    server: str,
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
    page: PageDep,
    task: str = "",
    rest: str = "",
    version: int = 0,
) -> Response:
    context = await _context(platform, actor, app, server, page)
    shown = await tasks.task(platform, actor, app, server, task) if task else None
    rest_nodes = [n for n in rest.split(",") if n]
    return render(
        request, "release/server.html", actor=actor, task=shown, rest=rest_nodes,
        version=version, error="", **context,
    )  # fmt: skip


@router.post(SERVER + "/upload", **access(Perm.UPLOAD, "app"))
async def upload(
    app: str, server: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    async with request.app.state.uploads.receive(request) as form:
        if form.file is None:
            raise Invalid("choose a package (.tgz) to upload")
        await release.upload(
            platform, actor, app, server, form.file, comment=form.fields.get("comment", "")
        )
    if is_htmx(request):
        found = await release.packages(platform, actor, app, server, PageQuery())
        return render(
            request, "release/packages.html", actor=actor, app=app, server=server,
            packages=found, base=f"/release/{app}/{server}?size=50", target="",
            can_publish=actor.can(Perm.PUBLISH, app, server),
            can_upload=actor.can(Perm.UPLOAD, app, server),
        )  # fmt: skip
    return RedirectResponse(f"/release/{app}/{server}", status_code=303)


def _to_task(app: str, server: str, started: release.Started) -> Response:
    task_no, _ = started.tasks[0]
    query = {"task": task_no}
    if started.rest:
        query |= {"rest": ",".join(started.rest), "version": str(started.version)}
    return RedirectResponse(f"/release/{app}/{server}?{urlencode(query)}", status_code=303)


@router.post(SERVER + "/publish", **access(Perm.PUBLISH, "app"))
async def publish(
    app: str, server: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    nodes = [n for n in form.getlist("node") if isinstance(n, str)]
    started = await release.publish(
        platform, actor, app, server, _int(form, "version"), nodes, _rollout(form),
        comment=_f(form, "comment"), restart=_f(form, "restart") != "0",
        canary=_int(form, "canary"),
    )  # fmt: skip
    return _to_task(app, server, started)


@router.post(SERVER + "/rollback", **access(Perm.PUBLISH, "app"))
async def rollback(
    app: str, server: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    form = await request.form()
    nodes = [n for n in form.getlist("node") if isinstance(n, str)]
    to = _int(form, "rollback_to") or None
    done = await release.rollback(
        platform, actor, app, server, nodes, to=to, rollout=_rollout(form),
        comment=_f(form, "comment") or "rollback",
    )  # fmt: skip
    return _to_task(app, server, done[0])


@router.post(SERVER + "/packages/{package_id}/default", **access(Perm.PUBLISH, "app"))
async def set_default(
    app: str, server: str, package_id: int, actor: ActorDep, platform: PlatformDep
) -> Response:
    await release.set_default(platform, actor, app, server, package_id)
    return RedirectResponse(f"/release/{app}/{server}", status_code=303)


@router.post(SERVER + "/packages/{package_id}/delete", **access(Perm.UPLOAD, "app"))
async def delete_package(
    app: str, server: str, package_id: int, actor: ActorDep, platform: PlatformDep
) -> Response:
    await release.delete_package(platform, actor, app, server, package_id)
    return RedirectResponse(f"/release/{app}/{server}", status_code=303)
