"""Every route of the console, walked: what a caller without a session, of another
application, with too small a role, or with a forged CSRF token gets — and that nothing
changed. Routes are enumerated from the app, so a route added later is walked too; one that
declares no access (``tarsus.web.security.access``) fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_support import Console, running_console
from fastapi.routing import APIRoute

from tarsus.web.app import PUBLIC_MOUNTS, routes
from tarsus.web.security import ACCESS_KEY, API_PREFIXES

#: a value for every path parameter a route may have; a new parameter name needs one here
SAMPLES = {
    "uid": "nobody",
    "app": "Zapp",
    "server": "Secretserver",
    "node": "10.9.0.1",
    "task_no": "0123456789abcdef0123456789abcdef",
    "name": "tars.default",
    "package_id": "1",
    "file_id": "1",
    "version_id": "1",
    "rule": "no-such-rule",
}
SAFE = {"GET", "HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory.mktemp("console")) as c:
        yield c


@pytest.fixture(scope="module")
def walked(console: Console) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, path with samples, declared access)`` of every route."""
    with closing(console.login("admin")) as admin:
        grants = admin.get("/api/v1/grants", params={"q": "dev_zapp"}).json()["items"]
        tokens = admin.post("/api/v1/tokens", json={"name": "walk", "scopes": "view"}).json()
    samples = {**SAMPLES, "grant_id": str(grants[0]["id"]), "token_id": str(tokens["id"])}
    app = console.server.app
    out = []
    for route in routes(app):
        if not isinstance(route, APIRoute):
            assert getattr(route, "path", None) in PUBLIC_MOUNTS, (
                f"{route!r} is neither an API route declaring its access nor a public mount"
            )
            continue
        declared = (route.openapi_extra or {}).get(ACCESS_KEY)
        assert declared is not None, f"{route.path} declares no access (tarsus.web.security.access)"
        names = re.findall(r"{(\w+)(?::\w+)?}", route.path)
        missing = [n for n in names if n not in samples]
        assert not missing, f"{route.path}: add a sample value for {missing} to SAMPLES"
        path = route.path
        for n in names:
            path = re.sub("{" + n + r"(?::\w+)?}", samples[n], path)
        for method in sorted(route.methods):
            out.append((method, path, declared))
    assert len(out) > 30
    return out


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def _refused(r: httpx.Response, status: int, path: str) -> None:
    assert r.status_code == status, f"{path}: {r.status_code} {r.text[:200]}"
    if _is_api(path) and "upload_and_publish" not in path:
        assert "error" in r.json()


def test_every_route_declares_its_access_and_refuses_without_credentials(
    console: Console, walked: list[tuple[str, str, dict[str, Any]]]
) -> None:
    before = console.digest()
    forged = console.client(cookies={"tarsus_session": "forged.signature"})
    with console.client() as anon, forged:
        for method, path, declared in walked:
            if declared["target"] == "public":
                continue
            r = anon.request(method, path)
            if _is_api(path):
                _refused(r, 401, f"{method} {path}")
            else:
                assert r.status_code == 303, f"{method} {path}: {r.status_code}"
                assert r.headers["location"].startswith("/login?next="), path
            # a forged session cookie is no session
            r = forged.request(method, path)
            assert r.status_code in (401, 303), f"{method} {path} with a forged cookie"
    assert console.digest() == before


def test_another_application_or_too_small_a_role_is_refused_and_nothing_changes(
    console: Console, walked: list[tuple[str, str, dict[str, Any]]]
) -> None:
    other, dev, nobody = (
        console.login("op_other"),
        console.login("dev_zapp"),
        console.login("nobody"),
    )
    view_token = console.token("admin", scopes="view")
    other_app_token = console.token("admin", scopes="*", flag="Other")
    before = console.digest()
    seen = 0
    try:
        for method, path, declared in walked:
            target, perm = declared["target"], declared["perm"]
            where = f"{method} {path}"
            if target in ("public", "self", "form"):
                continue
            seen += 1
            if target in ("global", "app"):
                _refused(other.request(method, path), 403, where)
                _refused(
                    other.request(
                        method, path, headers={"Authorization": f"Bearer {other_app_token}"}
                    ),
                    403,
                    where,
                )
                if perm != "view":
                    _refused(dev.request(method, path), 403, where)
                    bearer = {"Authorization": f"Bearer {view_token}"}
                    _refused(console.client().request(method, path, headers=bearer), 403, where)
            elif target == "any":
                _refused(nobody.request(method, path), 403, where)
                if method in SAFE:
                    r = other.request(method, path)
                    assert r.status_code == 200, where
                    assert "Secretserver" not in r.text, f"{where} shows another application's"
                    assert "Other" in r.text, where  # and sees its own
            else:
                raise AssertionError(f"{where}: unknown access target {target!r}")
    finally:
        for c in (other, dev, nobody):
            c.close()
    assert seen > 10
    assert console.digest() == before


def test_a_session_without_or_with_a_forged_csrf_token_changes_nothing(
    console: Console, walked: list[tuple[str, str, dict[str, Any]]]
) -> None:
    with closing(console.login("admin")) as admin:
        before = console.digest()
        real = admin.headers.pop("X-CSRF-Token")
        checked = 0
        for method, path, declared in walked:
            if method in SAFE or declared["target"] in ("public", "form"):
                continue
            checked += 1
            _refused(admin.request(method, path), 403, f"{method} {path} without CSRF")
            r = admin.request(method, path, headers={"X-CSRF-Token": real[:-2] + "xx"})
            _refused(r, 403, f"{method} {path} with a forged CSRF token")
            r = admin.request(method, path, data={"csrf_token": "forged"})
            _refused(r, 403, f"{method} {path} with a forged CSRF field")
        assert checked > 10
    assert console.digest() == before


def test_pages_render_for_admin_with_navigation(console: Console) -> None:
    with closing(console.login("admin")) as admin:
        for path in ("/services", "/users", "/roles", "/tokens", "/audit", "/password", "/docs"):
            r = admin.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            assert '<nav class="side"' in r.text, path
            for label in ("Services", "Users", "Roles", "API tokens", "Audit log"):
                assert label in r.text, (path, label)
    with closing(console.login("dev_zapp")) as dev:
        page = dev.get("/services").text
        assert "Secretserver" in page and "Visible" not in page
        assert "Audit log" not in page  # not in the navigation of a developer


def test_the_script_api_obeys_a_tokens_application_before_storing_anything(
    console: Console, tmp_path: Path
) -> None:
    """TarsWeb#213 by design: upload_and_publish checks the server's application."""
    package = tmp_path / "Secretserver.tgz"
    package.write_bytes(b"not even a tarball")
    form = {"application": "Zapp", "module_name": "Secretserver"}
    files = {"suse": ("Secretserver.tgz", package.read_bytes(), "application/gzip")}
    other_app = console.token("admin", scopes="*", flag="Other")
    view_only = console.token("admin", scopes="view")
    with console.client() as c:
        r = c.post("/api/upload_and_publish", params={"ticket": other_app}, data=form, files=files)
        assert r.status_code == 403 and "may not upload on Zapp.Secretserver" in r.text
        r = c.post("/api/upload_and_publish", params={"ticket": view_only}, data=form, files=files)
        assert r.status_code == 403 and "may not upload and publish" in r.text
        r = c.post(
            "/api/upload_and_publish", params={"ticket": "tsk_unknown"}, data=form, files=files
        )
        assert r.status_code == 403
    assert not list((console.settings.incoming_dir).glob("*"))
