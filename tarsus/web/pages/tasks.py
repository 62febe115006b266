"""A task's live progress: ``/tasks/{task_no}``, the one page for every admin registry task
(start, stop, restart of many from the server's page; publish and rollback, which the publish
page also shows in place through the same fragment).

The page shows each item: instance, command (and version), status, percent, the node's answer,
start and end. While the task runs its fragment asks for itself again every 2 s (htmx,
``hx-trigger="every 2s"``; upstream's console polls as often) and stops once every item
finished. Without JavaScript the page refreshes itself (``<meta http-equiv="refresh">``) until
then. Other pages include ``tasks/progress.html`` to show a task in place. The caller must be
able to view every server the task touches (:func:`tarsus.ops.tasks.view_task`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tarsus.ops import tasks
from tarsus.ops.access import Perm
from tarsus.web.params import PlatformDep
from tarsus.web.render import is_htmx, render
from tarsus.web.security import ActorDep, access

__all__ = ["router", "task_path"]

router = APIRouter(include_in_schema=False)


def task_path(task_no: str) -> str:
    """Where a task's progress page (and its fragment) is."""
    return f"/tasks/{task_no}"


@router.get("/tasks/{task_no}", response_class=HTMLResponse, **access(Perm.VIEW, "form"))
async def task_page(
    task_no: str, request: Request, actor: ActorDep, platform: PlatformDep
) -> Response:
    outcome = await tasks.view_task(platform, actor, task_no)
    servers = sorted({(i.application, i.server) for i in outcome.items})
    template = "tasks/progress.html" if is_htmx(request) else "tasks/page.html"
    return render(request, template, actor=actor, task=outcome, servers=servers)
