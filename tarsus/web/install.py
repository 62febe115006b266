"""``GET /install/node.sh`` and ``GET /install/wheelhouse.tar``: a new node joins from here.

    curl -fsS http://FRAMEWORK:3000/install/node.sh | sh

``node.sh`` carries this framework's locator and the SHA-256 of the wheelhouse that
``tarsus install framework`` built in the data directory; it installs Tarsus on the new host
from those wheels alone and runs ``tarsus install node`` (docs/install.md, "Adding a node").
Neither holds a secret — the wheels are Tarsus and its public dependencies — so neither asks
for a token (upstream TarsWeb's ``/get_tarsnode`` does not either).

A secured install (one listening beyond loopback) also has ``POST /install/node-keys``: the
framework's access keys for a joining node (and, when its ports are TLS, the CA the node checks
them against), handed only to a caller that shows the join token
(``Authorization: Bearer``; ``<data-dir>/web/join-token``, printed by ``tarsus install
framework``): 401 without it, 403 with a wrong one, and nothing else answers with a secret.
``node.sh`` never holds the keys; ``tarsus install node`` fetches them when
``TARSUS_JOIN_TOKEN`` is set (docs/install.md, "Adding a node").
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from tarsus.install.wheelhouse import WHEELHOUSE_DIR, Wheelhouse, node_script
from tarsus.web.security import access
from tarsus.web.settings import WebSettings
from tarsus.web.token import TokenError, TokenFile

log = logging.getLogger("tarsus.web.install")

__all__ = ["install_router"]

_MISSING = (
    "this framework host has no wheelhouse for new nodes: run `tarsus install framework` "
    "on it (docs/install.md)\n"
)


def install_router(settings: WebSettings) -> APIRouter:
    router = APIRouter(prefix="/install", tags=["install"])
    house = Wheelhouse(settings.data_dir / WHEELHOUSE_DIR)

    @router.get("/node.sh", response_class=PlainTextResponse, **access(None, "public"))
    async def node_sh(request: Request) -> Response:
        """The shell script that installs a node of this framework."""
        sha = house.sha256()
        if sha is None or not house.archive.is_file():
            return PlainTextResponse(_MISSING, status_code=404)
        script = node_script(str(request.base_url), settings.locator, sha)
        return PlainTextResponse(script, media_type="text/x-shellscript")

    @router.get("/wheelhouse.tar", response_model=None, **access(None, "public"))
    async def wheelhouse() -> Response:
        """Tarsus and its dependencies as wheels, in one tar."""
        if not house.archive.is_file():
            return PlainTextResponse(_MISSING, status_code=404)
        return FileResponse(
            house.archive, media_type="application/x-tar", filename="wheelhouse.tar"
        )

    if settings.node_auth is not None:
        auth = settings.node_auth
        tokens = TokenFile(settings.join_token_file)

        # no console login: the join token, checked below, is the credential
        @router.post("/node-keys", response_model=None, **access(None, "public"))
        async def node_keys(request: Request) -> Response:
            """The framework's access keys, for a node that shows the join token."""
            header = request.headers.get("authorization", "")
            candidate = header[7:].strip() if header[:7].lower() == "bearer " else ""
            peer = request.client.host if request.client else "?"
            if not candidate:
                return PlainTextResponse(
                    "the join token is required (Authorization: Bearer TOKEN)\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            try:
                ok = tokens.matches(candidate)
            except TokenError as e:
                log.error("%s", e)
                return PlainTextResponse("the join token cannot be read here\n", status_code=500)
            if not ok:
                log.warning("node keys refused to %s: wrong join token", peer)
                return PlainTextResponse("the join token is not valid\n", status_code=403)
            keys: dict[str, object] = {
                "accesskey": auth.credentials.access_key,
                "secretkey": auth.credentials.secret_key,
                "objects": list(auth.objects),
            }
            if auth.tls is not None and auth.tls.ca:
                # the CA the node checks the framework's ssl endpoints against
                try:
                    keys["ca"] = Path(auth.tls.ca).read_text(encoding="ascii")
                except (OSError, UnicodeDecodeError) as e:
                    log.error("the framework's CA cannot be read for a joining node: %s", e)
                    return PlainTextResponse("the framework's CA cannot be read here\n", 500)
            log.info("node keys handed to %s", peer)
            return JSONResponse(keys, headers={"Cache-Control": "no-store"})

    return router
