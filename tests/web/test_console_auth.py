"""Logging in and out through the pages, the login rate limit, password change, API tokens
(Bearer and ?ticket=, scopes, target, expiry, disabling, last use), the audit log, paging and
search of the instance list, hostile input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest
from console_support import ADMIN_PASSWORD, PASSWORD, Console, form_csrf, running_console
from sqlalchemy import update

from tarsus.store.schema import t_web_token


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory.mktemp("console")) as c:
        yield c


def _page_login(console: Console, uid: str, password: str, nxt: str = "/services") -> tuple:
    c = console.client()
    page = c.get("/login", params={"next": nxt})
    assert page.status_code == 200
    r = c.post(
        "/login",
        data={"uid": uid, "password": password, "csrf_token": form_csrf(page.text), "next": nxt},
    )
    return c, r


def test_login_through_the_page_logout_ends_the_session(console: Console) -> None:
    c, r = _page_login(console, "admin", ADMIN_PASSWORD)
    with closing(c):
        assert r.status_code == 303 and r.headers["location"] == "/services"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        page = c.get("/services")
        assert page.status_code == 200 and "Secretserver" in page.text
        stolen = dict(c.cookies)
        out = c.post("/logout", data={"csrf_token": form_csrf(page.text)})
        assert out.status_code == 303
    with console.client(cookies=stolen) as replay:  # the old cookie is worth nothing now
        assert replay.get("/services").status_code == 303
        assert replay.get("/api/v1/me").status_code == 401


def test_login_form_needs_its_csrf_token_and_refuses_an_open_redirect(console: Console) -> None:
    with console.client() as c:
        r = c.post("/login", data={"uid": "admin", "password": ADMIN_PASSWORD})
        assert (
            r.status_code == 403 and "Set-Cookie" not in r.headers
        ) or "tarsus_session" not in r.headers.get("set-cookie", "")
    c, r = _page_login(console, "admin", ADMIN_PASSWORD, nxt="//evil.example/")
    with closing(c):
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_failed_logins_are_rate_limited_even_with_the_right_password_after(
    console: Console,
) -> None:
    with console.client() as c:
        for _ in range(5):
            r = c.post("/api/v1/session", json={"uid": "nobody", "password": "wrong password!"})
            assert r.status_code == 401 and r.json() == {"error": "wrong user name or password"}
        r = c.post("/api/v1/session", json={"uid": "nobody", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        # a user that does not exist is refused the same way (no user enumeration)
        r = c.post("/api/v1/session", json={"uid": "x" * 10000, "password": "p"})
        assert r.status_code in (401, 429)
    with closing(console.login("admin")) as admin:
        failed = admin.get("/api/v1/audit", params={"action": "login.failed", "q": "nobody"}).json()
        assert failed["total"] >= 5


def test_password_change_ends_sessions_and_takes_the_new_password(console: Console) -> None:
    with closing(console.login("admin")) as admin:
        r = admin.post("/api/v1/users", json={"uid": "carol", "password": PASSWORD})
        assert r.status_code == 201
    with closing(console.login("carol")) as carol:
        r = carol.put("/api/v1/me/password", json={"current": "not it at all", "new": "x" * 12})
        assert r.status_code == 400
        r = carol.put("/api/v1/me/password", json={"current": PASSWORD, "new": "short"})
        assert r.status_code == 400
        r = carol.put(
            "/api/v1/me/password", json={"current": PASSWORD, "new": "carol's new password"}
        )
        assert r.status_code == 204
        assert carol.get("/api/v1/me").status_code == 401  # every session of hers ended
    with console.client() as c:
        assert (
            c.post("/api/v1/session", json={"uid": "carol", "password": PASSWORD}).status_code
            == 401
        )
        assert (
            c.post(
                "/api/v1/session", json={"uid": "carol", "password": "carol's new password"}
            ).status_code
            == 201
        )


def test_api_tokens_bearer_ticket_scopes_expiry_disable_and_last_use(console: Console) -> None:
    with closing(console.login("admin")) as admin:
        made = admin.post("/api/v1/tokens", json={"name": "ci", "scopes": "view", "flag": "Other"})
        assert made.status_code == 201
        secret, token_id = made.json()["token"], made.json()["id"]
        assert "token_hash" not in made.json()
        listed = admin.get("/api/v1/tokens").json()["items"]
        assert all("token" not in t and "token_hash" not in t for t in listed)
        with console.client() as c:
            me = c.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
            assert me["via"] == "token" and me["scopes"] == ["view"] and me["target"] == "Other"
            rows = c.get("/api/v1/instances", params={"ticket": secret}).json()["items"]
            assert {r["application"] for r in rows} == {"Other"}  # narrowed to its target
            # a view token changes nothing, and needs no CSRF token (no cookie involved)
            r = c.post(
                "/api/v1/users", params={"ticket": secret}, json={"uid": "z", "password": PASSWORD}
            )
            assert r.status_code == 403
        assert admin.get("/api/v1/tokens").json()["items"][0]["last_used"] is not None
        assert admin.patch(f"/api/v1/tokens/{token_id}", json={"enabled": False}).status_code == 200
        with console.client() as c:
            assert c.get("/api/v1/me", params={"ticket": secret}).status_code == 401
        assert admin.patch(f"/api/v1/tokens/{token_id}", json={"enabled": True}).status_code == 200
        console.run(_expire(console, token_id))
        with console.client() as c:
            r = c.get("/api/v1/me", params={"ticket": secret})
            assert r.status_code == 401 and "expired" in r.json()["error"]
        # a token cannot be wider than its user, nor expire in the past
        r = admin.post("/api/v1/tokens", json={"name": "old", "expires": "2001-01-01T00:00:00"})
        assert r.status_code == 400
    with closing(console.login("dev_zapp")) as dev:
        r = dev.post("/api/v1/tokens", json={"name": "wide", "scopes": "publish"})
        assert r.status_code == 403
        # another's token is not hers to disable
        assert dev.patch(f"/api/v1/tokens/{token_id}", json={"enabled": False}).status_code == 403


async def _expire(console: Console, token_id: int) -> None:
    async with console.store.begin() as conn:
        await conn.execute(
            update(t_web_token)
            .where(t_web_token.c.id == token_id)
            .values(expire_time=console.store.clock().replace(year=2001))
        )


def test_audit_records_who_what_before_and_after_and_is_searchable(console: Console) -> None:
    with closing(console.login("admin")) as admin:
        assert (
            admin.post("/api/v1/users", json={"uid": "dave", "password": PASSWORD}).status_code
            == 201
        )
        grant = admin.post(
            "/api/v1/grants", json={"uid": "dave", "role": "publish", "flag": "Zapp"}
        )
        assert grant.status_code == 201
        assert admin.patch("/api/v1/users/dave", json={"enabled": False}).status_code == 200
        found = admin.get("/api/v1/audit", params={"q": "dave"}).json()
        actions = [a["action"] for a in found["items"]]
        assert actions[:3] == ["user.disable", "grant.add", "user.create"]
        disable = found["items"][0]
        assert disable["uid"] == "admin" and disable["via"] == "session"
        assert '"enabled": true' in disable["before"] and '"enabled": false' in disable["after"]
        grants_only = admin.get("/api/v1/audit", params={"action": "grant.", "q": "dave"}).json()
        assert [a["action"] for a in grants_only["items"]] == ["grant.add"]
        page = admin.get("/audit", params={"q": "dave"})
        assert page.status_code == 200 and "user.disable" in page.text
        # the last admin cannot be removed, disabled or demoted
        assert admin.delete("/api/v1/users/admin").status_code == 409


def test_instance_list_pages_and_searches_on_the_server(console: Console) -> None:
    with closing(console.login("admin")) as admin:
        first = admin.get("/api/v1/instances", params={"size": 2}).json()
        assert first["total"] == 3 and first["pages"] == 2 and len(first["items"]) == 2
        second = admin.get("/api/v1/instances", params={"size": 2, "page": 2}).json()
        assert len(second["items"]) == 1
        by_ip = admin.get("/api/v1/instances", params={"q": "10.9.0.2"}).json()
        assert [(i["server_name"], i["node_name"]) for i in by_ip["items"]] == [
            ("Secretserver", "10.9.0.2")
        ]
        assert admin.get("/api/v1/instances", params={"q": "%"}).json()["total"] == 0
        tree = admin.get("/api/v1/tree", params={"q": "10.9.0.3"}).json()
        assert [a["name"] for a in tree] == ["Other"]
        assert tree[0]["sets"][0]["servers"][0]["tree_id"] == "1Other.5Visible"
        closed = admin.get("/api/v1/tree").json()
        assert [(a["name"], a["instances"], a["sets"]) for a in closed] == [
            ("Other", 1, []),
            ("Zapp", 2, []),
        ]
        opened = admin.get("/api/v1/tree", params={"expand": "Zapp"}).json()
        assert opened[1]["sets"][0]["servers"][0]["tree_id"] == "1Zapp.5Secretserver"
        for bad in (
            {"size": 100000},
            {"page": 0},
            {"q": "x" * 500},
            {"q": "a\x00b"},
            {"size": "lots"},
        ):
            r = admin.get("/api/v1/instances", params=bad)
            assert r.status_code in (400, 422) and "error" in r.json(), bad
        fragment = admin.get(
            "/services", params={"size": 1, "page": 2}, headers={"HX-Request": "true"}
        )
        assert (
            fragment.status_code == 200
            and "<html" not in fragment.text
            and "<table>" in fragment.text
        )


def test_openapi_document_and_docs_page_list_operations_with_their_access(console: Console) -> None:
    with console.client() as c:
        spec = c.get("/openapi.json").json()
        op = spec["paths"]["/api/v1/users"]["post"]
        assert op["x-tarsus-access"] == {"perm": "admin", "target": "global"}
        docs = c.get("/docs")
        assert docs.status_code == 200 and "/api/v1/instances" in docs.text
        assert "http://" not in docs.text.replace(console.url, "") and "https://" not in docs.text


def test_a_form_without_the_csrf_header_is_read_only_when_small_and_without_files(
    console: Console,
) -> None:
    """The CSRF field is read from the body before anything else is checked: a file part, or
    a body over 1 MiB, is refused unread (an upload sends the token in the header)."""
    with closing(console.login("admin")) as c:
        token = c.headers.pop("X-CSRF-Token")
        files = {"suse": ("big.tgz", b"\0" * (2 * 1024 * 1024), "application/gzip")}
        r = c.post("/logout", data={"csrf_token": token}, files=files)
        assert r.status_code in (400, 403)
        assert c.get("/api/v1/me").status_code == 200  # not logged out: nothing was done
        small = {"suse": ("small.tgz", b"x", "application/gzip")}
        r = c.post("/logout", data={"csrf_token": token}, files=small)
        assert r.status_code in (400, 403)
        assert c.get("/api/v1/me").status_code == 200
        r = c.post("/logout", data={"csrf_token": token, "pad": "y" * (2 * 1024 * 1024)})
        assert r.status_code == 403
        assert c.get("/api/v1/me").status_code == 200
        r = c.post("/logout", data={"csrf_token": token})  # the small form works
        assert r.status_code == 303
        assert c.get("/api/v1/me").status_code == 401
