"""The HTTP app under uvicorn, inside an asyncio program (``tarsus web``, ``tarsus up``).

uvicorn is embedded rather than run: the listening socket is bound here (so a port already
taken is an ``OSError`` at :meth:`WebServer.start`, not an exit of the process), its signal
handling is left to the program (``tarsus up`` has its own), and so is logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from tarsus.store import Store
from tarsus.web.app import create_app
from tarsus.web.publish import Framework
from tarsus.web.settings import WebSettings
from tarsus.web.token import ensure_token

__all__ = ["WebServer"]

log = logging.getLogger("tarsus.web.server")

#: seconds a stop waits for requests in progress (an upload being published) to finish
STOP_GRACE = 5.0


class _Embedded(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the program owns SIGINT/SIGTERM


class WebServer:
    """Start with :meth:`start`, stop with :meth:`stop` (or ``async with``). ``store``: an
    open store to use (``tarsus up`` shares its own); else the app opens ``settings.db_url``."""

    def __init__(
        self,
        settings: WebSettings,
        framework: Framework | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self._framework = framework
        self._store = store
        self._server: _Embedded | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        #: the token scripts authenticate with (read or generated at start)
        self.token = ""
        #: the ASGI app (made at :meth:`start`)
        self.app: Any = None
        #: the first ``admin``'s generated password, when this start created it (show once)
        self.admin_password: str | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None, "not started"
        return int(self._sock.getsockname()[1])

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task serving requests (None before :meth:`start`); done once it stopped."""
        return self._task

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    async def start(self) -> None:
        """Bind, then serve until :meth:`stop`. ``OSError`` when the port is taken,
        :class:`~tarsus.web.token.TokenError` when the token file cannot be made."""
        s = self.settings
        self.token = ensure_token(s.token_file)
        _clear_incoming(s.incoming_dir)
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        self._sock = socket.create_server((s.host, s.port), family=family, backlog=128)
        # Accepted connections inherit it: without, a keep-alive response written in two parts
        # (headers, body) waits for the client's delayed ACK, ~40 ms per request.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        app = self.app = create_app(s, self._framework, self._store)
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(STOP_GRACE),
            server_header=False,
        )
        self._server = _Embedded(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the web server stopped during start-up")
            await asyncio.sleep(0.01)
        self.admin_password = getattr(app.state, "admin_password", None)

    async def stop(self) -> None:
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is not None and task is not None:
            server.should_exit = True
            try:
                await task
            except (Exception, SystemExit) as e:
                log.warning("the web server stopped with an error: %s", e)
        if self._sock is not None:
            self._sock.close()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _clear_incoming(directory: Path) -> None:
    """Uploads a crash left half received are removed; the directory is only ours."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.part"):
        with contextlib.suppress(OSError):
            leftover.unlink()
