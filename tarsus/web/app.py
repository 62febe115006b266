"""The ASGI app: the console's pages and REST API, the script API, and ``/metrics``.

FastAPI (over Starlette). The pages (:mod:`tarsus.web.pages`) and the REST API under
``/api/v1`` (:mod:`tarsus.web.api`) are found per domain and added here; each route declares
its access (:func:`tarsus.web.security.access`). Errors of the service layer answer
``{"error": message}`` with their status on API paths, an error page (or the login page) on
page paths. ``/openapi.json`` and ``/docs`` (a page of our own, no outside host) describe the
API. docs/console.md.

Routes of the script era (docs/web.md):

* ``POST /api/upload_and_publish`` — upstream TarsWeb's script API (also under upstream's
  second prefix, ``/pages/server/api/``), answered in plain text.
* ``GET /metrics`` — calls, properties and server states for Prometheus
  (``tarsus.web.metrics``, docs/monitoring.md); no token, as scrapers expect.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

import tarsus
from tarsus.codec.constants import QUERY_PROPERTY_OBJ, QUERY_STAT_OBJ
from tarsus.ops import release
from tarsus.ops.access import Actor, Perm
from tarsus.ops.errors import OpError, Unauthenticated
from tarsus.ops.platform import Platform
from tarsus.ops.sessions import LoginThrottle
from tarsus.ops.users import ensure_admin
from tarsus.store import Store, open_store
from tarsus.store import errors as store_errors
from tarsus.web import api, pages
from tarsus.web.install import install_router
from tarsus.web.metrics import CONTENT_TYPE, MetricsSource
from tarsus.web.metrics import render as render_metrics
from tarsus.web.publish import Framework, check_fields
from tarsus.web.render import render
from tarsus.web.security import (
    ACCESS_KEY,
    SCRIPT_TOKEN_USER,
    access,
    current_actor,
    make_signer,
    wants_json,
)
from tarsus.web.settings import WebSettings
from tarsus.web.token import TokenFile, ensure_token
from tarsus.web.upload import UPLOAD_FIELD, PackageUploads

__all__ = ["PUBLIC_MOUNTS", "UPLOAD_FIELD", "UPLOAD_USER", "create_app", "routes"]

log = logging.getLogger("tarsus.web")

#: who uploads with the script token file (upstream: ``auto-developer``)
UPLOAD_USER = SCRIPT_TOKEN_USER

#: routes that are not API routes (so declare no access) and are public: the OpenAPI
#: document and the static assets (htmx, the stylesheet)
PUBLIC_MOUNTS = frozenset({"/openapi.json", "/static"})
#: store errors reaching the web, as the service layer's statuses
_STORE_STATUS: dict[type[Exception], int] = {
    store_errors.InvalidInput: 400,
    store_errors.NotFound: 404,
    store_errors.Conflict: 409,
    store_errors.StoreUnavailable: 503,
}

_UPLOAD_OPENAPI: dict[str, Any] = {
    ACCESS_KEY: {"perm": Perm.PUBLISH.value, "target": "form"},
    "parameters": [
        {"name": "ticket", "in": "query", "required": False, "schema": {"type": "string"}}
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD, "application", "module_name"],
                    "properties": {
                        UPLOAD_FIELD: {"type": "string", "format": "binary"},
                        "application": {"type": "string"},
                        "module_name": {"type": "string"},
                        "comment": {"type": "string"},
                        "restart": {"type": "string", "enum": ["0", "1"]},
                        "md5": {"type": "string"},
                    },
                }
            }
        },
    },
    "responses": {"200": {"content": {"text/plain": {}}}},
}


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> PlainTextResponse:
    return PlainTextResponse(message.rstrip("\n") + "\n", status_code=status, headers=headers)


async def _authenticate(request: Request) -> Actor:
    """The script API's caller: upstream's ``?ticket=``, or ``Authorization: Bearer`` (the
    script token file, or an API token); 401 without one, 403 for a wrong one, and 403 for
    an actor that may upload nowhere — before the body is read."""
    header = request.headers.get("authorization", "")
    if not request.query_params.get("ticket", "") and header[:7].lower() != "bearer ":
        raise Refused(
            401,
            "authentication required: add ?ticket=TOKEN (the token: `tarsus web token`)",
            {"WWW-Authenticate": "Bearer"},
        )
    try:
        actor = await current_actor(request)
    except Unauthenticated:
        raise Refused(403, "the ticket is not valid") from None
    if not (actor.can_somewhere(Perm.UPLOAD) and actor.can_somewhere(Perm.PUBLISH)):
        raise Refused(403, f"{actor.uid} may not upload and publish")
    return actor


def create_app(
    settings: WebSettings, framework: Framework | None = None, store: Store | None = None
) -> FastAPI:
    """The app; ``framework`` (the framework services' client) and ``store`` are made from
    ``settings`` when not given, and closed with the app. At its first start with an empty
    store it creates ``admin``; a generated password is in ``app.state.admin_password``
    (shown once by whoever started it)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = framework or Framework(settings)
        db = store or await open_store(settings.db_url, data_dir=settings.data_dir)
        app.state.framework = client
        app.state.platform = Platform(
            db,
            client.comm,
            client.admin,
            client.ext,
            client.patch,
            client.config,
            query_stat=settings.query_stat or QUERY_STAT_OBJ,
            query_property=settings.query_property or QUERY_PROPERTY_OBJ,
        )
        app.state.admin_password = await ensure_admin(
            app.state.platform, settings.admin_password_file
        )
        app.state.metrics = MetricsSource(
            client.comm,
            client.admin,
            query_stat=settings.query_stat or QUERY_STAT_OBJ,
            query_property=settings.query_property or QUERY_PROPERTY_OBJ,
        )
        try:
            yield
        finally:
            if store is None:
                await db.close()
            if framework is None:
                await client.close()

    app = FastAPI(
        title="Tarsus web",
        version=tarsus.__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.script_token = TokenFile(settings.token_file)
    #: a secured install's join token, in the console's "add a node" command (ops.nodes)
    app.state.join_token = TokenFile(settings.join_token_file) if settings.node_auth else None
    app.state.signer = make_signer(ensure_token(settings.secret_file))
    app.state.login_throttle = LoginThrottle()
    app.state.uploads = PackageUploads(settings)

    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused) -> PlainTextResponse:
        return _text(exc.status, exc.message, exc.headers)

    @app.exception_handler(OpError)
    async def op_error(request: Request, exc: OpError) -> Response:
        return _error(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(store_errors.StoreError)
    async def store_error(request: Request, exc: store_errors.StoreError) -> Response:
        status = next((v for k, v in _STORE_STATUS.items() if isinstance(exc, k)), 500)
        if status == 500:
            log.error("store error on %s: %s", request.url.path, exc)
        return _error(request, status, str(exc) if status != 500 else "database error; see the log")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def upload_and_publish_route(request: Request) -> PlainTextResponse:
        """Upload a package and publish it to the server's instances (upstream TarsWeb's
        script API: ``curl 'http://HOST:3000/api/upload_and_publish?ticket=TOKEN'
        -Fsuse=@X.tgz -Fapplication=App -Fmodule_name=Server -Fcomment=...``)."""
        actor = await _authenticate(request)
        try:
            async with request.app.state.uploads.receive(request) as form:
                application, server, comment, restart = check_fields(form.fields)
                if form.file is None:
                    raise Refused(400, f"no package: send it as {UPLOAD_FIELD}=@X.tgz")
                answer = await release.upload_and_publish(
                    request.app.state.platform,
                    actor,
                    application,
                    server,
                    form.file,
                    comment=comment,
                    restart=restart,
                    client_md5=form.fields.get("md5", ""),
                    field=form.file.field,
                    wait=settings.publish_wait,
                    poll_interval=settings.poll_interval,
                )
        except OpError as e:
            return _text(e.status, e.message, e.headers)
        log.info(
            "upload_and_publish %s.%s from %s: %d",
            application,
            server,
            request.client.host if request.client else "?",
            answer.status,
        )
        return _text(answer.status, answer.text)

    @app.get("/metrics", response_class=Response, **access(None, "public"))
    async def metrics(request: Request) -> Response:
        """The Prometheus exposition (docs/monitoring.md, "Prometheus")."""
        source: MetricsSource = request.app.state.metrics
        return Response(render_metrics(await source.snapshot()), media_type=CONTENT_TYPE)

    app.include_router(install_router(settings))  # new nodes: /install/node.sh (docs/install.md)
    for prefix in ("/api", "/pages/server/api"):
        app.add_api_route(
            f"{prefix}/upload_and_publish",
            upload_and_publish_route,
            methods=["POST"],
            response_class=PlainTextResponse,
            openapi_extra=_UPLOAD_OPENAPI,
            include_in_schema=prefix == "/api",
            name="upload_and_publish" if prefix == "/api" else None,
        )
    for router in (*api.routers(), *pages.routers()):
        app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("tarsus.web", "static")]), name="static")
    return app


def _error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """``{"error": message}`` on API paths; on pages the login page (401) or an error page."""
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    if status == 401:
        target = "/login?next=" + quote(request.url.path)
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    actor = getattr(request.state, "actor", None)
    return render(
        request, "error.html", actor=actor, status=status, headers=headers, message=message
    )


def routes(app: FastAPI) -> list[BaseRoute]:
    """Every route of the app, routers included (whether FastAPI copies an included router's
    routes onto the app, as before 0.16x, or keeps the router, as since)."""
    out: list[BaseRoute] = []
    pending = list(app.routes)
    while pending:
        route = pending.pop(0)
        included = getattr(route, "original_router", None)
        if included is not None:
            pending[0:0] = list(included.routes)
        else:
            out.append(route)
    return out
