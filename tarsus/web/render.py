"""Pages rendered on the server: Jinja2 templates under ``tarsus/web/templates`` (autoescaped),
the words from the catalog (:mod:`tarsus.web.i18n`), htmx for partial updates (no build step,
no outside host)."""

from __future__ import annotations

from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from tarsus.ops.access import Actor
from tarsus.web.i18n import catalog
from tarsus.web.nav import visible
from tarsus.web.security import CSRF_FIELD

__all__ = ["ENV", "is_htmx", "render"]

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("tarsus.web", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def is_htmx(request: Request) -> bool:
    """Asked by htmx for a fragment (``HX-Request``), not a whole page."""
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    *,
    actor: Actor | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` with the frame's context: ``t`` (the catalog), ``actor``, ``csrf`` (and
    ``csrf_field``, the form field's name), ``nav``, ``path``, ``query``."""
    words = catalog(request.headers.get("accept-language", ""), request.cookies.get("lang", ""))
    from tarsus.web.pages import NAV  # the page modules import this module

    html = ENV.get_template(template).render(
        t=words.text,
        lang=words.lang,
        actor=actor,
        csrf=actor.csrf if actor is not None else "",
        csrf_field=CSRF_FIELD,
        nav=visible(NAV, actor) if actor is not None else [],
        path=request.url.path,
        query=request.query_params,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=headers)
