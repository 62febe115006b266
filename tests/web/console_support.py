"""A console for tests: ``tarsus web`` (real uvicorn on a free port) over a SQLite store in a
temporary directory, with users of every kind and a few instances; logged-in clients.

Used by the console's tests (tests/web/test_console_*.py) and meant for the page tests of
other domains: ``console.login("admin")`` is an ``httpx.Client`` with the session cookie and
the CSRF header set; ``console.run(coro)`` runs on the server's loop (seed the store there).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from tarsus.ops.access import Actor
from tarsus.ops.platform import Platform
from tarsus.ops.users import create_user
from tarsus.store import Store, open_store
from tarsus.store.schema import t_server_conf, t_web_audit, t_web_grant, t_web_token, t_web_user
from tarsus.store.servers import ServerSpec
from tarsus.testing import LoopThread
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings

ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "a-long-enough-password"

#: user -> grants ``(role, scope)``: one of each kind the access rules tell apart
USERS: dict[str, list[tuple[str, str]]] = {
    "op_other": [("operator", "Other")],  # operator of another application
    "dev_zapp": [("developer", "Zapp.Secretserver")],  # may only look at Zapp's server
    "nobody": [],  # logged in, granted nothing
}
#: instances: Zapp.Secretserver (only admin and dev_zapp see it) and Other.Visible
INSTANCES = [
    ("Zapp", "Secretserver", "10.9.0.1"),
    ("Zapp", "Secretserver", "10.9.0.2"),
    ("Other", "Visible", "10.9.0.3"),
]


class Console:
    def __init__(self, tmp: Path) -> None:
        self.loop = LoopThread("console-test")
        password_file = tmp / "admin-password"
        password_file.write_text(ADMIN_PASSWORD + "\n")
        self.settings = WebSettings(
            data_dir=tmp, port=0, admin_password_file=password_file, rpc_timeout_ms=1000
        )
        self.store: Store = self.loop.run(open_store(data_dir=tmp))
        self.server = WebServer(self.settings, store=self.store)
        self.loop.run(self.server.start())
        self.url = self.server.url
        self.platform = Platform(self.store)
        self.loop.run(self._seed())

    async def _seed(self) -> None:
        root = Actor.local("test")
        for uid, grants in USERS.items():
            await create_user(self.platform, root, uid, PASSWORD, grants)
        for app, server, node in INSTANCES:
            await self.store.servers.deploy(ServerSpec(app, server, node), [])

    def run(self, aw: Any) -> Any:
        return self.loop.run(aw)

    def close(self) -> None:
        self.loop.run(self.server.stop())
        self.loop.run(self.store.close())
        self.loop.close()

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, **kwargs)

    def login(self, uid: str, password: str | None = None) -> httpx.Client:
        """A client logged in as ``uid`` (through the JSON API), CSRF header set."""
        c = self.client()
        if password is None:
            password = ADMIN_PASSWORD if uid == "admin" else PASSWORD
        r = c.post("/api/v1/session", json={"uid": uid, "password": password})
        assert r.status_code == 201, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        return c

    def token(self, uid: str, scopes: str = "*", flag: str = "*") -> str:
        with closing(self.login(uid)) as c:
            r = c.post(
                "/api/v1/tokens",
                json={"name": f"t-{scopes}-{flag}", "scopes": scopes, "flag": flag},
            )
            assert r.status_code == 201, r.text
            return str(r.json()["token"])

    def digest(self) -> str:
        """A fingerprint of what the console can change (token use times left out)."""

        async def read() -> str:
            h = hashlib.sha256()
            async with self.store.connect() as conn:
                for table in (t_web_user, t_web_grant, t_server_conf):
                    for row in await conn.execute(select(table).order_by(table.c.id)):
                        h.update(repr(tuple(row)).encode())
                for row in await conn.execute(
                    select(t_web_token.c.id, t_web_token.c.enabled, t_web_token.c.uid)
                ):
                    h.update(repr(tuple(row)).encode())
                for row in await conn.execute(select(t_web_audit.c.id, t_web_audit.c.action)):
                    h.update(repr(tuple(row)).encode())
            return h.hexdigest()

        return str(self.run(read()))


@contextmanager
def running_console(tmp: Path) -> Iterator[Console]:
    console = Console(tmp)
    try:
        yield console
    finally:
        console.close()


def form_csrf(html: str) -> str:
    """The CSRF field of the first form in a page."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)
