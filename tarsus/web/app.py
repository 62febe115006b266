"""The ASGI app: routes, authentication, and refusals as plain text with a 4xx status.

FastAPI (over Starlette): the console's REST API to come gets its OpenAPI document and its
checks from typed handlers. No interactive docs page is served (it would load scripts from an
outside host); ``/openapi.json`` is.

Routes today (docs/web.md):

* ``POST /api/upload_and_publish`` — upstream TarsWeb's script API (also under upstream's
  second prefix, ``/pages/server/api/``), answered in plain text.
* ``GET /metrics`` — calls, properties and server states for Prometheus
  (``tarsus.web.metrics``, docs/monitoring.md); no token, as scrapers expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.requests import ClientDisconnect

import tarsus
from tarsus.codec.constants import QUERY_PROPERTY_OBJ, QUERY_STAT_OBJ
from tarsus.web.form import FormError, FormLimits, receive_form
from tarsus.web.metrics import CONTENT_TYPE, MetricsSource, render
from tarsus.web.publish import (
    Framework,
    PublishError,
    PublishRequest,
    check_fields,
    upload_and_publish,
)
from tarsus.web.settings import WebSettings
from tarsus.web.token import TokenError, TokenFile

__all__ = ["UPLOAD_FIELD", "UPLOAD_USER", "create_app"]

log = logging.getLogger("tarsus.web")

#: the file field upstream's upload form and ``make upload`` send
UPLOAD_FIELD = "suse"
#: who uploaded, while the token file is the only credential (upstream: ``auto-developer``)
UPLOAD_USER = "web-token"
#: bytes the multipart framing and the text fields may add to the package's size
FORM_OVERHEAD = 64 * 1024

_UPLOAD_OPENAPI: dict[str, Any] = {
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


def _authenticate(request: Request, tokens: TokenFile) -> None:
    """Upstream's ``?ticket=``, or ``Authorization: Bearer``; 401 without one, 403 for a
    wrong one."""
    candidate = request.query_params.get("ticket", "")
    header = request.headers.get("authorization", "")
    if not candidate and header[:7].lower() == "bearer ":
        candidate = header[7:].strip()
    if not candidate:
        raise Refused(
            401,
            "authentication required: add ?ticket=TOKEN (the token: `tarsus web token`)",
            {"WWW-Authenticate": "Bearer"},
        )
    try:
        ok = tokens.matches(candidate)
    except TokenError as e:
        log.error("%s", e)
        raise Refused(500, "the server's token file cannot be read; see its log") from None
    if not ok:
        raise Refused(403, "the ticket is not valid")


def create_app(settings: WebSettings, framework: Framework | None = None) -> FastAPI:
    """The app; ``framework`` (the framework services' client) is made from ``settings``
    when not given, and closed with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = framework or Framework(settings)
        app.state.framework = client
        app.state.metrics = MetricsSource(
            client.comm,
            client.admin,
            query_stat=settings.query_stat or QUERY_STAT_OBJ,
            query_property=settings.query_property or QUERY_PROPERTY_OBJ,
        )
        try:
            yield
        finally:
            if framework is None:
                await client.close()

    app = FastAPI(
        title="Tarsus web",
        version=tarsus.__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    tokens = TokenFile(settings.token_file)
    uploads = asyncio.Semaphore(settings.max_concurrent_uploads)
    limits = FormLimits(max_file=settings.max_upload, file_fields=frozenset({UPLOAD_FIELD}))

    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused) -> PlainTextResponse:
        return _text(exc.status, exc.message, exc.headers)

    async def upload_and_publish_route(request: Request) -> PlainTextResponse:
        """Upload a package and publish it to the server's instances (upstream TarsWeb's
        script API: ``curl 'http://HOST:3000/api/upload_and_publish?ticket=TOKEN'
        -Fsuse=@X.tgz -Fapplication=App -Fmodule_name=Server -Fcomment=...``)."""
        _authenticate(request, tokens)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_upload + FORM_OVERHEAD:
            raise Refused(
                413,
                f"the upload is {declared} bytes: larger than the limit of "
                f"{settings.max_upload} bytes for a package",
            )
        if uploads.locked():
            raise Refused(429, "too many uploads in progress; try again shortly")
        async with uploads:
            return await _receive_and_publish(request)

    async def _receive_and_publish(request: Request) -> PlainTextResponse:
        try:
            form = await receive_form(
                request.stream(),
                request.headers.get("content-type", ""),
                settings.incoming_dir,
                limits,
            )
        except FormError as e:
            return _text(e.status, e.message)
        except ClientDisconnect:
            return _text(400, "the client went away during the upload")
        try:
            application, server, comment, restart = check_fields(form.fields)
            if form.file is None:
                raise PublishError(400, f"no package: send it as {UPLOAD_FIELD}=@X.tgz")
            framework: Framework = request.app.state.framework
            answer = await upload_and_publish(
                framework,
                PublishRequest(
                    application=application,
                    server=server,
                    comment=comment,
                    restart=restart,
                    package=form.file,
                    user=UPLOAD_USER,
                    client_md5=form.fields.get("md5", ""),
                ),
                settings,
            )
            log.info(
                "upload_and_publish %s.%s from %s: %d",
                application,
                server,
                request.client.host if request.client else "?",
                answer.status,
            )
            return _text(answer.status, answer.text)
        except PublishError as e:
            return _text(e.status, e.message)
        finally:
            form.discard()

    @app.get("/metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        """The Prometheus exposition (docs/monitoring.md, "Prometheus")."""
        source: MetricsSource = request.app.state.metrics
        return Response(render(await source.snapshot()), media_type=CONTENT_TYPE)

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
    return app
